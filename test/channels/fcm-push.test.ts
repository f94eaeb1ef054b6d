import net from 'node:net'
import t, { type Test } from 'tap'
import { FcmAccessTokenProvider, FcmTokenError, parseServiceAccount } from '../../src/auth/fcm-token.js'
import type { PushMessage } from '../../src/channels/channel.js'
import { FcmPushChannel } from '../../src/channels/fcm-push.js'
import { CircuitBreakerPushChannel } from '../../src/channels/circuit-breaker.js'
import {
  badField, FCM_SCOPE, generateServiceAccount, internal, invalidToken, quotaExceeded, senderIdMismatch, startFakeFcm,
  thirdPartyAuthError, unavailable, unregistered,
} from '../fakes/fcm.js'
import { slow } from '../fakes/scripted-server.js'

const account = await generateServiceAccount('rr-project')
const serviceAccount = parseServiceAccount(account.json)

/** A clock the test moves by hand, starting now (the fake checks assertions against the real time). */
function manualClock () {
  let now = Date.now()
  return { now: () => now, advance: (seconds: number) => { now += seconds * 1000 } }
}

async function setup (t: Test, options: { expiresInSeconds?: number, timeoutMs?: number, projectId?: string } = {}) {
  const clock = manualClock()
  const fake = await startFakeFcm({
    projectId: options.projectId ?? 'rr-project',
    clientEmail: serviceAccount.client_email,
    publicKey: account.publicKey,
    ...(options.expiresInSeconds ? { expiresInSeconds: options.expiresInSeconds } : {}),
  })
  const channel = new FcmPushChannel({
    serviceAccount,
    projectId: options.projectId,
    baseUrl: fake.url,
    tokenUrl: fake.tokenUrl,
    timeoutMs: options.timeoutMs ?? 2000,
    now: clock.now,
  })
  t.teardown(async () => { await channel.close(); await fake.close() })
  return { fake, channel, clock }
}

const message = (over: Partial<PushMessage> = {}): PushMessage => ({
  notificationId: 'ntf_01', token: 'device-1', title: 'Parcel', body: 'Arrives today', data: { order: '42' }, ttlSeconds: 3600, ...over,
})

t.test('sends the HTTP v1 message with an access token and answers with its name', async t => {
  const { fake, channel } = await setup(t)
  const outcome = await channel.sendPush(message())
  const [send] = fake.sends
  t.equal(send?.rejected, undefined, 'the fake found the token and the message good')
  t.equal(send?.path, '/v1/projects/rr-project/messages:send')
  t.same(send?.body, {
    message: {
      token: 'device-1',
      notification: { title: 'Parcel', body: 'Arrives today' },
      data: { order: '42', reachroute_id: 'ntf_01' },
      android: { priority: 'HIGH', ttl: '3600s' },
    },
  })
  t.match(outcome, { kind: 'sent', provider: 'fcm', providerMessageId: /^projects\/rr-project\/messages\// })
})

t.test('the assertion is signed by the service account for the FCM scope, living at most an hour', async t => {
  const { fake, channel } = await setup(t)
  await channel.sendPush(message())
  const [request] = fake.tokenRequests
  t.equal(request?.rejected, undefined)
  t.match(request?.claims, { iss: serviceAccount.client_email, aud: fake.tokenUrl, scope: FCM_SCOPE })
  t.equal(request!.claims!.exp! - request!.claims!.iat!, 3600)
})

t.test('FCM_PROJECT_ID wins over the service account\'s project_id', async t => {
  const { fake, channel } = await setup(t, { projectId: 'other-project' })
  t.equal((await channel.sendPush(message())).kind, 'sent')
  t.equal(fake.sends[0]?.path, '/v1/projects/other-project/messages:send')
})

t.test('the notification id goes in data, over a caller key of the same name; no data gives just the id', async t => {
  const { fake, channel } = await setup(t)
  await channel.sendPush(message({ data: { reachroute_id: 'spoofed', k: 'v' } }))
  await channel.sendPush(message({ notificationId: 'ntf_02', data: undefined }))
  t.same(fake.valid().map(r => (r.body as { message: { data: unknown } }).message.data),
    [{ reachroute_id: 'ntf_01', k: 'v' }, { reachroute_id: 'ntf_02' }])
})

t.test('the access token is fetched once and reused across sends, concurrent ones included', async t => {
  const { fake, channel } = await setup(t)
  await Promise.all([1, 2, 3, 4, 5].map(n => channel.sendPush(message({ notificationId: `n${n}` }))))
  await channel.sendPush(message({ notificationId: 'n6' }))
  t.equal(fake.tokenFetches(), 1)
  t.equal(new Set(fake.sends.map(s => s.accessToken)).size, 1)
  t.equal(fake.valid().length, 6)
})

t.test('the access token is refetched 60 s before it expires, not earlier', async t => {
  const { fake, channel, clock } = await setup(t, { expiresInSeconds: 3600 })
  await channel.sendPush(message())
  clock.advance(3600 - 61)
  await channel.sendPush(message())
  t.equal(fake.tokenFetches(), 1, 'still fresh 61 s before expiry')
  clock.advance(2)
  await channel.sendPush(message())
  t.equal(fake.tokenFetches(), 2, 'renewed 59 s before expiry')
  t.not(fake.sends[2]?.accessToken, fake.sends[0]?.accessToken)
  t.equal(fake.valid().length, 3)
})

t.test('a short-lived access token is renewed halfway through its life', async t => {
  const { fake, channel, clock } = await setup(t, { expiresInSeconds: 60 })
  await channel.sendPush(message())
  clock.advance(29)
  await channel.sendPush(message())
  t.equal(fake.tokenFetches(), 1)
  clock.advance(1)
  await channel.sendPush(message())
  t.equal(fake.tokenFetches(), 2)
})

t.test('UNREGISTERED means the push token is dead', async t => {
  const { fake, channel } = await setup(t)
  fake.script.next(unregistered())
  t.same(await channel.sendPush(message()), { kind: 'token_invalid', provider: 'fcm', reason: 'UNREGISTERED: Requested entity was not found.' })
})

t.test('INVALID_ARGUMENT on the token means the push token is invalid', async t => {
  const { fake, channel } = await setup(t)
  fake.script.next(invalidToken())
  t.match(await channel.sendPush(message()), { kind: 'token_invalid', reason: /^INVALID_ARGUMENT: / })
})

t.test('INVALID_ARGUMENT without field details is taken as about the token', async t => {
  const { fake, channel } = await setup(t)
  fake.script.next({ status: 400, json: { error: { code: 400, message: 'Request contains an invalid argument.', status: 'INVALID_ARGUMENT' } } })
  t.match(await channel.sendPush(message()), { kind: 'token_invalid', reason: 'INVALID_ARGUMENT: Request contains an invalid argument.' })
})

t.test('INVALID_ARGUMENT naming something else than the token, without field details, fails the message: no failover', async t => {
  const { fake, channel } = await setup(t)
  fake.script.next({ status: 400, json: { error: { code: 400, message: 'Invalid data payload key: from', status: 'INVALID_ARGUMENT', details: [{ '@type': 'type.googleapis.com/google.firebase.fcm.v1.FcmError', errorCode: 'INVALID_ARGUMENT' }] } } })
  t.match(await channel.sendPush(message()), { kind: 'failed', reason: 'INVALID_ARGUMENT: Invalid data payload key: from' })
})

t.test('the fake FCM refuses a data key FCM reserves, as FCM does (no field named); the channel fails it, no failover', async t => {
  const { channel } = await setup(t)
  for (const key of ['from', 'message_type', 'google.c.a.e', 'gcm.notification.x', 'GoogleThing']) {
    t.match(await channel.sendPush({ ...message(), data: { [key]: 'x' } }), { kind: 'failed', reason: `INVALID_ARGUMENT: Invalid data payload key: ${key}` }, key)
  }
})

t.test('INVALID_ARGUMENT on another field fails the message: the token is not to blame', async t => {
  const { fake, channel } = await setup(t)
  fake.script.next(badField('message.data', 'Invalid data payload key: from'))
  t.match(await channel.sendPush(message()), { kind: 'failed', reason: /^INVALID_ARGUMENT: / })
})

t.test('SENDER_ID_MISMATCH fails the message', async t => {
  const { fake, channel } = await setup(t)
  fake.script.next(senderIdMismatch())
  t.same(await channel.sendPush(message()), { kind: 'failed', provider: 'fcm', reason: 'SENDER_ID_MISMATCH: SenderId mismatch' })
})

t.test('another 4xx fails the message', async t => {
  const { fake, channel } = await setup(t)
  fake.script.next({ status: 404, json: { error: { code: 404, message: 'Requested entity was not found.', status: 'NOT_FOUND' } } })
  t.match(await channel.sendPush(message()), { kind: 'failed', reason: /^NOT_FOUND/ })
})

t.test('QUOTA_EXCEEDED is retried, with the Retry-After seconds', async t => {
  const { fake, channel } = await setup(t)
  fake.script.next(quotaExceeded(30))
  t.match(await channel.sendPush(message()), { kind: 'retry', retryAfterSeconds: 30, reason: /^QUOTA_EXCEEDED/ })
})

t.test('UNAVAILABLE and INTERNAL are retried', async t => {
  const { fake, channel } = await setup(t)
  fake.script.next(unavailable(), internal(), { status: 502, raw: 'Bad Gateway' })
  t.match(await channel.sendPush(message()), { kind: 'retry', reason: /^UNAVAILABLE/ })
  t.match(await channel.sendPush(message()), { kind: 'retry', reason: /^INTERNAL/ })
  t.match(await channel.sendPush(message()), { kind: 'retry', reason: 'HTTP 502: HTTP 502' }, 'a 5xx without an FCM body too')
})

t.test('401 (our access token revoked) drops it and sends once more at once with a new one: no retry spent', async t => {
  const { fake, channel } = await setup(t)
  t.equal((await channel.sendPush(message())).kind, 'sent')
  fake.revoke(fake.sends[0]!.accessToken!)
  t.equal((await channel.sendPush(message())).kind, 'sent', 'sent with the new token')
  t.equal(fake.tokenFetches(), 2)
  t.equal(fake.sends.length, 3, 'the refused send and the one sent again')
  // The new one refused as well: a retry, not a third send.
  fake.revoke(fake.sends[2]!.accessToken!)
  fake.script.next({ status: 401, json: { error: { code: 401, message: 'Request had invalid authentication credentials.', status: 'UNAUTHENTICATED' } } })
  t.match(await channel.sendPush(message()), { kind: 'retry', reason: /access token was refused/ })
  t.equal(fake.sends.length, 5)
})

t.test('one revoked access token does not open the push circuit, however many sends meet it at once', async t => {
  const { fake, channel } = await setup(t)
  t.equal((await channel.sendPush(message())).kind, 'sent')
  fake.revoke(fake.sends[0]!.accessToken!)
  const guarded = new CircuitBreakerPushChannel(channel, { failures: 5, halfOpenAfterMs: 10_000 })
  const outcomes = await Promise.all(Array.from({ length: 8 }, () => guarded.sendPush(message())))
  t.same(outcomes.map(o => o.kind), Array(8).fill('sent'))
  t.equal(guarded.breaker.state, 'closed')
})

t.test('THIRD_PARTY_AUTH_ERROR (APNs or web push credentials) fails the message and keeps the access token', async t => {
  const { fake, channel } = await setup(t)
  fake.script.next(thirdPartyAuthError())
  t.match(await channel.sendPush(message()), { kind: 'failed', reason: /^THIRD_PARTY_AUTH_ERROR/ })
  await channel.sendPush(message())
  t.equal(fake.tokenFetches(), 1)
})

t.test('a payload over 4096 bytes is too large before anything is sent (the worker fails over to SMS)', async t => {
  const { fake, channel } = await setup(t)
  const outcome = await channel.sendPush(message({ body: 'é'.repeat(2100) }))
  t.match(outcome, { kind: 'too_large', reason: /over FCM's limit of 4096/ })
  t.equal(fake.sends.length, 0)
  t.equal(fake.tokenRequests.length, 0)
})

t.test('a payload just under 4096 bytes goes through the fake\'s own size check', async t => {
  const { fake, channel } = await setup(t)
  const base = JSON.stringify({ notification: { title: 'Parcel', body: '' }, data: { order: '42', reachroute_id: 'ntf_01' } }).length
  t.equal((await channel.sendPush(message({ body: 'x'.repeat(4096 - base) }))).kind, 'sent')
  t.equal(fake.valid().length, 1)
})

t.test('no answer within the timeout is retried', async t => {
  const { fake, channel } = await setup(t, { timeoutMs: 150 })
  await channel.sendPush(message())
  fake.script.next(slow({ status: 200, json: { name: 'late' } }, 2000))
  t.match(await channel.sendPush(message()), { kind: 'retry', reason: /no answer/ })
})

t.test('the token endpoint failing: 5xx is retried and not kept; a refusal fails, and is the answer for 30 s without asking again', async t => {
  const { fake, channel, clock } = await setup(t)
  fake.tokenScript.next({ status: 503, headers: { 'retry-after': '5' }, json: { error: 'backendError' } })
  t.match(await channel.sendPush(message()), { kind: 'retry', retryAfterSeconds: 5, reason: /no access token: the token URL answered 503/ })
  fake.tokenScript.next({ status: 400, json: { error: 'invalid_grant', error_description: 'Invalid JWT Signature.' } })
  t.match(await channel.sendPush(message()), { kind: 'failed', reason: /invalid_grant: Invalid JWT Signature\./ })
  const asked = fake.tokenRequests.length
  for (let i = 0; i < 5; i++) t.match(await channel.sendPush(message()), { kind: 'failed', reason: /invalid_grant/ })
  t.equal(fake.tokenRequests.length, asked, 'five sends within 30 s: the token URL not asked again (not at the push rate)')
  t.equal(fake.sends.length, 0, 'nothing reaches messages:send without a token')
  clock.advance(31)
  t.equal((await channel.sendPush(message())).kind, 'sent', 'asked again after 30 s')
})

t.test('a token URL that gives no HTTP answer (bytes that are not HTTP) is a retry, not a failure', async t => {
  const server = net.createServer(socket => { socket.on('error', () => {}); socket.end('garbage, not HTTP\r\n\r\n') })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const fake = await startFakeFcm({ projectId: 'rr-project', clientEmail: serviceAccount.client_email, publicKey: account.publicKey })
  const channel = new FcmPushChannel({
    serviceAccount, baseUrl: fake.url, tokenUrl: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}/token`, timeoutMs: 2000,
  })
  try {
    t.match(await channel.sendPush(message()), { kind: 'retry', reason: /no access token: no answer from the token URL/ })
    t.equal(fake.sends.length, 0)
  } finally {
    await channel.close().catch(() => {})
    await fake.close()
    server.close()
  }
})

t.test('a token endpoint answering 2xx without a token is retried', async t => {
  const { fake, channel } = await setup(t)
  fake.tokenScript.next({ status: 200, json: { token_type: 'Bearer' } })
  t.match(await channel.sendPush(message()), { kind: 'retry', reason: /without an access_token/ })
})

t.test('FcmAccessTokenProvider', async t => {
  const clock = manualClock()
  const fake = await startFakeFcm({ projectId: 'rr-project', clientEmail: serviceAccount.client_email, publicKey: account.publicKey })
  const tokens = new FcmAccessTokenProvider({ serviceAccount, tokenUrl: fake.tokenUrl, timeoutMs: 2000, now: clock.now })
  t.teardown(async () => { await tokens.close(); await fake.close() })

  t.test('concurrent callers share one fetch', async t => {
    const all = await Promise.all([tokens.token(), tokens.token(), tokens.token()])
    t.equal(new Set(all).size, 1)
    t.equal(fake.tokenFetches(), 1)
  })

  t.test('invalidate drops only the token it names', async t => {
    const current = await tokens.token()
    tokens.invalidate('some-older-token')
    t.equal(await tokens.token(), current)
    tokens.invalidate(current)
    t.not(await tokens.token(), current)
  })

  t.test('a private key that cannot be used is a permanent error', async t => {
    const broken = new FcmAccessTokenProvider({
      serviceAccount: { ...serviceAccount, private_key: 'not a key' }, tokenUrl: fake.tokenUrl, timeoutMs: 2000,
    })
    t.teardown(() => broken.close())
    const err = await broken.token().then(() => undefined, (e: unknown) => e)
    t.ok(err instanceof FcmTokenError)
    t.equal((err as FcmTokenError).transient, false)
  })

  t.test('a token URL nobody listens on is a transient error', async t => {
    const nowhere = new FcmAccessTokenProvider({ serviceAccount, tokenUrl: 'http://127.0.0.1:9/token', timeoutMs: 500 })
    t.teardown(() => nowhere.close())
    const err = await nowhere.token().then(() => undefined, (e: unknown) => e)
    t.ok(err instanceof FcmTokenError)
    t.equal((err as FcmTokenError).transient, true)
  })
})
