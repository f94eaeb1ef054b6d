import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { UpstreamFailure, upstreamFailureKind } from '../../../src/reachability/upstreams/upstream.js'

t.test('why a check threw, for the upstream error metric', async t => {
  const named = (name: string, cause?: unknown) => Object.assign(new Error(name, { cause }), { name })
  t.equal(upstreamFailureKind(named('TimeoutError')), 'timeout')
  t.equal(upstreamFailureKind(new UpstreamFailure('no answer', undefined, { cause: named('AttemptTimeoutError') })), 'timeout', 'an attempt cut at its timeout')
  const deadline = await sleep(1000, undefined, { signal: AbortSignal.timeout(10) }).catch((err: unknown) => err)
  t.equal(upstreamFailureKind(deadline), 'timeout', 'aborted by the lookup\'s deadline (an AbortError caused by a TimeoutError)')
  t.equal(upstreamFailureKind(new UpstreamFailure('HTTP 503')), 'unavailable')
  t.equal(upstreamFailureKind(new UpstreamFailure('HTTP 404', undefined, { refused: true })), 'refused')
  t.equal(upstreamFailureKind(named('AbortError')), 'other', 'aborted by the caller: not the upstream\'s doing')
  t.equal(upstreamFailureKind(new TypeError('bug')), 'other')
})
