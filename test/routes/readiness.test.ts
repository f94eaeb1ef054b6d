import t, { type Test } from 'tap'
import { stuckAfterMs } from '../../src/queue/liveness.js'
import { buildTestApp } from '../helpers/app.js'

const PROBLEM = 'application/problem+json; charset=utf-8'

async function setup (t: Test, env: Record<string, string> = {}) {
  const { app } = await buildTestApp({ WORKERS: 'on', WORKER_IDLE_POLL_MS: '20', FALLBACK_POLL_MS: '20', ...env })
  t.teardown(() => app.close())
  return app
}

t.test('a worker is stuck after 3 polls without a turn, never sooner than 30 s', async t => {
  t.equal(stuckAfterMs(200), 30_000)
  t.equal(stuckAfterMs(20_000), 60_000)
})

t.test('with workers running and turning, /readyz is 200', async t => {
  const app = await setup(t)
  const res = await app.inject({ url: '/readyz' })
  t.equal(res.statusCode, 200)
  t.same(res.json(), { status: 'ready', store: 'memory' })
  t.same(app.stuckWorkers(), [])
})

t.test('a delivery worker whose loop stopped turning makes /readyz a 503 problem; /healthz stays 200', async t => {
  const app = await setup(t)
  // The loop stops, as one blocked on a call that never settles would, its last turn 45 s ago.
  await app.deliveryWorker!.stop()
  app.deliveryWorker!.lastLoopAt = Date.now() - 45_000
  const res = await app.inject({ url: '/readyz' })
  t.equal(res.statusCode, 503)
  t.equal(res.headers['content-type'], PROBLEM)
  t.ok(res.headers['retry-after'])
  t.match(res.json(), { status: 503, type: /workers-stuck$/, instance: '/readyz', detail: /delivery worker has not turned for 45 s \(limit 30 s\)/ })
  t.notMatch(res.json().detail, /fallback scheduler/, 'the scheduler still turns')
  t.equal((await app.inject({ url: '/healthz' })).statusCode, 200, 'alive all the same: liveness stays cheap')
})

t.test('a stuck fallback scheduler fails readiness too', async t => {
  const app = await setup(t)
  await app.fallbackScheduler!.stop()
  app.fallbackScheduler!.lastLoopAt = Date.now() - 31_000
  const res = await app.inject({ url: '/readyz' })
  t.equal(res.statusCode, 503)
  t.match(res.json(), { type: /workers-stuck$/, detail: /fallback scheduler has not turned for 31 s/ })
})

t.test('a loop silent for less than its limit is not stuck (an idle worker or a slow provider)', async t => {
  const app = await setup(t)
  await app.deliveryWorker!.stop()
  app.deliveryWorker!.lastLoopAt = Date.now() - 20_000
  t.equal((await app.inject({ url: '/readyz' })).statusCode, 200)
})

t.test('the limit grows with a long poll interval', async t => {
  const app = await setup(t, { FALLBACK_POLL_MS: '20000' })
  await app.fallbackScheduler!.stop()
  app.fallbackScheduler!.lastLoopAt = Date.now() - 45_000
  t.equal((await app.inject({ url: '/readyz' })).statusCode, 200, '45 s is under 3 x 20 s')
  app.fallbackScheduler!.lastLoopAt = Date.now() - 61_000
  t.equal((await app.inject({ url: '/readyz' })).statusCode, 503)
})

t.test('without workers in this process (WORKERS=off), only the store counts', async t => {
  const { app } = await buildTestApp({ WORKERS: 'off' })
  t.teardown(() => app.close())
  t.equal(app.deliveryWorker, null)
  t.same(app.stuckWorkers(), [])
  t.equal((await app.inject({ url: '/readyz' })).statusCode, 200)
})
