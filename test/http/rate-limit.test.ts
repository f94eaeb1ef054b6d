import t, { type Test } from 'tap'
import { SignJWT } from 'jose'
import { Redis } from 'ioredis'
import { setTimeout as sleep } from 'node:timers/promises'
import { MemoryWindowCounter, rateLimitGroupOf, RedisWindowCounter, type WindowCount } from '../../src/http/rate-limit.js'
import { RedisStore } from '../../src/store/redis/redis-store.js'
import { buildTestApp } from '../helpers/app.js'
import { dropPrefix, REDIS_URL, redisAvailable, uniquePrefix } from '../helpers/redis.js'

const PROBLEM = 'application/problem+json; charset=utf-8'
const NUMBER = '/v1/reachability/+990123400'

async function setup (t: Test, env: Record<string, string | undefined>) {
  const test = await buildTestApp(env)
  t.teardown(() => test.app.close())
  return test
}

function count (counter: MemoryWindowCounter, key: string, windowMs = 60_000): WindowCount {
  let result: WindowCount | undefined
  counter.incr(key, (err, r) => { if (err) throw err; result = r }, windowMs)
  return result!
}

t.test('route groups: webhooks, health and metrics are never limited; the rest by their path', async t => {
  t.equal(rateLimitGroupOf('/v1/notifications'), 'notifications')
  t.equal(rateLimitGroupOf('/v1/notifications/:id'), 'notifications')
  t.equal(rateLimitGroupOf('/v1/reachability/:phone_number'), 'reachability')
  t.equal(rateLimitGroupOf('/v1/reachability/batch'), 'reachability')
  t.equal(rateLimitGroupOf('/identity-insights/v1/requests'), 'reachability')
  t.equal(rateLimitGroupOf('/v0.1/identity-insights'), 'reachability')
  t.equal(rateLimitGroupOf('/v1/queue'), 'ops')
  t.equal(rateLimitGroupOf('/v1/queue/dead/:id/retry'), 'ops')
  t.equal(rateLimitGroupOf('/docs'), 'default')
  t.equal(rateLimitGroupOf('/openapi.json'), 'default')
  for (const url of ['/v1/webhooks/vonage/messages', '/v1/webhooks/camara', '/healthz', '/readyz', '/metrics']) {
    t.equal(rateLimitGroupOf(url), null, url)
  }
})

t.test('the in-memory counter: a fixed window per key, a new one after it ends, bounded in size', async t => {
  let now = 1_000_000
  const counter = new MemoryWindowCounter(3, () => now)
  t.same(count(counter, 'a'), { current: 1, ttl: 60_000 })
  now += 10_000
  t.same(count(counter, 'a'), { current: 2, ttl: 50_000 })
  t.same(count(counter, 'b'), { current: 1, ttl: 60_000 }, 'keys count apart')
  now += 50_000
  t.same(count(counter, 'a'), { current: 1, ttl: 60_000 }, 'the window ended: counting starts again')
  count(counter, 'c')
  count(counter, 'd')
  count(counter, 'e')
  t.equal((counter as unknown as { windows: Map<string, unknown> }).windows.size, 3, 'never more keys than the bound')
  t.equal(counter.child(), counter, 'every route shares the counter')
})

t.test('over the limit: a 429 problem with Retry-After and the RateLimit-* headers', async t => {
  const { app, bearer } = await setup(t, { RATE_LIMIT_REACHABILITY_PER_MINUTE: '3' })
  const authorization = await bearer()
  for (let i = 1; i <= 3; i++) {
    const ok = await app.inject({ url: NUMBER, headers: { authorization } })
    t.equal(ok.statusCode, 200)
    t.equal(ok.headers['ratelimit-limit'], '3')
    t.equal(ok.headers['ratelimit-remaining'], String(3 - i))
    t.ok(Number(ok.headers['ratelimit-reset']) > 0 && Number(ok.headers['ratelimit-reset']) <= 60)
  }
  const refused = await app.inject({ url: NUMBER, headers: { authorization } })
  t.equal(refused.statusCode, 429)
  t.equal(refused.headers['content-type'], PROBLEM)
  t.match(refused.headers['retry-after'], /^\d+$/)
  t.ok(Number(refused.headers['retry-after']) <= 60)
  t.equal(refused.headers['ratelimit-limit'], '3')
  t.equal(refused.headers['ratelimit-remaining'], '0')
  t.match(refused.headers['ratelimit-reset'], /^\d+$/)
  t.ok(refused.headers['x-request-id'])
  t.match(refused.json(), {
    type: 'https://reachroute.dev/problems/rate-limited',
    title: 'Too many requests',
    status: 429,
    detail: /at most 3 requests a minute per caller on the reachability routes/,
    instance: NUMBER,
    request_id: refused.headers['x-request-id'],
  })
})

t.test('the limit is per caller, per group, and shared by the routes of a group', async t => {
  const { app, bearer } = await setup(t, { RATE_LIMIT_REACHABILITY_PER_MINUTE: '2', RATE_LIMIT_NOTIFICATIONS_PER_MINUTE: '2' })
  const alice = await bearer(undefined, 'alice')
  const bob = await bearer(undefined, 'bob')
  t.equal((await app.inject({ url: NUMBER, headers: { authorization: alice } })).statusCode, 200)
  const batch = await app.inject({ method: 'POST', url: '/v1/reachability/batch', headers: { authorization: alice }, payload: { phone_numbers: ['+990123400'] } })
  t.equal(batch.statusCode, 200, 'the batch route counts in the same group')
  const insights = await app.inject({
    method: 'POST', url: '/identity-insights/v1/requests', headers: { authorization: alice }, payload: { phone_number: '+990123400', insights: { reachability: {} } },
  })
  t.equal(insights.statusCode, 429, 'the Vonage-compatible route too: alice has used her 2')
  t.equal((await app.inject({ url: NUMBER, headers: { authorization: bob } })).statusCode, 200, 'bob has his own budget')
  const other = await app.inject({ url: '/v1/notifications/ntf_07_00000000000000000000000000000000', headers: { authorization: alice } })
  t.equal(other.statusCode, 404, 'the notifications group counts apart')
  t.equal(other.headers['ratelimit-remaining'], '1')
})

t.test('the caller is the verified token\'s subject: refused tokens are not counted and cannot spend another caller\'s budget', async t => {
  const { app, bearer } = await setup(t, { RATE_LIMIT_REACHABILITY_PER_MINUTE: '2' })
  const forged = await new SignJWT({ scope: 'reachability:read' }).setProtectedHeader({ alg: 'HS256' }).setSubject('victim')
    .setIssuedAt().setExpirationTime('10m').sign(new TextEncoder().encode('x'.repeat(40)))
  for (let i = 0; i < 5; i++) {
    const refused = await app.inject({ url: NUMBER, headers: { authorization: `Bearer ${forged}` } })
    t.equal(refused.statusCode, 401)
    t.notOk(refused.headers['ratelimit-limit'], 'auth refused it before the limiter')
  }
  const victim = await bearer(undefined, 'victim')
  const first = await app.inject({ url: NUMBER, headers: { authorization: victim } })
  t.equal(first.statusCode, 200)
  t.equal(first.headers['ratelimit-remaining'], '1', 'the victim\'s budget is whole')
})

t.test('the limiter runs before the body is parsed: a caller over the limit gets 429 even for a malformed body', async t => {
  const { app, bearer } = await setup(t, { RATE_LIMIT_NOTIFICATIONS_PER_MINUTE: '1' })
  const authorization = await bearer()
  const bad = (payload: string) => app.inject({ method: 'POST', url: '/v1/notifications', headers: { authorization, 'content-type': 'application/json' }, payload })
  t.equal((await bad('{"not json')).statusCode, 400)
  t.equal((await bad('{"not json')).statusCode, 429)
})

t.test('routes without auth count per client IP; webhooks and probes are never limited', async t => {
  const { app } = await setup(t, { RATE_LIMIT_DEFAULT_PER_MINUTE: '2' })
  const statuses = []
  for (let i = 0; i < 3; i++) statuses.push((await app.inject({ url: '/openapi.json' })).statusCode)
  t.same(statuses, [200, 200, 429])
  const other = await app.inject({ url: '/openapi.json', remoteAddress: '10.0.0.9' })
  t.equal(other.statusCode, 200, 'another address has its own budget')
  for (let i = 0; i < 5; i++) {
    const health = await app.inject({ url: '/healthz' })
    t.equal(health.statusCode, 200)
    t.notOk(health.headers['ratelimit-limit'])
    const webhook = await app.inject({ method: 'POST', url: '/v1/webhooks/camara', payload: {} })
    t.equal(webhook.statusCode, 401)
    t.notOk(webhook.headers['ratelimit-limit'])
  }
})

t.test('0 turns a group\'s limit off, and only that group\'s', async t => {
  const { app, bearer } = await setup(t, { RATE_LIMIT_REACHABILITY_PER_MINUTE: '0', RATE_LIMIT_OPS_PER_MINUTE: '1' })
  const authorization = await bearer()
  for (let i = 0; i < 20; i++) {
    const res = await app.inject({ url: NUMBER, headers: { authorization } })
    t.equal(res.statusCode, 200)
    t.notOk(res.headers['ratelimit-limit'])
  }
  t.equal((await app.inject({ url: '/v1/queue', headers: { authorization } })).statusCode, 200)
  t.equal((await app.inject({ url: '/v1/queue', headers: { authorization } })).statusCode, 429, 'the ops group is still limited')
})

t.test('the 429 is in the OpenAPI answers of every limited route', async t => {
  const { app } = await setup(t, {})
  const spec = app.swagger() as unknown as { paths: Record<string, Record<string, { responses: Record<string, unknown> }>> }
  t.ok(spec.paths['/v1/notifications']!.post!.responses['429'])
  t.ok(spec.paths['/v1/reachability/{phone_number}']!.get!.responses['429'])
  t.ok(spec.paths['/v1/queue']!.get!.responses['429'])
  t.notOk(spec.paths['/v1/webhooks/camara']!.post!.responses['429'])
  t.notOk(spec.paths['/healthz']!.get!.responses['429'])
})

const redisUp = await redisAvailable()

t.test('on Redis: two instances share one count, kept under the key prefix', { skip: redisUp ? false : `no Redis at ${REDIS_URL}` }, async t => {
  const prefix = uniquePrefix()
  t.teardown(() => dropPrefix(prefix))
  const env = { REDIS_URL, REDIS_KEY_PREFIX: prefix, RATE_LIMIT_REACHABILITY_PER_MINUTE: '3' }
  const a = await setup(t, env)
  const b = await setup(t, env)
  // Both instances verify the same secret: a token of one is a token of the other.
  const authorization = await a.bearer(undefined, 'shared-caller')
  const statuses = []
  for (const app of [a.app, b.app, a.app, b.app]) statuses.push((await app.inject({ url: NUMBER, headers: { authorization } })).statusCode)
  t.same(statuses, [200, 200, 200, 429])
  const elsewhere = await b.app.inject({ url: NUMBER, headers: { authorization: await b.bearer(undefined, 'someone-else') } })
  t.equal(elsewhere.statusCode, 200)

  const redis = new Redis(REDIS_URL)
  t.teardown(() => redis.disconnect())
  const key = `${prefix}{rl:reachability:sub:shared-caller}:hits`
  t.equal(await redis.get(key), '4')
  const ttl = await redis.pttl(key)
  t.ok(ttl > 0 && ttl <= 60_000, `the window ends within a minute (${ttl} ms)`)
})

t.test('on Redis: a limiter that cannot count lets requests through; a route that needs the store still answers 503', { skip: redisUp ? false : `no Redis at ${REDIS_URL}` }, async t => {
  const prefix = uniquePrefix()
  t.teardown(() => dropPrefix(prefix))
  const { app, bearer } = await setup(t, { REDIS_URL, REDIS_KEY_PREFIX: prefix, RATE_LIMIT_DEFAULT_PER_MINUTE: '1', RATE_LIMIT_REACHABILITY_PER_MINUTE: '1' })
  const authorization = await bearer()
  t.ok(app.store instanceof RedisStore)
  ;(app.store as RedisStore).redis.disconnect()
  for (let i = 0; i < 3; i++) {
    const docs = await app.inject({ url: '/openapi.json' })
    t.equal(docs.statusCode, 200, `request ${i + 1} over a limit of 1: the docs need no store, so they are served`)
  }
  const lookup = await app.inject({ url: '/v1/reachability/+990123401', headers: { authorization } })
  t.equal(lookup.statusCode, 503)
  t.match(lookup.json(), { type: /store-unavailable$/ })
})

/** A counter on a Redis client of its own (another process, as far as Redis can tell), and how often it called Redis. */
function redisCounter (t: Test, prefix: string) {
  // No auto-pipelining: it calls the script by name, past the wrapper that counts the calls.
  const redis = new Redis(REDIS_URL)
  t.teardown(() => redis.disconnect())
  const counter = new RedisWindowCounter(redis, prefix)
  const calls = { n: 0 }
  const script = redis.rrRateLimit.bind(redis)
  redis.rrRateLimit = (...args: Parameters<typeof script>) => {
    calls.n++
    return script(...args)
  }
  const hit = (key: string, max: number, windowMs = 60_000) => new Promise<WindowCount>((resolve, reject) =>
    counter.incr(key, (err, result) => err ? reject(err) : resolve(result!), windowMs, max))
  return { redis, counter, calls, hit }
}

t.test('on Redis: each process reserves blocks of counts, so most hits need no Redis call and the limit still holds', { skip: redisUp ? false : `no Redis at ${REDIS_URL}` }, async t => {
  const prefix = uniquePrefix()
  t.teardown(() => dropPrefix(prefix))
  const [a, b] = [redisCounter(t, prefix), redisCounter(t, prefix)]
  const max = 1000
  // 1,300 hits in waves of 20, alternating between the two processes: hits that wait for a block share it.
  const results: WindowCount[] = []
  for (let wave = 0; wave < 65; wave++) {
    results.push(...await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).hit('notifications:sub:bulk', max))))
  }
  const admitted = results.filter(r => r.current <= max).map(r => r.current)
  t.ok(admitted.length <= max, `never more than the limit admitted (${admitted.length})`)
  // What a block left unused is counted but not served: at most 1/16 of what was left, per process.
  t.ok(admitted.length >= max - 2 * Math.ceil(max / 16), `nearly the whole limit admitted (${admitted.length})`)
  t.equal(new Set(admitted).size, admitted.length, 'each admitted hit has a count of its own, across both processes')
  t.ok(results.every(r => r.ttl > 0 && r.ttl <= 60_000), 'every hit knows when its window ends')
  const calls = a.calls.n + b.calls.n
  t.ok(calls < 200, `most hits needed no Redis call (${calls} calls for 1,300 hits)`)
  const stored = Number(await a.redis.get(a.counter.key('notifications:sub:bulk')))
  t.ok(stored >= admitted.length && stored <= 1300, `Redis holds the count reserved (${stored})`)

  t.ok((await a.hit('notifications:sub:bulk', max)).current > max, 'over the limit: refused')
  const before = a.calls.n
  t.ok((await a.hit('notifications:sub:bulk', max)).current > max, 'and again')
  t.equal(a.calls.n, before, 'a process that saw the limit reached refuses without calling Redis again')
})

t.test('on Redis: a small limit is counted hit by hit, and a new window starts when the key expires', { skip: redisUp ? false : `no Redis at ${REDIS_URL}` }, async t => {
  const prefix = uniquePrefix()
  t.teardown(() => dropPrefix(prefix))
  const { redis, counter, calls, hit } = redisCounter(t, prefix)
  const currents = []
  for (let i = 0; i < 5; i++) currents.push((await hit('ops:sub:x', 5, 300)).current)
  t.same(currents, [1, 2, 3, 4, 5])
  t.equal(calls.n, 5, 'a limit below 16 per window reserves one count at a time')
  t.equal(await redis.get(counter.key('ops:sub:x')), '5')
  t.ok((await hit('ops:sub:x', 5, 300)).current > 5, 'the sixth is over')
  await sleep(350)
  t.equal((await hit('ops:sub:x', 5, 300)).current, 1, 'the window ended: counting starts again')
})

t.test('on Redis: when Redis does not answer, every waiting hit gets the error (the plugin then lets it through)', { skip: redisUp ? false : `no Redis at ${REDIS_URL}` }, async t => {
  const prefix = uniquePrefix()
  const { redis, hit } = redisCounter(t, prefix)
  await redis.ping()
  redis.disconnect()
  const settled = await Promise.allSettled([hit('default:ip:1', 100), hit('default:ip:1', 100), hit('default:ip:1', 100)])
  t.same(settled.map(s => s.status), ['rejected', 'rejected', 'rejected'])
})
