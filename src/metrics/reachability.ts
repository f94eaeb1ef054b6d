import { STATUS_CODES, type ReachabilityResult, type UpstreamAnswer } from '../domain/reachability.js'
import { type ReachabilityUpstream, type UpstreamCheckOptions, upstreamFailureKind } from '../reachability/upstreams/upstream.js'
import { counter, histogram } from './registry.js'

const KNOWN_CODES = new Set<string>(STATUS_CODES)

const lookups = counter({
  name: 'reachroute_reachability_lookups_total',
  help: 'Reachability results by source (cache, upstream, stale_cache) and insight status code (OTHER for a code not known)',
  labelNames: ['source', 'status_code'] as const,
})
const upstreamDuration = histogram({
  name: 'reachroute_upstream_request_duration_seconds',
  help: 'Reachability upstream checks (retries included) by upstream and outcome (answered, failed)',
  labelNames: ['upstream', 'outcome'] as const,
  buckets: [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10],
})
const upstreamErrors = counter({
  name: 'reachroute_upstream_errors_total',
  help: 'Reachability upstream checks without an answer, by upstream and kind (timeout, unavailable, refused, other)',
  labelNames: ['upstream', 'kind'] as const,
})

/** For ReachabilityService's onResult. */
export function recordLookup (result: ReachabilityResult): void {
  const code = result.status.code
  lookups.inc({ source: result.source, status_code: KNOWN_CODES.has(code) ? code : 'OTHER' })
}

/** Any upstream, timed: each check's duration and, when it throws, why. */
export class MeteredUpstream implements ReachabilityUpstream {
  readonly name: string

  constructor (private readonly inner: ReachabilityUpstream) {
    this.name = inner.name
  }

  async check (phoneNumber: string, options?: UpstreamCheckOptions): Promise<UpstreamAnswer> {
    const end = upstreamDuration.startTimer({ upstream: this.name })
    try {
      const answer = await this.inner.check(phoneNumber, options)
      end({ outcome: 'answered' })
      return answer
    } catch (err) {
      end({ outcome: 'failed' })
      upstreamErrors.inc({ upstream: this.name, kind: upstreamFailureKind(err) })
      throw err
    }
  }

  async verifySetup (): Promise<void> {
    await this.inner.verifySetup?.()
  }

  close (): Promise<void> {
    return this.inner.close()
  }
}
