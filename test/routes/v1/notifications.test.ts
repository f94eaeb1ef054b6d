import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { gzipSync } from 'node:zlib'
import t, { type Test } from 'tap'
import { SignJWT } from 'jose'
import { createHash } from 'node:crypto'
import { Redis } from 'ioredis'
import { SandboxPushChannel, SandboxSmsChannel } from '../../../src/channels/sandbox.js'
import { verifyHmacSignature } from '../../../src/http/signature.js'
import { SandboxUpstream } from '../../../src/reachability/upstreams/sandbox.js'
import { buildTestApp } from '../../helpers/app.js'
import { dropPrefix, REDIS_URL, redisAvailable, uniquePrefix } from '../../helpers/redis.js'
import { CountingUpstream, ScriptedUpstream } from '../../helpers/upstream.js'
import { waitFor } from '../../helpers/wait.js'

const VONAGE_SECRET = 'vonage-signature-secret-for-tests'
const CALLBACK_SECRET = 'callback-secret-for-tests-0123'
const haveRedis = await redisAvailable()

async function setup (t: Test, store: 'memory' | 'redis', env: Record<string, string> = {}, upstreamOverride?: ScriptedUpstream) {
  const prefix = uniquePrefix()
  const sms = new SandboxSmsChannel({ log: () => {} })
  const push = new SandboxPushChannel({ log: () => {} })
  const upstream = upstreamOverride ?? new CountingUpstream(new SandboxUpstream({ comebackSeconds: 20 }))
  const { app, bearer } = await buildTestApp({
    ...(store === 'redis' ? { REDIS_URL, REDIS_KEY_PREFIX: prefix } : {}),
    QUEUE_SHARDS: '4',
    WORKERS: 'on',
    WORKER_IDLE_POLL_MS: '20',
    VONAGE_SIGNATURE_SECRET: VONAGE_SECRET,
    CALLBACK_SIGNING_SECRET: CALLBACK_SECRET,
    ...env,
  }, { upstream, channels: { sms, push } })
  t.teardown(async () => {
    await app.close()
    if (store === 'redis') await dropPrefix(prefix)
  })
  const auth = await bearer()
  const notify = (payload: unknown, headers: Record<string, string> = {}) =>
    app.inject({ method: 'POST', url: '/v1/notifications', headers: { authorization: auth, ...headers }, payload: payload as object })
  const status = async (id: string) => (await app.inject({ url: `/v1/notifications/${id}`, headers: { authorization: auth } })).json()
  const until = (id: string, wanted: string) => waitFor(async () => {
    const n = await status(id)
    return n.status === wanted ? n : undefined
  }, 5000, `${id} to be ${wanted}`)
  return { app, bearer, auth, sms, push, upstream, prefix, notify, status, until }
}

const both = { sms: { text: 'Your code is 123456' }, push: { title: 'Code', body: 'Your code is 123456' } }

for (const store of ['memory', 'redis'] as const) {
  t.test(`end to end with the ${store} store`, { skip: store === 'redis' && !haveRedis && 'Redis is not running' }, async t => {
    t.test('connected for DATA and SMS with a push token: delivered over push', async t => {
      const { notify, until, push, sms } = await setup(t, store)
      const res = await notify({ to: '+990123400', message: both, push_token: 'tok-1', client_ref: 'login-42', metadata: { a: 'b' } })
      t.equal(res.statusCode, 202)
      const body = res.json()
      t.match(body, {
        id: /^ntf_\d{2}_[0-9a-f]{32}$/, status: 'queued', channel: 'push', client_ref: 'login-42', metadata: { a: 'b' },
        reason: 'connected for DATA and SMS; push preferred and a push token was given',
        reachability: { phone_number: '+990123400', connectivity: ['DATA', 'SMS'] },
      })
      const done = await until(body.id, 'sent')
      t.equal(done.attempts, 1)
      t.match(done.provider_message_id, /^sandbox-/)
      t.same(done.events.map((e: { type: string }) => e.type), ['accepted', 'routed', 'enqueued', 'attempt', 'provider_answer', 'final'])
      t.equal(push.deliveries().length, 1)
      t.equal(push.deliveries()[0]!.notificationId, body.id, 'the provider sees the notification id')
      t.equal(sms.deliveries().length, 0)
    })

    t.test('SMS-only device: delivered over SMS', async t => {
      const { notify, until, sms } = await setup(t, store)
      const res = await notify({ to: '+990123411', message: both, push_token: 'tok' })
      t.match(res.json(), { channel: 'sms', reason: /connected for SMS only/ })
      await until(res.json().id, 'sent')
      t.equal(sms.deliveries()[0]!.to, '+990123411')
      t.equal(sms.deliveries()[0]!.text, 'Your code is 123456')
    })

    t.test('prefer sms on a DATA+SMS device: SMS', async t => {
      const { notify } = await setup(t, store)
      const res = await notify({ to: '+990123400', message: both, push_token: 'tok', routing: { prefer: 'sms' } })
      t.equal(res.json().channel, 'sms')
    })

    t.test('not reachable: waits in the fallback queue', async t => {
      const { notify, status, sms, push } = await setup(t, store)
      const res = await notify({ to: '+990123433', message: both, push_token: 'tok' })
      t.match(res.json(), { status: 'queued', channel: 'fallback_queue', reason: /not reachable; queued until the device comes back/ })
      t.equal((await status(res.json().id)).channel, 'fallback_queue')
      t.equal(sms.deliveries().length + push.deliveries().length, 0)
    })

    t.test('not reachable with on_unreachable drop: dropped, nothing sent', async t => {
      const { notify, sms } = await setup(t, store)
      const res = await notify({ to: '+990123433', message: both, routing: { on_unreachable: 'drop' } })
      t.match(res.json(), { status: 'dropped', channel: 'none' })
      t.equal(sms.deliveries().length, 0)
    })

    t.test('NOT_FOUND: failed with that reason, nothing sent', async t => {
      const { notify, status, sms } = await setup(t, store)
      const res = await notify({ to: '+990123499', message: both })
      t.match(res.json(), { status: 'failed', channel: 'none', reason: /^NOT_FOUND/ })
      t.equal((await status(res.json().id)).status, 'failed')
      t.equal(sms.deliveries().length, 0)
    })

    t.test('no upstream answer: on_unknown sms by default, fail when asked', async t => {
      const { notify, until } = await setup(t, store)
      const first = await notify({ to: '+990123488', message: both, push_token: 'tok' })
      t.match(first.json(), { channel: 'sms', reachability: null, reason: /gave no answer; on_unknown is sms/ })
      await until(first.json().id, 'sent')
      const noCoverage = await notify({ to: '+990123455', message: both, routing: { on_unknown: 'fail' } })
      t.match(noCoverage.json(), { status: 'failed', reason: /NO_COVERAGE/ })
    })

    t.test('a dead push token fails over to SMS', async t => {
      const { notify, until, sms } = await setup(t, store)
      const res = await notify({ to: '+990123400', message: both, push_token: 'invalid-token' })
      t.equal(res.json().channel, 'push')
      const done = await until(res.json().id, 'sent')
      t.equal(done.channel, 'sms')
      t.ok(done.events.some((e: { type: string }) => e.type === 'failover'))
      t.equal(sms.deliveries().length, 1)
    })

    t.test('idempotency: replay, another body, another caller', async t => {
      const { notify, bearer, app, sms } = await setup(t, store)
      const body = { to: '+990123411', message: both }
      const first = await notify(body, { 'idempotency-key': 'order-1' })
      t.equal(first.statusCode, 202)
      t.notOk(first.headers['idempotent-replayed'])
      const again = await notify({ message: both, to: '+990123411' }, { 'idempotency-key': 'order-1' })
      t.equal(again.statusCode, 202)
      t.equal(again.headers['idempotent-replayed'], 'true')
      t.same(again.json(), first.json())
      const other = await notify({ ...body, client_ref: 'x' }, { 'idempotency-key': 'order-1' })
      t.equal(other.statusCode, 422)
      t.equal(other.headers['content-type'], 'application/problem+json; charset=utf-8')
      const otherCaller = await app.inject({
        method: 'POST', url: '/v1/notifications', payload: body,
        headers: { authorization: await bearer('notifications:write', 'another-service'), 'idempotency-key': 'order-1' },
      })
      t.equal(otherCaller.statusCode, 202)
      t.not(otherCaller.json().id, first.json().id, 'keys are per caller')
      await waitFor(() => sms.deliveries().length === 2 ? true : undefined)
      t.equal(sms.deliveries().filter(d => d.notificationId === first.json().id).length, 1, 'the replay sent nothing again')
    })

    t.test('idempotency: a second request while the first is in flight is a 409 with Retry-After', async t => {
      const slow = new ScriptedUpstream()
      slow.delayMs = 300
      const { notify } = await setup(t, store, {}, slow)
      const body = { to: '+447911123456', message: both }
      const [a, b] = await Promise.all([
        notify(body, { 'idempotency-key': 'k-1' }),
        new Promise(resolve => setTimeout(resolve, 50)).then(() => notify(body, { 'idempotency-key': 'k-1' })),
      ])
      t.equal(a.statusCode, 202)
      t.equal(b.statusCode, 409)
      t.equal(b.headers['retry-after'], '1', 'try again in a second (an accept takes milliseconds), not when the 30 s claim would run out')
      t.equal(slow.calls, 1)
    })

    t.test('a signed Vonage receipt moves a sent SMS to delivered; a bad signature changes nothing; repeats are harmless', async t => {
      const { notify, until, app, status } = await setup(t, store)
      const { id } = (await notify({ to: '+990123411', message: { sms: { text: 'hi' } } })).json()
      await until(id, 'sent')
      const receipt = JSON.stringify({ message_uuid: 'm-1', to: '990123411', from: 'reachroute', timestamp: '2026-11-25T10:00:00Z', status: 'delivered', channel: 'sms', client_ref: id })
      const sign = (secret: string, body: string) => new SignJWT({ payload_hash: createHash('sha256').update(body).digest('hex') })
        .setProtectedHeader({ alg: 'HS256' }).setIssuedAt().sign(new TextEncoder().encode(secret))
      const post = async (authorization: string | undefined, payload = receipt) => app.inject({
        method: 'POST', url: '/v1/webhooks/vonage/messages', payload, headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) },
      })
      t.equal((await post(undefined)).statusCode, 401)
      t.equal((await post(`Bearer ${await sign('wrong-secret-wrong-secret', receipt)}`)).statusCode, 401)
      const tampered = receipt.replace('delivered', 'rejected')
      t.equal((await post(`Bearer ${await sign(VONAGE_SECRET, receipt)}`, tampered)).statusCode, 401, 'the body hash must match')
      t.equal((await status(id)).status, 'sent')

      t.equal((await post(`Bearer ${await sign(VONAGE_SECRET, receipt)}`)).statusCode, 204)
      t.equal((await status(id)).status, 'delivered')
      t.equal((await post(`Bearer ${await sign(VONAGE_SECRET, receipt)}`)).statusCode, 204)
      const late = JSON.stringify({ ...JSON.parse(receipt), status: 'rejected' })
      t.equal((await post(`Bearer ${await sign(VONAGE_SECRET, late)}`, late)).statusCode, 204)
      const final = await status(id)
      t.equal(final.status, 'delivered', 'a final status stays')
      t.equal(final.events.filter((e: { type: string }) => e.type === 'receipt').length, 1)
    })

    t.test('a receipt that the SMS was rejected fails it, the carrier\'s error as its reason; GET shows the reachability it was routed on', async t => {
      const { notify, until, app, status } = await setup(t, store)
      const { id } = (await notify({ to: '+990123411', message: { sms: { text: 'hi' } } })).json()
      const sent = await until(id, 'sent')
      t.match(sent.reason, /connected for SMS only/, 'sent: the routing reason')
      t.match(sent.reachability, { phone_number: '+990123411', is_reachable: true, connectivity: ['SMS'], status: { code: 'OK' } })
      t.match(sent.events.find((e: { type: string }) => e.type === 'routed'),
        { channel: 'sms', reachability: { is_reachable: true, connectivity: ['SMS'], status: 'OK' } }, 'the routed event keeps what routing saw')
      const receipt = JSON.stringify({
        message_uuid: sent.provider_message_id, to: '990123411', from: 'reachroute', timestamp: '2026-11-25T10:00:00Z', status: 'rejected', channel: 'sms', client_ref: id,
        error: { type: 'https://developer.nexmo.com/api-errors/messages#1260', title: 'Destination unreachable', detail: 'The message could not be delivered to the phone number' },
      })
      const jwt = await new SignJWT({ payload_hash: createHash('sha256').update(receipt).digest('hex') })
        .setProtectedHeader({ alg: 'HS256' }).setIssuedAt().sign(new TextEncoder().encode(VONAGE_SECRET))
      const res = await app.inject({ method: 'POST', url: '/v1/webhooks/vonage/messages', payload: receipt, headers: { 'content-type': 'application/json', authorization: `Bearer ${jwt}` } })
      t.equal(res.statusCode, 204)
      const failed = await status(id)
      t.equal(failed.status, 'failed')
      t.match(failed.reason, /^receipt: rejected \(.*Destination unreachable/, 'the reason is the carrier\'s')
    })

    t.test('a receipt whose error title is a number (an error code) is taken, not refused (Vonage does not send a 400 again)', async t => {
      const { notify, until, app, status } = await setup(t, store)
      const { id } = (await notify({ to: '+990123411', message: { sms: { text: 'hi' } } })).json()
      const sent = await until(id, 'sent')
      const receipt = JSON.stringify({
        message_uuid: sent.provider_message_id, timestamp: '2026-11-25T10:00:00Z', status: 'rejected', channel: 'sms', client_ref: id,
        error: { type: 'https://developer.nexmo.com/api-errors/messages-olympus#1250', title: 1250, detail: 'Unroutable' },
      })
      const jwt = await new SignJWT({ payload_hash: createHash('sha256').update(receipt).digest('hex') })
        .setProtectedHeader({ alg: 'HS256' }).setIssuedAt().sign(new TextEncoder().encode(VONAGE_SECRET))
      const res = await app.inject({ method: 'POST', url: '/v1/webhooks/vonage/messages', payload: receipt, headers: { 'content-type': 'application/json', authorization: `Bearer ${jwt}` } })
      t.equal(res.statusCode, 204, res.body)
      t.match(await status(id), { status: 'failed', reason: 'receipt: rejected (1250)' })
    })

    for (const allowed of [undefined, '127.0.0.1,*.example.org']) {
      t.test(`callback_url receives the final status, signed${allowed ? ' (its host in CALLBACK_ALLOWED_HOSTS)' : ''}`, async t => {
        const received: { body: string, signature: string | undefined }[] = []
        const server = createServer((req: IncomingMessage, res) => {
          let body = ''
          req.on('data', c => { body += c })
          req.on('end', () => {
            received.push({ body, signature: req.headers['x-reachroute-signature'] as string | undefined })
            res.statusCode = received.length === 1 ? 503 : 200
            res.end()
          })
        })
        await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
        t.teardown(() => server.close())
        const { notify, until } = await setup(t, store, { DELIVERY_RETRY_BASE_MS: '10', ...(allowed ? { CALLBACK_ALLOWED_HOSTS: allowed } : {}) })
        const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/status`
        const { id } = (await notify({ to: '+990123411', message: both, callback_url: url, client_ref: 'c-1', metadata: { k: 'v' } })).json()
        await until(id, 'sent')
        await waitFor(() => received.length >= 2 ? true : undefined, 5000, 'the retried callback')
        const last = received[1]!
        t.ok(verifyHmacSignature(last.body, CALLBACK_SECRET, last.signature), 'signed with CALLBACK_SIGNING_SECRET')
        t.match(JSON.parse(last.body), { id, status: 'sent', channel: 'sms', client_ref: 'c-1', metadata: { k: 'v' } })
      })
    }

    t.test('unknown and malformed ids are 404 problems', async t => {
      const { app, auth } = await setup(t, store)
      for (const id of ['ntf_01_00000000000000000000000000000000', 'nope', 'ntf_99_00000000000000000000000000000000']) {
        const res = await app.inject({ url: `/v1/notifications/${id}`, headers: { authorization: auth } })
        t.equal(res.statusCode, 404, id)
        t.equal(res.headers['content-type'], 'application/problem+json; charset=utf-8')
      }
    })
  })
}

t.test('bad input on every field: a problem, nothing stored, sent or asked upstream', { skip: !haveRedis && 'Redis is not running' }, async t => {
  const { notify, upstream, sms, push, prefix, app, bearer } = await setup(t, 'redis', { CALLBACK_ALLOWED_HOSTS: 'hooks.example.com,*.example.org' })
  const good = { to: '+990123400', message: both, push_token: 'tok' }
  const cases: [string, unknown, number][] = [
    ['to missing', { message: both }, 400],
    ['to invalid', { ...good, to: '+4412' }, 400],
    ['to a number', { ...good, to: 447911123456 }, 400],
    ['message missing', { to: '+990123400' }, 400],
    ['message empty', { ...good, message: {} }, 400],
    ['sms text empty', { ...good, message: { sms: { text: '' } } }, 400],
    ['sms text too long', { ...good, message: { sms: { text: 'x'.repeat(1001) } } }, 400],
    ['sms text of 1,001 emoji', { ...good, message: { sms: { text: '\u{1F4E6}'.repeat(1001) } } }, 400],
    ['push without body', { ...good, message: { push: { title: 't' } } }, 400],
    ['push data not strings', { ...good, message: { push: { title: 't', body: 'b', data: { n: 1 } } } }, 400],
    ['push data key FCM reserves: from', { ...good, message: { push: { title: 't', body: 'b', data: { from: 'x' } } } }, 400],
    ['push data key FCM reserves: google.*', { ...good, message: { push: { title: 't', body: 'b', data: { 'google.c.a': 'x' } } } }, 400],
    ['push data key FCM reserves: gcm*', { ...good, message: { push: { title: 't', body: 'b', data: { gcmx: 'x' } } } }, 400],
    ['unknown field', { ...good, colour: 'blue' }, 400],
    ['unknown routing field', { ...good, routing: { fast: true } }, 400],
    ['prefer wrong', { ...good, routing: { prefer: 'fax' } }, 400],
    ['channels empty', { ...good, routing: { channels: [] } }, 400],
    ['channels repeated', { ...good, routing: { channels: ['sms', 'sms'] } }, 400],
    ['on_unreachable wrong', { ...good, routing: { on_unreachable: 'later' } }, 400],
    ['on_unknown wrong', { ...good, routing: { on_unknown: 'guess' } }, 400],
    ['ttl too long', { ...good, routing: { ttl_seconds: 8 * 86400 } }, 400],
    ['ttl zero', { ...good, routing: { ttl_seconds: 0 } }, 400],
    ['ttl fractional', { ...good, routing: { ttl_seconds: 1.5 } }, 400],
    ['max_age negative', { ...good, routing: { max_age: -1 } }, 400],
    ['client_ref too long', { ...good, client_ref: 'x'.repeat(101) }, 400],
    ['callback_url not http', { ...good, callback_url: 'ftp://example.com/x' }, 400],
    ['callback_url not a url', { ...good, callback_url: 'later' }, 400],
    ['metadata not strings', { ...good, metadata: { a: 1 } }, 400],
    ['metadata too many', { ...good, metadata: Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`k${i}`, 'v'])) }, 400],
    ['push_token empty', { ...good, push_token: '' }, 400],
    ['push_token with a NUL', { ...good, push_token: 'tok\u0000' }, 400],
    ['sms text with a lone surrogate (half an emoji)', { ...good, message: { sms: { text: 'hi \ud83d' } } }, 400],
    ['sms text with a NUL', { ...good, message: { sms: { text: 'a\u0000b' } } }, 400],
    ['push title with an escape character', { ...good, message: { push: { title: 'a\u001bb', body: 'b' } } }, 400],
    ['push data value with a lone surrogate', { ...good, message: { push: { title: 't', body: 'b', data: { k: '\udc00' } } } }, 400],
    ['push data key with a NUL', { ...good, message: { push: { title: 't', body: 'b', data: { 'k\u0000': 'v' } } } }, 400],
    ['client_ref with a lone surrogate', { ...good, client_ref: 'a\ud800b' }, 400],
    ['metadata key with a lone surrogate', { ...good, metadata: { 'k\udc00': 'v' } }, 400],
    ['metadata value with a NUL', { ...good, metadata: { k: '\u0000v' } }, 400],
    ['body an array', [good], 400],
    ['push only without a token', { to: '+990123400', message: { push: { title: 't', body: 'b' } } }, 422],
    ['sms only but channels push', { to: '+990123400', message: { sms: { text: 'x' } }, routing: { channels: ['push'] } }, 422],
    ['callback_url on a host CALLBACK_ALLOWED_HOSTS does not allow', { ...good, callback_url: 'http://169.254.169.254/latest' }, 422],
    ['callback_url on the wildcard\'s own host', { ...good, callback_url: 'https://example.org/status' }, 422],
  ]
  for (const [name, payload, code] of cases) {
    const res = await notify(payload)
    t.equal(res.statusCode, code, name)
    t.equal(res.headers['content-type'], 'application/problem+json; charset=utf-8', name)
    t.equal(res.json().status, code, name)
  }
  const authorization = await bearer()
  const raw: [string, string | Buffer, Record<string, string>, number, RegExp, RegExp][] = [
    ['malformed JSON', '{"to": ', {}, 400, /\/malformed-json$/, /^the body is not valid JSON: Unexpected end of JSON input$/],
    ['JSON with more after it', '{"to":"+990123400"}}', {}, 400, /\/malformed-json$/, /not valid JSON: .*position 19/],
    ['an empty body', '', {}, 400, /\/malformed-json$/, /the body is empty/],
    ['a __proto__ key', `{"__proto__":{"admin":true},${JSON.stringify(good).slice(1)}`, {}, 400, /\/validation-error$/, /"__proto__" key/],
    ['a constructor.prototype deep inside', JSON.stringify({ ...good, metadata: { constructor: { prototype: { x: 1 } } } }), {}, 400, /\/validation-error$/, /"constructor" key holding "prototype"/],
    ['a gzip body', gzipSync(JSON.stringify(good)), { 'content-encoding': 'gzip' }, 415, /\/unsupported-media-type$/, /Content-Encoding "gzip" is not taken/],
    ['an Idempotency-Key of non-ASCII bytes', JSON.stringify(good), { 'idempotency-key': Buffer.from('\u{1F4E6}').toString('latin1') }, 400, /\/validation-error$/, /printable ASCII/],
    ['bytes that are not UTF-8 in a text', Buffer.concat([Buffer.from('{"to":"+990123400","message":{"sms":{"text":"caf'), Buffer.from([0xe9]), Buffer.from('"}}}')]),
      {}, 400, /\/validation-error$/, /^body: not valid UTF-8/],
    ['a charset other than UTF-8', JSON.stringify(good), { 'content-type': 'application/json; charset=latin1' }, 415, /\/unsupported-media-type$/,
      /^Content-Type charset "latin1" is not taken: bodies are UTF-8/],
    ['a lone surrogate in a text', JSON.stringify({ ...good, message: { sms: { text: 'hi \ud83d!' } } }), {}, 400, /\/validation-error$/,
      /^body\.message\.sms\.text: not well-formed Unicode: a lone UTF-16 surrogate \(\\ud83d, half of a pair\) at character 4$/],
    ['a NUL in a text', JSON.stringify({ ...good, client_ref: 'ref\u0000' }), {}, 400, /\/validation-error$/,
      /^body\.client_ref: a control character \(U\+0000\) at character 4: only tab, line feed and carriage return are allowed$/],
  ]
  for (const [name, payload, headers, code, type, detail] of raw) {
    const res = await app.inject({ method: 'POST', url: '/v1/notifications', headers: { authorization, 'content-type': 'application/json', ...headers }, payload })
    t.equal(res.statusCode, code, `${name}: ${res.body.slice(0, 300)}`)
    t.match(res.json(), { type, status: code, detail }, name)
    if (headers['content-encoding']) t.equal(res.headers['accept-encoding'], 'identity', `${name}: says which coding is taken`)
  }
  // Node joins a header given twice into one value ("a, b"): a key given twice is refused, not taken as a third key.
  const twice = await app.inject({
    method: 'POST', url: '/v1/notifications', payload: JSON.stringify(good),
    headers: { authorization, 'content-type': 'application/json', 'idempotency-key': ['k-1', 'k-2'] as unknown as string },
  })
  t.equal(twice.statusCode, 400, twice.body)
  t.match(twice.json(), { errors: [{ path: 'headers.idempotency-key', message: 'given 2 times: send one key' }] })
  const tooBig = await notify({ ...good, metadata: { big: 'x'.repeat(70_000) } })
  t.equal(tooBig.statusCode, 413)
  const longKey = await notify(good, { 'idempotency-key': 'k'.repeat(256) })
  t.equal(longKey.statusCode, 400)
  // Refused before its Idempotency-Key is claimed: the key is free for the corrected request (checked below, after the counts).
  const refusedHost = await notify({ ...good, callback_url: 'https://evil.example.net/x' }, { 'idempotency-key': 'fix-me' })
  t.equal(refusedHost.statusCode, 422)
  t.match(refusedHost.json().detail, 'callback_url host evil.example.net is not one that callbacks may go to (CALLBACK_ALLOWED_HOSTS)')
  const noScope = await app.inject({ method: 'POST', url: '/v1/notifications', headers: { authorization: await bearer('notifications:read') }, payload: good })
  t.equal(noScope.statusCode, 403)
  const noToken = await app.inject({ method: 'POST', url: '/v1/notifications', payload: good })
  t.equal(noToken.statusCode, 401)

  t.equal((upstream as CountingUpstream).calls.length, 0, 'nothing asked upstream')
  t.equal(sms.deliveries().length + push.deliveries().length, 0, 'nothing sent')
  const redis = new Redis(REDIS_URL)
  t.teardown(() => redis.disconnect())
  // Rate-limit counters count every request, bad ones too: they are not notification data.
  const keys = (await redis.keys(`${prefix}*`)).filter(k => !k.includes('{rl:'))
  t.same(keys.filter(k => !k.includes(':outbox:')), [], 'nothing stored')
  for (const key of keys.filter(k => k.includes(':outbox:'))) t.equal(await redis.xlen(key), 0, `nothing queued in ${key}`)
  const corrected = await notify({ ...good, callback_url: 'https://hooks.example.com/status' }, { 'idempotency-key': 'fix-me' })
  t.equal(corrected.statusCode, 202, 'the refused request left its Idempotency-Key unclaimed: the corrected one is accepted')
})

t.test('texts keep what a message may hold: line breaks, tabs, emoji, U+FFFD itself; charset=utf-8 is taken', async t => {
  const { notify, app, bearer } = await setup(t, 'memory')
  const text = 'Line one\r\nline two\tand \u{1F4E6} \uFFFD caf\u00e9'
  const body = { to: '+990123400', message: { sms: { text }, push: { title: '\u{1F4E6}', body: text, data: { 'cl\u00e9': text } } }, push_token: 'tok', client_ref: 'r\u00e9f', metadata: { 'k\u{1F4E6}': text } }
  const res = await notify(body)
  t.equal(res.statusCode, 202, res.body)
  const stored = await app.inject({ url: `/v1/notifications/${res.json().id as string}`, headers: { authorization: await bearer('notifications:read') } })
  t.match(stored.json(), { client_ref: 'r\u00e9f', metadata: { 'k\u{1F4E6}': text } }, 'stored as sent')
  for (const type of ['application/json; charset=utf-8', 'application/json; charset="UTF-8"', 'application/json;charset=utf8']) {
    const res = await app.inject({ method: 'POST', url: '/v1/notifications', headers: { authorization: await bearer(), 'content-type': type }, payload: JSON.stringify(body) })
    t.equal(res.statusCode, 202, `${type}: ${res.body.slice(0, 200)}`)
  }
})

t.test('without CALLBACK_SIGNING_SECRET there are no status callbacks: a callback_url is a 422 and takes no Idempotency-Key', async t => {
  const { notify } = await setup(t, 'memory', { CALLBACK_SIGNING_SECRET: '' })
  const good = { to: '+990123400', message: both, push_token: 'tok' }
  const refused = await notify({ ...good, callback_url: 'https://hooks.example.com/status' }, { 'idempotency-key': 'k-1' })
  t.equal(refused.statusCode, 422)
  t.equal(refused.headers['content-type'], 'application/problem+json; charset=utf-8')
  t.match(refused.json(), { status: 422, detail: 'status callbacks are off: the service has no CALLBACK_SIGNING_SECRET to sign them with' })
  const accepted = await notify(good, { 'idempotency-key': 'k-1' })
  t.equal(accepted.statusCode, 202, 'the same key with the callback_url left out: accepted, not a replay or a conflict')
  t.notOk(accepted.headers['idempotent-replayed'])
})

t.test('with Redis, the notification and its job live in Redis under the shard\'s tag', { skip: !haveRedis && 'Redis is not running' }, async t => {
  const { notify, prefix } = await setup(t, 'redis', { WORKERS: 'off' })
  const { id } = (await notify({ to: '+990123411', message: both })).json()
  const redis = new Redis(REDIS_URL)
  t.teardown(() => redis.disconnect())
  const shard = Number(id.slice(4, 6))
  t.equal(await redis.hget(`${prefix}{s${shard}}:n:${id}`, 'status'), 'queued')
  t.ok(await redis.ttl(`${prefix}{s${shard}}:n:${id}`) > 6 * 86400, 'kept for the retention time')
  t.equal(await redis.xlen(`${prefix}{s${shard}}:outbox:sms`), 1)
  t.ok(await redis.exists(`${prefix}{s${shard}}:reach:+990123411`), 'the reachability cache is in Redis, in the number\'s shard: the notification\'s')
  // IDEMPOTENCY_TTL_SECONDS at its default: a replay answers the first answer for 24 h.
  const first = (await notify({ to: '+990123411', message: both }, { 'idempotency-key': 'day-1' })).json()
  const idemKeys = await redis.keys(`${prefix}*:idem:*`)
  t.equal(idemKeys.length, 1, 'the Idempotency-Key record is in Redis')
  const ttl = await redis.ttl(idemKeys[0]!)
  t.ok(ttl > 86400 - 60 && ttl <= 86400, `the first answer is kept 24 h (${ttl} s)`)
  t.equal((await notify({ to: '+990123411', message: both }, { 'idempotency-key': 'day-1' })).json().id, first.id)
})
