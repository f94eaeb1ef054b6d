import t, { type Test } from 'tap'
import { StoreUnavailableError } from '../../src/domain/errors.js'
import { SandboxUpstream } from '../../src/reachability/upstreams/sandbox.js'
import { MemoryStore } from '../../src/store/memory/memory-store.js'
import { buildTestApp } from '../helpers/app.js'
import { counted } from '../helpers/store.js'
import { CountingUpstream } from '../helpers/upstream.js'

// HEAD is answered only where GET is cheap and writes nothing (health, readiness, metrics, docs); on every other GET
// path it is a 405 problem, refused before it can look a number up, read the store or spend rate-limit budget.

const PROBLEM = 'application/problem+json; charset=utf-8'

async function setup (t: Test, env: Record<string, string> = {}) {
  const upstream = new CountingUpstream(new SandboxUpstream({ comebackSeconds: 20 }))
  const store = new MemoryStore({ shards: 2 })
  const { store: countedStore, calls } = counted(store)
  const { app, bearer } = await buildTestApp(env, { upstream, store: countedStore })
  t.teardown(async () => {
    await app.close()
    await store.close()
  })
  calls.clear()
  return { app, upstream, bearer, storeCalls: calls, auth: await bearer() }
}

t.test('HEAD on a reachability lookup is a 405 problem with Allow: GET, and asks the upstream and the store nothing', async t => {
  const { app, upstream, storeCalls, auth } = await setup(t)
  for (const url of ['/v1/reachability/+990123400', '/v1/reachability/+990123400?max_age=0', '/v1/reachability/+447911123456']) {
    const res = await app.inject({ method: 'HEAD', url, headers: { authorization: auth } })
    t.equal(res.statusCode, 405, url)
    t.equal(res.headers['content-type'], PROBLEM, `${url}: a problem document's headers`)
    t.equal(res.headers.allow, 'GET', url)
    t.ok(Number(res.headers['content-length']) > 0, `${url}: the length of the problem GET would carry`)
    t.equal(res.body, '', `${url}: no body`)
    t.ok(res.headers['x-request-id'])
    t.equal(res.headers['cache-control'], 'no-store', 'the API\'s security headers')
  }
  t.equal(upstream.calls.length, 0, 'no upstream call')
  t.same([...storeCalls.keys()], [], 'the store was neither read nor written')

  const get = await app.inject({ url: '/v1/reachability/+990123400', headers: { authorization: auth } })
  t.equal(get.statusCode, 200)
  t.equal(get.json().source, 'upstream', 'GET still looks up, and nothing was cached by the HEADs')
  t.equal(upstream.calls.length, 1)
})

t.test('a refused HEAD carries the headers of the problem document the error mapper makes, as any refusal', async t => {
  const { app, auth } = await setup(t)
  const res = await app.inject({ method: 'HEAD', url: '/v1/reachability/+990123400', headers: { authorization: auth, 'x-request-id': 'head-1' } })
  t.equal(res.headers['x-request-id'], 'head-1')
  t.equal(res.headers['content-length'], String(Buffer.byteLength(JSON.stringify({
    type: 'https://reachroute.dev/problems/method-not-allowed',
    title: 'Method not allowed',
    status: 405,
    detail: 'HEAD is not answered here: the GET of this path does real work (it reads the store, or looks a number up ' +
      'and may ask the reachability upstream) that HEAD would throw away. Send GET.',
    instance: '/v1/reachability/+990123400',
    request_id: 'head-1',
  }))), 'the length of the RFC 9457 document the error mapper makes')
})

t.test('HEAD is refused on every GET path of the API, Allow naming the methods the path takes; nothing reaches the store', async t => {
  const { app, upstream, storeCalls, auth } = await setup(t)
  const paths: [string, string][] = [
    ['/v1/reachability/+990123411', 'GET'],
    ['/v1/notifications/ntf_00_00000000000000000000000000000000', 'GET'],
    ['/v1/queue', 'GET'],
    ['/v1/queue/dead?limit=5', 'GET'],
    ['/v1/reports/stale-contacts?days=1', 'GET'],
    ['/v1/reports/offline-devices', 'GET'],
    ['/v1/reports/refresh/scan_1', 'GET'],
    ['/v1/campaigns', 'GET, POST'],
    ['/v1/campaigns/cmp_1', 'GET'],
  ]
  for (const [url, allow] of paths) {
    const res = await app.inject({ method: 'HEAD', url, headers: { authorization: auth } })
    t.equal(res.statusCode, 405, url)
    t.equal(res.headers.allow, allow, url)
    t.equal(res.headers['content-type'], PROBLEM, url)
    t.equal(res.body, '', url)
  }
  t.equal(upstream.calls.length, 0)
  t.same([...storeCalls.keys()], [], 'no store call')
  const invalid = await app.inject({ method: 'HEAD', url: '/v1/reachability/not-a-number', headers: { authorization: auth } })
  t.equal(invalid.statusCode, 405, 'refused before its parameters are validated: the method is wrong whatever the number')
})

t.test('auth comes first: a HEAD without a token is a 401, with a token lacking the scope a 403', async t => {
  const { app, upstream, bearer } = await setup(t)
  const none = await app.inject({ method: 'HEAD', url: '/v1/reachability/+990123400' })
  t.equal(none.statusCode, 401)
  t.equal(none.headers['content-type'], PROBLEM)
  t.ok(none.headers['www-authenticate'])
  t.equal(none.body, '')
  const forbidden = await app.inject({ method: 'HEAD', url: '/v1/notifications/ntf_00_x', headers: { authorization: await bearer('reachability:read') } })
  t.equal(forbidden.statusCode, 403)
  t.equal(forbidden.headers['content-type'], PROBLEM)
  t.equal(upstream.calls.length, 0)
})

t.test('a refused HEAD spends no rate-limit budget', async t => {
  const { app, auth } = await setup(t, { RATE_LIMIT_REACHABILITY_PER_MINUTE: '2' })
  for (let i = 0; i < 3; i++) {
    t.equal((await app.inject({ method: 'HEAD', url: '/v1/reachability/+990123400', headers: { authorization: auth } })).statusCode, 405)
  }
  const statuses = []
  for (let i = 0; i < 3; i++) statuses.push((await app.inject({ url: '/v1/reachability/+990123400', headers: { authorization: auth } })).statusCode)
  t.same(statuses, [200, 200, 429], 'the two GETs a minute are all there; the third is over')
})

t.test('HEAD on /healthz and /readyz answers as GET does, without the body', async t => {
  const { app, upstream } = await setup(t)
  for (const url of ['/healthz', '/readyz']) {
    const get = await app.inject({ url })
    const head = await app.inject({ method: 'HEAD', url })
    t.equal(head.statusCode, 200, url)
    t.equal(head.headers['content-type'], get.headers['content-type'], url)
    t.equal(head.headers['content-length'], String(Buffer.byteLength(get.body)), `${url}: GET's length`)
    t.equal(head.body, '', url)
  }
  t.equal(upstream.calls.length, 0)
})

/** A store that is there but does not answer, as a Redis behind a broken network would be. */
class UnansweringStore extends MemoryStore {
  override async ping (): Promise<void> {
    throw new StoreUnavailableError('the store does not answer')
  }
}

t.test('HEAD /readyz is a 503 problem while the store does not answer, as GET', async t => {
  const store = new UnansweringStore()
  const { app } = await buildTestApp({}, { store })
  t.teardown(async () => {
    await app.close()
    await store.close()
  })
  const res = await app.inject({ method: 'HEAD', url: '/readyz' })
  t.equal(res.statusCode, 503)
  t.equal(res.headers['content-type'], PROBLEM)
  t.ok(res.headers['retry-after'])
  t.equal(res.body, '')
  t.equal((await app.inject({ method: 'HEAD', url: '/healthz' })).statusCode, 200, 'the process is still alive')
})

t.test('HEAD /metrics answers the Prometheus media type without the body; with METRICS_AUTH=ops it needs the ops scope', async t => {
  const { app } = await setup(t)
  const res = await app.inject({ method: 'HEAD', url: '/metrics' })
  t.equal(res.statusCode, 200)
  t.match(res.headers['content-type'], /^text\/plain; version=0\.0\.4/)
  t.equal(res.body, '')

  const { app: guarded, bearer } = await buildTestApp({ METRICS_AUTH: 'ops' })
  t.teardown(() => guarded.close())
  t.equal((await guarded.inject({ method: 'HEAD', url: '/metrics' })).statusCode, 401)
  t.equal((await guarded.inject({ method: 'HEAD', url: '/metrics', headers: { authorization: await bearer('reachability:read') } })).statusCode, 403)
  t.equal((await guarded.inject({ method: 'HEAD', url: '/metrics', headers: { authorization: await bearer('ops') } })).statusCode, 200)
})

t.test('HEAD on the docs answers as GET does; with DOCS_AUTH=ops it needs the ops scope', async t => {
  const { app } = await setup(t)
  for (const url of ['/docs', '/openapi.json']) {
    const res = await app.inject({ method: 'HEAD', url })
    t.equal(res.statusCode, 200, url)
    t.equal(res.body, '', url)
  }
  const { app: guarded, bearer } = await buildTestApp({ DOCS_AUTH: 'ops' })
  t.teardown(() => guarded.close())
  t.equal((await guarded.inject({ method: 'HEAD', url: '/openapi.json' })).statusCode, 401)
  t.equal((await guarded.inject({ method: 'HEAD', url: '/openapi.json', headers: { authorization: await bearer('ops') } })).statusCode, 200)
})

t.test('a method a path does not take is a 405 problem whose Allow names the methods it takes; an unknown path stays a 404', async t => {
  const { app, upstream, storeCalls, auth } = await setup(t)
  const cases: [string, string, string][] = [
    ['PUT', '/v1/notifications', 'POST'],
    ['PATCH', '/v1/notifications', 'POST'],
    ['DELETE', '/v1/notifications', 'POST'],
    ['OPTIONS', '/v1/notifications', 'POST'],
    ['GET', '/v1/notifications', 'POST'],
    ['PUT', '/v1/notifications/', 'POST'],
    ['PUT', '/v1/notifications?x=1', 'POST'],
    ['POST', '/v1/notifications/ntf_00_00000000000000000000000000000000', 'GET'],
    ['DELETE', '/v1/campaigns', 'GET, POST'],
    ['GET', '/v1/queue/dead/ntf_00_00000000000000000000000000000000', 'DELETE'],
    ['GET', '/v1/campaigns/cmp_1/pause', 'POST'],
    ['POST', '/healthz', 'GET, HEAD'],
    ['DELETE', '/metrics', 'GET, HEAD'],
    ['POST', '/openapi.json', 'GET, HEAD'],
  ]
  for (const [method, url, allow] of cases) {
    const res = await app.inject({ method: method as 'PUT', url, headers: { authorization: auth } })
    t.equal(res.statusCode, 405, `${method} ${url}`)
    t.equal(res.headers.allow, allow, `${method} ${url}`)
    t.equal(res.headers['content-type'], PROBLEM, `${method} ${url}`)
    t.ok(res.headers['x-request-id'], `${method} ${url}`)
    t.match(res.json(), { type: 'https://reachroute.dev/problems/method-not-allowed', status: 405, title: 'Method not allowed', detail: new RegExp(`^${method} is not answered here: this path takes ${allow}$`) }, `${method} ${url}`)
  }
  const head = await app.inject({ method: 'HEAD', url: '/v1/notifications', headers: { authorization: auth } })
  t.equal(head.statusCode, 405, 'HEAD where there is no GET')
  t.equal(head.headers.allow, 'POST')
  t.equal(head.body, '')

  // The method is wrong whatever the body: it is not read (an empty JSON body would be a 400, a malformed one too).
  for (const payload of [undefined, '', '{"to":']) {
    const res = await app.inject({ method: 'PUT', url: '/v1/notifications', headers: { authorization: auth, 'content-type': 'application/json' }, ...(payload === undefined ? {} : { payload }) })
    t.equal(res.statusCode, 405, `a body of ${JSON.stringify(payload)}`)
  }
  t.equal((await app.inject({ method: 'PUT', url: '/v1/notifications' })).statusCode, 405, 'without a token too: no route, no auth')

  for (const [method, url] of [['GET', '/v1/nope'], ['PUT', '/v1/notifications/a/b'], ['DELETE', '/nope'], ['OPTIONS', '/']]) {
    const res = await app.inject({ method: method as 'GET', url, headers: { authorization: auth } })
    t.equal(res.statusCode, 404, `${method} ${url}`)
    t.equal(res.headers.allow, undefined, `${method} ${url}`)
    t.match(res.json(), { type: 'https://reachroute.dev/problems/not-found' })
  }
  t.equal(upstream.calls.length, 0)
  t.same([...storeCalls.keys()], [], 'the store was neither read nor written')
})
