import t, { type Test } from 'tap'
import { StoreUnavailableError } from '../../src/domain/errors.js'
import { MemoryStore } from '../../src/store/memory/memory-store.js'
import type { Store } from '../../src/store/store.js'
import { buildTestApp } from '../helpers/app.js'
import { dropPrefix, REDIS_URL, redisAvailable, uniquePrefix } from '../helpers/redis.js'

const PROBLEM = 'application/problem+json; charset=utf-8'

/** A store that is there but does not answer, as a Redis behind a broken network would be. */
class UnansweringStore extends MemoryStore {
  override async ping (): Promise<void> {
    throw new StoreUnavailableError('the store does not answer')
  }
}

async function setup (t: Test, env: Record<string, string | undefined> = {}, store?: Store) {
  const { app } = await buildTestApp(env, store ? { store } : {})
  t.teardown(() => app.close())
  return app
}

t.test('/healthz answers 200 without auth', async t => {
  const app = await setup(t)
  const res = await app.inject({ url: '/healthz' })
  t.equal(res.statusCode, 200)
  t.same(res.json(), { status: 'ok' })
  t.ok(res.headers['x-request-id'])
})

t.test('/readyz answers 200 with the store kind, without auth', async t => {
  const app = await setup(t)
  const res = await app.inject({ url: '/readyz' })
  t.equal(res.statusCode, 200)
  t.same(res.json(), { status: 'ready', store: 'memory' })
})

// With CI=true a missing Redis throws here: a failure, never a skip.
const redisUp = await redisAvailable()

t.test('/readyz names the Redis store when REDIS_URL is set', { skip: redisUp ? false : `no Redis at ${REDIS_URL}` }, async t => {
  const prefix = uniquePrefix()
  t.teardown(() => dropPrefix(prefix))
  const app = await setup(t, { REDIS_URL, REDIS_KEY_PREFIX: prefix })
  const res = await app.inject({ url: '/readyz' })
  t.equal(res.statusCode, 200)
  t.same(res.json(), { status: 'ready', store: 'redis' })
})

t.test('/readyz answers a 503 problem while the store does not answer', async t => {
  const store = new UnansweringStore()
  t.teardown(() => store.close())
  const app = await setup(t, {}, store)
  const res = await app.inject({ url: '/readyz' })
  t.equal(res.statusCode, 503)
  t.equal(res.headers['content-type'], PROBLEM)
  t.ok(res.headers['retry-after'])
  t.match(res.json(), { status: 503, type: /store-unavailable$/, instance: '/readyz' })
  const alive = await app.inject({ url: '/healthz' })
  t.equal(alive.statusCode, 200, 'the process is still alive')
})

t.test('/docs answers the Swagger UI and /openapi.json the spec', async t => {
  const app = await setup(t)
  const docs = await app.inject({ url: '/docs' })
  t.equal(docs.statusCode, 200)
  t.match(docs.headers['content-type'], /^text\/html/)
  t.match(docs.body, /<html/i)
  const spec = await app.inject({ url: '/openapi.json' })
  t.equal(spec.statusCode, 200)
  t.match(spec.headers['content-type'], /^application\/json/)
  const body = spec.json()
  t.match(body, { openapi: /^3\.1\./, info: { title: 'reachroute' }, components: { securitySchemes: { bearerAuth: { scheme: 'bearer' } } } })
  t.ok(body.paths['/v1/reachability/{phone_number}'], 'documents the reachability route')
  t.same(body, JSON.parse(JSON.stringify(app.swagger())))
})

t.test('with DOCS_ENABLED=false, /docs and /openapi.json are 404 problems', async t => {
  const app = await setup(t, { DOCS_ENABLED: 'false' })
  for (const url of ['/docs', '/docs/', '/docs/json', '/openapi.json']) {
    const res = await app.inject({ url })
    t.equal(res.statusCode, 404, url)
    t.equal(res.headers['content-type'], PROBLEM, url)
  }
  t.equal((await app.inject({ url: '/healthz' })).statusCode, 200, 'the rest still answers')
})

t.test('/readyz (no token) does not tell where the Redis nodes are: the detail says "a Redis node", the log the address', async t => {
  class ClusterNodeDown extends MemoryStore {
    override async ping (): Promise<void> {
      throw new StoreUnavailableError('the master 10.1.2.3:7001 of the Redis Cluster does not answer')
    }
  }
  const app = await setup(t, {}, new ClusterNodeDown())
  const res = await app.inject({ url: '/readyz' })
  t.equal(res.statusCode, 503)
  t.equal(res.json().detail, 'the master a Redis node of the Redis Cluster does not answer')
})

t.test('Redis node addresses are taken out of what a caller reads, kept for the logs; other texts are left as they are', async t => {
  const cases: [string, string][] = [
    ['connect ECONNREFUSED 127.0.0.1:6379', 'connect ECONNREFUSED a Redis node'],
    ['the Redis Cluster is not ok at redis-0.redis.svc.cluster.local:7002', 'the Redis Cluster is not ok at a Redis node'],
    ['MOVED 3999 [fd00::12]:6379', 'MOVED 3999 a Redis node'],
    ['the store did not answer: no answer within 2000 ms', 'the store did not answer: no answer within 2000 ms'],
    ['no master serves slot 123 of the Redis Cluster', 'no master serves slot 123 of the Redis Cluster'],
    ['at 2026-11-25T10:05:00.000Z', 'at 2026-11-25T10:05:00.000Z'],
  ]
  for (const [detail, shown] of cases) {
    const err = new StoreUnavailableError(detail)
    t.equal(err.message, shown, detail)
    t.equal(err.logDetail, detail)
  }
})
