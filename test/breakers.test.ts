import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { StaticAccessToken } from '../src/auth/oauth-token.js'
import type { DeliveryOutcome, PushMessage, SmsChannel } from '../src/channels/channel.js'
import { CircuitBreakerPushChannel, withCircuitBreakers } from '../src/channels/circuit-breaker.js'
import { SandboxPushChannel } from '../src/channels/sandbox.js'
import { WebhookPushChannel } from '../src/channels/webhook-push.js'
import { UpstreamUnavailableError } from '../src/domain/errors.js'
import type { CircuitObserver, CircuitStateName } from '../src/resilience/circuit-breaker.js'
import { ReachabilityService } from '../src/reachability/service.js'
import { CamaraUpstream } from '../src/reachability/upstreams/camara.js'
import { CircuitBreakerUpstream } from '../src/reachability/upstreams/circuit-breaker.js'
import { UpstreamFailure } from '../src/reachability/upstreams/upstream.js'
import { MemoryStore } from '../src/store/memory/memory-store.js'
import { camaraError, reachableV1, startFakeCamara } from './fakes/camara.js'
import { slow } from './fakes/scripted-server.js'
import { startWebhookReceiver } from './fakes/webhook-receiver.js'

const TOKEN = 'operator-access-token'
const NUMBER = '+447911123456'
const HALF_OPEN_AFTER_MS = 150

/** Remembers what a breaker reports, as the metrics do. */
function recorder () {
  const states: CircuitStateName[] = []
  let rejected = 0
  const observer: CircuitObserver = {
    stateChanged: (_target, state) => { states.push(state) },
    rejected: () => { rejected++ },
  }
  return { observer, states, rejections: () => rejected }
}

async function upstreamSetup (t: Test, timeoutMs = 1000) {
  const fake = await startFakeCamara({ accessToken: TOKEN })
  const adapter = new CamaraUpstream({ baseUrl: fake.reachabilityUrl, tokens: new StaticAccessToken(TOKEN), timeoutMs, retries: 0, retryBaseMs: 5, retryMaxMs: 10 })
  const seen = recorder()
  const upstream = new CircuitBreakerUpstream(adapter, { failures: 3, halfOpenAfterMs: HALF_OPEN_AFTER_MS, observer: seen.observer })
  t.teardown(async () => { await upstream.close(); await fake.close() })
  const fail = (n: number) => fake.script.next(...Array.from({ length: n }, () => camaraError(503, 'UNAVAILABLE', 'Network issue')))
  return { fake, upstream, seen, fail }
}

t.test('reachability upstream', async t => {
  t.test('opens after 3 failures in a row, then fails fast as UpstreamFailure without calling the upstream', async t => {
    const { fake, upstream, seen, fail } = await upstreamSetup(t)
    fail(3)
    for (let i = 0; i < 3; i++) await t.rejects(upstream.check(NUMBER), UpstreamFailure)
    t.equal(fake.requests.length, 3)
    t.equal(upstream.breaker.state, 'open')

    // Were the upstream called, it would hang past the 1 s timeout.
    fake.script.next(slow(reachableV1(['DATA']), 5000))
    const started = Date.now()
    const err = await upstream.check(NUMBER).catch((e: unknown) => e)
    t.type(err, UpstreamFailure)
    t.match((err as Error).message, /circuit .* is open/)
    t.ok((err as UpstreamFailure).retryAfterSeconds! >= 1, 'says when to try again')
    t.ok(Date.now() - started < 1000, 'at once: not after the timeout a call would have waited for')
    t.equal(fake.requests.length, 3, 'no request reached the upstream')
    t.equal(seen.rejections(), 1)
    t.same(seen.states, ['closed', 'open'])
  })

  t.test('a success in between starts the count again', async t => {
    const { fake, upstream, fail } = await upstreamSetup(t)
    fail(2)
    fake.script.next(reachableV1(['DATA']))
    fail(2)
    for (const expected of ['fail', 'fail', 'ok', 'fail', 'fail']) {
      if (expected === 'ok') t.ok(await upstream.check(NUMBER))
      else await t.rejects(upstream.check(NUMBER), UpstreamFailure)
    }
    t.equal(upstream.breaker.state, 'closed')
  })

  t.test('after the half-open time one probe goes through: a success closes the circuit', async t => {
    const { fake, upstream, seen, fail } = await upstreamSetup(t)
    fail(3)
    for (let i = 0; i < 3; i++) await t.rejects(upstream.check(NUMBER))
    await sleep(HALF_OPEN_AFTER_MS + 20)
    t.match(await upstream.check(NUMBER), { is_reachable: true, status: { code: 'OK' } }, 'the probe answered')
    t.equal(fake.requests.length, 4)
    t.equal(upstream.breaker.state, 'closed')
    t.same(seen.states, ['closed', 'open', 'half_open', 'closed'])
    await upstream.check(NUMBER)
    t.equal(fake.requests.length, 5, 'calls go through again')
  })

  t.test('a probe that fails opens the circuit again', async t => {
    const { fake, upstream, seen, fail } = await upstreamSetup(t)
    fail(4)
    for (let i = 0; i < 3; i++) await t.rejects(upstream.check(NUMBER))
    await sleep(HALF_OPEN_AFTER_MS + 20)
    await t.rejects(upstream.check(NUMBER), { message: /HTTP 503/ }, 'the probe reached the upstream and failed')
    t.equal(fake.requests.length, 4)
    t.equal(upstream.breaker.state, 'open')
    await t.rejects(upstream.check(NUMBER), { message: /circuit .* is open/ })
    t.equal(fake.requests.length, 4, 'turned away again, no call')
    t.same(seen.states, ['closed', 'open', 'half_open', 'open'])
  })

  t.test('timeouts count: a hanging upstream is cut off, then not waited for at all', async t => {
    const { fake, upstream } = await upstreamSetup(t, 300)
    fake.script.next(...Array.from({ length: 4 }, () => slow(reachableV1(['DATA']), 2000)))
    for (let i = 0; i < 3; i++) await t.rejects(upstream.check(NUMBER), UpstreamFailure)
    t.equal(upstream.breaker.state, 'open')
    const started = Date.now()
    await t.rejects(upstream.check(NUMBER), { message: /circuit .* is open/ })
    t.ok(Date.now() - started < 300, 'not waited for: a call would have taken the 300 ms timeout')
    t.equal(fake.requests.length, 3)
  })

  t.test('refusals of our request (4xx) and answers about the number do not count', async t => {
    const { fake, upstream } = await upstreamSetup(t)
    fake.script.next(
      { status: 400, json: { unexpected: true } }, // no CAMARA error body: a refusal, no answer
      { status: 404, raw: 'no such path' },
      { status: 405, raw: '' },
      camaraError(401, 'UNAUTHENTICATED'), // an answer: UNAUTHORIZED
      camaraError(404, 'IDENTIFIER_NOT_FOUND'), // an answer: NOT_FOUND
      camaraError(422, 'SERVICE_NOT_APPLICABLE'), // an answer: NO_COVERAGE
    )
    for (let i = 0; i < 3; i++) await t.rejects(upstream.check(NUMBER), { name: 'UpstreamFailure', refused: true })
    for (const code of ['UNAUTHORIZED', 'NOT_FOUND', 'NO_COVERAGE']) t.equal((await upstream.check(NUMBER)).status.code, code)
    t.equal(fake.requests.length, 6, 'every call reached the upstream')
    t.equal(upstream.breaker.state, 'closed')
  })

  t.test('in the service: an open circuit serves the stale entry, or fails fast as 503, never waits for the upstream', async t => {
    const { fake, upstream, fail } = await upstreamSetup(t)
    const store = new MemoryStore()
    t.teardown(() => store.close())
    let now = Date.now()
    const service = new ReachabilityService({
      store, upstream, policy: { reachableSeconds: 60, unreachableSeconds: 60, invalidSeconds: 60 }, maxStaleSeconds: 3600, deadlineMs: 5000, now: () => now,
    })
    t.equal((await service.lookup(NUMBER)).source, 'upstream')
    now += 120_000
    fail(3)
    t.equal((await service.lookup(NUMBER)).source, 'stale_cache')
    await t.rejects(service.lookup('+447911123457'), UpstreamUnavailableError)
    await t.rejects(service.lookup('+447911123458'), UpstreamUnavailableError)
    t.equal(upstream.breaker.state, 'open')
    const requests = fake.requests.length

    // Were the upstream called, each lookup would wait out its 1 s timeout.
    fake.script.next(slow(reachableV1(['DATA']), 5000), slow(reachableV1(['DATA']), 5000))
    const started = Date.now()
    t.equal((await service.lookup(NUMBER)).source, 'stale_cache', 'stale while open')
    const err = await service.lookup('+447911123459').catch((e: unknown) => e)
    t.type(err, UpstreamUnavailableError)
    t.ok(Number((err as UpstreamUnavailableError).headers['retry-after']) >= 1)
    t.ok(Date.now() - started < 1000, 'fast: not after the timeout a call would have waited for')
    t.equal(fake.requests.length, requests, 'the upstream was not called')
  })
})

async function pushSetup (t: Test) {
  const receiver = await startWebhookReceiver({ secret: 'push-webhook-secret-0123456789' })
  const adapter = new WebhookPushChannel({ url: receiver.url, secret: 'push-webhook-secret-0123456789', timeoutMs: 1000 })
  const seen = recorder()
  const push = new CircuitBreakerPushChannel(adapter, { failures: 3, halfOpenAfterMs: HALF_OPEN_AFTER_MS, observer: seen.observer })
  t.teardown(async () => { await push.close(); await receiver.close() })
  const message: PushMessage = { notificationId: 'ntf_01', token: 'device-1', title: 'Code', body: '123456', ttlSeconds: 600 }
  const fail = (n: number) => receiver.script.next(...Array.from({ length: n }, () => ({ status: 503, json: { error: 'busy' } })))
  return { receiver, push, seen, message, fail }
}

t.test('channel provider', async t => {
  t.test('opens after 3 retry outcomes; while open the worker gets blocked with the time left, and no call is made', async t => {
    const { receiver, push, seen, message, fail } = await pushSetup(t)
    fail(3)
    for (let i = 0; i < 3; i++) t.match(await push.sendPush(message), { kind: 'retry', reason: /503/ })
    t.equal(receiver.requests.length, 3)
    t.equal(push.breaker.state, 'open')

    const outcome = await push.sendPush(message)
    t.match(outcome, { kind: 'blocked', provider: 'webhook', reason: /circuit to push:webhook is open/ })
    const { blockedMs } = outcome as Extract<DeliveryOutcome, { kind: 'blocked' }>
    t.ok(blockedMs > 0 && blockedMs <= HALF_OPEN_AFTER_MS, `the half-open time left: ${blockedMs} ms`)
    t.equal(receiver.requests.length, 3, 'the provider was not called')
    t.equal(seen.rejections(), 1)
  })

  t.test('blockedForMs: 0 while closed, the open time left while open (a call held back, counted as turned away), 0 again once a probe may go', async t => {
    const { push, message, fail, seen } = await pushSetup(t)
    t.equal(push.blockedForMs(), 0, 'closed')
    fail(3)
    for (let i = 0; i < 3; i++) await push.sendPush(message)
    t.equal(seen.rejections(), 0)
    const left = push.blockedForMs()
    t.ok(left > 0 && left <= HALF_OPEN_AFTER_MS, `open: ${left} ms left`)
    t.equal(seen.rejections(), 1, 'the call held back is one the circuit turned away')
    await sleep(HALF_OPEN_AFTER_MS + 20)
    t.equal(push.blockedForMs(), 0, 'past the half-open time: the next call is the probe')
    t.equal(seen.rejections(), 1, 'nothing held back: nothing counted')
    t.match(await push.sendPush(message), { kind: 'sent' }, 'the probe')
    t.equal(push.blockedForMs(), 0, 'closed again')
  })

  t.test('failingForMs: 0 while closed, counted from the first opening through a failed probe, 0 again once closed', async t => {
    const { push, message, fail } = await pushSetup(t)
    t.equal(push.failingForMs(), 0, 'closed')
    fail(4)
    for (let i = 0; i < 3; i++) await push.sendPush(message)
    await sleep(HALF_OPEN_AFTER_MS + 20)
    t.match(await push.sendPush(message), { kind: 'retry' }, 'the probe fails: open again')
    t.equal(push.breaker.state, 'open')
    const failing = push.failingForMs()
    t.ok(failing >= HALF_OPEN_AFTER_MS + 20, `${failing} ms: since the first opening, not the second`)
    await sleep(HALF_OPEN_AFTER_MS + 20)
    t.match(await push.sendPush(message), { kind: 'sent' }, 'the next probe')
    t.equal(push.failingForMs(), 0, 'closed again')
  })

  t.test('a probe that succeeds closes the circuit; one that fails opens it again', async t => {
    const { receiver, push, seen, message, fail } = await pushSetup(t)
    fail(3)
    for (let i = 0; i < 3; i++) await push.sendPush(message)
    await sleep(HALF_OPEN_AFTER_MS + 20)
    t.match(await push.sendPush(message), { kind: 'sent' }, 'the probe')
    t.equal(push.breaker.state, 'closed')

    fail(4)
    for (let i = 0; i < 3; i++) await push.sendPush(message)
    await sleep(HALF_OPEN_AFTER_MS + 20)
    t.match(await push.sendPush(message), { kind: 'retry', reason: /503/ }, 'the probe fails')
    t.equal(push.breaker.state, 'open')
    t.match(await push.sendPush(message), { kind: 'blocked', reason: /circuit/ })
    t.equal(receiver.requests.length, 8, '3 + probe + 3 + probe: nothing while open')
    t.same(seen.states, ['closed', 'open', 'half_open', 'closed', 'open', 'half_open', 'open'])
  })

  t.test('refusals (4xx) and dead tokens do not count', async t => {
    const { receiver, push, message } = await pushSetup(t)
    receiver.script.next({ status: 400, json: {} }, { status: 403, json: {} }, { status: 404, json: {} }, { status: 410, json: {} }, { status: 422, json: {} })
    const kinds = []
    for (let i = 0; i < 5; i++) kinds.push((await push.sendPush(message)).kind)
    t.same(kinds, ['failed', 'failed', 'failed', 'token_invalid', 'failed'])
    t.equal(receiver.requests.length, 5)
    t.equal(push.breaker.state, 'closed')
  })

  t.test('429 counts as a failure', async t => {
    const { push, message, receiver } = await pushSetup(t)
    receiver.script.next(...Array.from({ length: 3 }, () => ({ status: 429, headers: { 'retry-after': '1' }, json: {} })))
    for (let i = 0; i < 3; i++) await push.sendPush(message)
    t.equal(push.breaker.state, 'open')
  })

  t.test('an adapter that throws counts as a failure; each provider has its own breaker', async t => {
    let calls = 0
    const broken: SmsChannel = {
      provider: 'broken',
      sendSms: async () => { calls++; throw new Error('socket hang up') },
      close: async () => {},
    }
    const channels = withCircuitBreakers({ sms: broken, push: new SandboxPushChannel({ log: () => {} }) }, { failures: 2, halfOpenAfterMs: 60_000 })
    const sms = { notificationId: 'ntf_02', to: NUMBER, text: 'hi', ttlSeconds: 60 }
    for (let i = 0; i < 2; i++) await t.rejects(channels.sms.sendSms(sms), /socket hang up/)
    const blocked = await channels.sms.sendSms(sms)
    t.match(blocked, { kind: 'blocked', provider: 'broken' })
    t.ok((blocked as Extract<DeliveryOutcome, { kind: 'blocked' }>).blockedMs > 59_000, 'the half-open time left')
    t.equal(calls, 2)
    t.match(await channels.push.sendPush({ notificationId: 'ntf_02', token: 'tok', title: 't', body: 'b', ttlSeconds: 60 }), { kind: 'sent' }, 'push is unaffected')
  })
})
