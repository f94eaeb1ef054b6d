import t from 'tap'
import { shardFor } from '../../../src/notifications/ids.js'
import { SandboxUpstream } from '../../../src/reachability/upstreams/sandbox.js'
import { buildTestApp } from '../../helpers/app.js'
import { CountingUpstream } from '../../helpers/upstream.js'
import { dropPrefix, REDIS_URL, redisAvailable, uniquePrefix } from '../../helpers/redis.js'
import { Redis } from 'ioredis'

async function setup (env: Record<string, string> = {}) {
  const upstream = new CountingUpstream(new SandboxUpstream({ comebackSeconds: 20 }))
  const { app, bearer } = await buildTestApp(env, { upstream })
  t.teardown(() => app.close())
  return { app, upstream, auth: await bearer('reachability:read') }
}

t.test('an SMS-only number answers connectivity ["SMS"], and the second call comes from the cache', async t => {
  const { app, auth } = await setup()
  const first = await app.inject({ url: '/v1/reachability/+990123411', headers: { authorization: auth } })
  t.equal(first.statusCode, 200)
  const body = first.json()
  t.match(body, { phone_number: '+990123411', is_reachable: true, connectivity: ['SMS'], status: { code: 'OK' }, source: 'upstream' })
  t.ok(Date.parse(body.checked_at))
  const second = await app.inject({ url: '/v1/reachability/990123411', headers: { authorization: auth } })
  t.equal(second.json().source, 'cache', 'the number without "+" is the same number')
})

t.test('the sandbox test numbers answer as documented', async t => {
  const { app, auth } = await setup()
  const ask = async (n: string) => (await app.inject({ url: `/v1/reachability/${n}`, headers: { authorization: auth } })).json()
  t.match(await ask('+990123400'), { is_reachable: true, connectivity: ['DATA', 'SMS'] })
  t.match(await ask('+990123422'), { is_reachable: true, connectivity: ['DATA'] })
  const gone = await ask('+990123433')
  t.match(gone, { is_reachable: false, connectivity: [] })
  t.ok(Date.now() - Date.parse(gone.latest_status_at) >= 70 * 86400_000 - 1000, 'last status 70 days ago')
  t.match(await ask('+990123455'), { status: { code: 'NO_COVERAGE' } })
  t.match(await ask('+990123466'), { status: { code: 'SUPPLIER_ERROR' } })
  t.match(await ask('+990123499'), { status: { code: 'NOT_FOUND' } })
  t.match(await ask('+990555'), { status: { code: 'INVALID_NUMBER_FORMAT' } })
})

t.test('+990123488 fails with 503 on its first call, then answers', async t => {
  const { app, auth } = await setup()
  const first = await app.inject({ url: '/v1/reachability/+990123488', headers: { authorization: auth } })
  t.equal(first.statusCode, 503)
  t.equal(first.headers['content-type'], 'application/problem+json; charset=utf-8')
  t.ok(first.headers['retry-after'])
  t.match(first.json(), { status: 503, type: /upstream-unavailable$/ })
  const second = await app.inject({ url: '/v1/reachability/+990123488', headers: { authorization: auth } })
  t.match(second.json(), { is_reachable: true, connectivity: ['DATA', 'SMS'] })
})

t.test('max_age=0 forces an upstream lookup', async t => {
  const { app, auth, upstream } = await setup()
  await app.inject({ url: '/v1/reachability/+990123400', headers: { authorization: auth } })
  const res = await app.inject({ url: '/v1/reachability/+990123400?max_age=0', headers: { authorization: auth } })
  t.equal(res.json().source, 'upstream')
  t.equal(upstream.callsFor('+990123400'), 2)
})

t.test('bad input is a 400 problem and never reaches the upstream', async t => {
  const { app, auth, upstream } = await setup()
  for (const url of ['/v1/reachability/not-a-number', '/v1/reachability/+4412', '/v1/reachability/00447911123456',
    '/v1/reachability/+990123400?max_age=-1', '/v1/reachability/+990123400?max_age=abc']) {
    const res = await app.inject({ url, headers: { authorization: auth } })
    t.equal(res.statusCode, 400, url)
    t.equal(res.headers['content-type'], 'application/problem+json; charset=utf-8')
    t.match(res.json(), { type: /validation-error$/, status: 400, errors: [{ path: /^(params|querystring)\./ }] })
  }
  t.equal(upstream.calls.length, 0)
})

t.test('auth: no token 401, bad token 401, missing scope 403, nothing asked upstream', async t => {
  const { app, upstream } = await setup()
  const { app: other, bearer } = await buildTestApp()
  t.teardown(() => other.close())
  const none = await app.inject({ url: '/v1/reachability/+990123400' })
  t.equal(none.statusCode, 401)
  t.ok(none.headers['www-authenticate'])
  t.equal((await app.inject({ url: '/v1/reachability/+990123400', headers: { authorization: 'Bearer abc.def.ghi' } })).statusCode, 401)
  t.equal((await app.inject({ url: '/v1/reachability/+990123400', headers: { authorization: 'Basic dXNlcjpwYXNz' } })).statusCode, 401)
  const wrongScope = await app.inject({ url: '/v1/reachability/+990123400', headers: { authorization: await bearer('notifications:write') } })
  t.equal(wrongScope.statusCode, 403)
  t.match(wrongScope.json(), { required_scope: 'reachability:read' })
  t.equal(upstream.calls.length, 0)
})

t.test('batch: one result per number in order, an invalid number fails alone', async t => {
  const { app, auth } = await setup()
  const res = await app.inject({
    method: 'POST',
    url: '/v1/reachability/batch',
    headers: { authorization: auth },
    payload: { phone_numbers: ['+990123400', 'nope', '990123411', '+990123488', '', '9'.repeat(5000)] },
  })
  t.equal(res.statusCode, 200)
  const { results } = res.json()
  t.equal(results.length, 6)
  t.match(results[0], { phone_number: '+990123400', connectivity: ['DATA', 'SMS'] })
  t.match(results[1], { status: 400, type: /invalid-phone-number$/ })
  t.match(results[2], { phone_number: '+990123411', connectivity: ['SMS'] })
  t.match(results[3], { status: 503 })
  t.match(results[4], { status: 400, type: /invalid-phone-number$/, detail: '"" is not a valid phone number: it is empty' }, 'an empty string fails alone')
  t.match(results[5], { status: 400, type: /invalid-phone-number$/, detail: `"${'9'.repeat(40)}…" is not a valid phone number: an E.164 number has a "+" and 2 to 15 digits` },
    'so does a string too long to be a number, quoted in part')
})

t.test('batch: upstream calls run with bounded concurrency', async t => {
  let inFlight = 0
  let peak = 0
  const slow = {
    name: 'slow',
    async check () {
      peak = Math.max(peak, ++inFlight)
      await new Promise(resolve => setTimeout(resolve, 10))
      inFlight--
      return { is_reachable: true, connectivity: ['SMS'], latest_status_at: null, status: { code: 'OK', message: 'Success' } }
    },
    async close () {},
  }
  const { app, bearer } = await buildTestApp({ REACHABILITY_BATCH_CONCURRENCY: '4' }, { upstream: slow })
  t.teardown(() => app.close())
  const phone_numbers = Array.from({ length: 40 }, (_, i) => `+9901${String(i).padStart(5, '0')}`)
  const res = await app.inject({ method: 'POST', url: '/v1/reachability/batch', headers: { authorization: await bearer() }, payload: { phone_numbers } })
  t.equal(res.json().results.length, 40)
  t.equal(peak, 4)
})

t.test('batch: empty, oversized, wrong types, unknown fields and malformed JSON are 400 problems', async t => {
  const { app, auth, upstream } = await setup()
  const post = (payload: string | object, contentType = 'application/json') => app.inject({
    method: 'POST', url: '/v1/reachability/batch', headers: { authorization: auth, 'content-type': contentType }, payload,
  })
  for (const payload of [
    { phone_numbers: [] },
    { phone_numbers: Array.from({ length: 1001 }, () => '+990123400') },
    { phone_numbers: '+990123400' },
    { phone_numbers: [1234567] },
    { phone_numbers: ['+990123400'], extra: true },
    {},
    '{"phone_numbers": [',
  ]) {
    const res = await post(payload)
    t.equal(res.statusCode, 400, JSON.stringify(payload).slice(0, 60))
    t.equal(res.headers['content-type'], 'application/problem+json; charset=utf-8')
  }
  const wrongType = await post('phone_numbers=1', 'application/x-www-form-urlencoded')
  t.equal(wrongType.statusCode, 415)
  t.equal(upstream.calls.length, 0)
})

t.test('unknown routes are 404 problems', async t => {
  const { app } = await setup()
  const res = await app.inject({ url: '/v1/nothing-here' })
  t.equal(res.statusCode, 404)
  t.match(res.json(), { type: /not-found$/, status: 404, title: 'Not found' })
})

t.test('with REDIS_URL the cache lives in Redis and survives a restart of the service', { skip: !(await redisAvailable()) && 'Redis is not running' }, async t => {
  const prefix = uniquePrefix()
  t.teardown(() => dropPrefix(prefix))
  const env = { REDIS_URL, REDIS_KEY_PREFIX: prefix }
  const first = await buildTestApp(env)
  const res = await first.app.inject({ url: '/v1/reachability/+990123411', headers: { authorization: await first.bearer() } })
  t.equal(res.json().source, 'upstream')
  await first.app.close()

  const redis = new Redis(REDIS_URL)
  t.teardown(() => redis.disconnect())
  const key = `${prefix}{s${shardFor('+990123411', first.app.config.shards)}}:reach:+990123411`
  const stored = JSON.parse((await redis.get(key))!)
  t.same(stored.record.connectivity, ['SMS'], 'visible with redis-cli under the number\'s key')
  t.ok(await redis.ttl(key) > 300, 'kept for its freshness plus the stale window')

  const second = await buildTestApp(env)
  t.teardown(() => second.app.close())
  const again = await second.app.inject({ url: '/v1/reachability/+990123411', headers: { authorization: await second.bearer() } })
  t.match(again.json(), { source: 'cache', connectivity: ['SMS'], checked_at: res.json().checked_at })
})
