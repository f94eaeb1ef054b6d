import t from 'tap'
import type { IncomingHttpHeaders } from 'node:http'
import { backoffMs, type HttpAnswer, isRetryableStatus, retryAfterMs, withRetries } from '../../src/http/retry.js'

const answer = (statusCode: number, headers: IncomingHttpHeaders = {}): HttpAnswer => ({ statusCode, headers, body: '' })
const policy = { retries: 2, baseMs: 1, maxMs: 5 }

/** An attempt function that plays the given outcomes in turn and counts its calls. */
function attempts (...outcomes: Array<HttpAnswer | Error>) {
  const played = { calls: 0, run: async () => {
    const outcome = outcomes[Math.min(played.calls++, outcomes.length - 1)]!
    if (outcome instanceof Error) throw outcome
    return outcome
  } }
  return played
}
const networkError = () => Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' })

t.test('only 429 and 5xx are worth retrying', async t => {
  for (const s of [429, 500, 502, 503, 504]) t.ok(isRetryableStatus(s), String(s))
  for (const s of [200, 204, 400, 401, 403, 404, 409, 422]) t.notOk(isRetryableStatus(s), String(s))
})

t.test('Retry-After is read as seconds or as an HTTP date', async t => {
  const now = Date.parse('2026-03-01T12:00:00Z')
  t.equal(retryAfterMs({ 'retry-after': '3' }, now), 3000)
  t.equal(retryAfterMs({ 'retry-after': 'Sun, 01 Mar 2026 12:00:02 GMT' }, now), 2000)
  t.equal(retryAfterMs({ 'retry-after': 'Sun, 01 Mar 2026 11:00:00 GMT' }, now), 0, 'a date in the past: at once')
  t.equal(retryAfterMs({ 'retry-after': 'soon' }, now), undefined)
  t.equal(retryAfterMs({}, now), undefined)
})

t.test('backoff is full jitter under an exponential ceiling, capped', async t => {
  const p = { retries: 5, baseMs: 100, maxMs: 1000 }
  t.equal(backoffMs(0, { ...p, random: () => 0 }), 0)
  t.equal(backoffMs(0, { ...p, random: () => 0.5 }), 50)
  t.equal(backoffMs(2, { ...p, random: () => 0.5 }), 200)
  t.equal(backoffMs(10, { ...p, random: () => 0.999 }), 999)
})

t.test('an answer not worth retrying is returned at once', async t => {
  for (const status of [200, 400, 404]) {
    const a = attempts(answer(status))
    t.equal((await withRetries(a.run, policy)).statusCode, status)
    t.equal(a.calls, 1)
  }
})

t.test('5xx is retried, and the last answer returned once the retries are spent', async t => {
  const a = attempts(answer(503))
  t.equal((await withRetries(a.run, policy)).statusCode, 503)
  t.equal(a.calls, 3)
  const b = attempts(answer(500), answer(502), answer(200))
  t.equal((await withRetries(b.run, policy)).statusCode, 200)
  t.equal(b.calls, 3)
})

t.test('network errors are retried, then thrown; other errors are thrown at once', async t => {
  const a = attempts(networkError())
  await t.rejects(withRetries(a.run, policy), { code: 'ECONNREFUSED' })
  t.equal(a.calls, 3)
  const b = attempts(networkError(), answer(200))
  t.equal((await withRetries(b.run, policy)).statusCode, 200)
  const c = attempts(new TypeError('a bug'))
  await t.rejects(withRetries(c.run, policy), TypeError)
  t.equal(c.calls, 1)
})

t.test('Retry-After is waited for when within the cap; one longer ends the retries, the answer going to the caller', async t => {
  const a = attempts(answer(429, { 'retry-after': '60' }), answer(200))
  const started = Date.now()
  const refused = await withRetries(a.run, { ...policy, maxMs: 100 })
  t.equal(refused.statusCode, 429, 'not asked again within the 60 s it said')
  t.equal(refused.headers['retry-after'], '60', 'its Retry-After for the caller')
  t.equal(a.calls, 1)
  t.ok(Date.now() - started < 1000, 'at once')

  const b = attempts(answer(503, { 'retry-after': '0' }), answer(200))
  t.equal((await withRetries(b.run, { ...policy, maxMs: 100 })).statusCode, 200, 'within the cap: waited for and asked again')
  t.equal(b.calls, 2)
})

t.test('an abort while waiting to retry ends it with the signal\'s reason', async t => {
  const a = attempts(answer(503, { 'retry-after': '10' }))
  const started = Date.now()
  await t.rejects(withRetries(a.run, { ...policy, maxMs: 10_000 }, AbortSignal.timeout(30)), { name: 'TimeoutError' })
  t.ok(Date.now() - started < 1000)
  t.equal(a.calls, 1)
})

t.test('an already aborted signal makes no attempt', async t => {
  const a = attempts(answer(200))
  const controller = new AbortController()
  controller.abort(new Error('gone'))
  await t.rejects(withRetries(a.run, policy, controller.signal), { message: 'gone' })
  t.equal(a.calls, 0)
})

t.test('beforeRetry is asked before each retry (not before the first attempt); false ends the retries with the last outcome', async t => {
  let asked = 0
  const go = attempts(answer(503), answer(502), answer(200))
  t.equal((await withRetries(go.run, policy, undefined, async () => { asked++; return true })).statusCode, 200)
  t.same([go.calls, asked], [3, 2])

  asked = 0
  const stopped = attempts(answer(504), answer(200))
  t.equal((await withRetries(stopped.run, policy, undefined, async () => { asked++; return false })).statusCode, 504, 'the last answer')
  t.same([stopped.calls, asked], [1, 1])

  const failing = attempts(networkError(), answer(200))
  await t.rejects(withRetries(failing.run, policy, undefined, async () => false), { code: 'ECONNREFUSED' }, 'the last error')
  t.equal(failing.calls, 1)

  asked = 0
  t.equal((await withRetries(attempts(answer(404)).run, policy, undefined, async () => { asked++; return true })).statusCode, 404)
  t.equal(asked, 0, 'not asked when nothing is retried')
})
