import type { UpstreamAnswer } from '../../domain/reachability.js'
import { CircuitBreaker, CircuitOpenError, type CircuitBreakerSettings } from '../../resilience/circuit-breaker.js'
import { type ReachabilityUpstream, type UpstreamCheckOptions, UpstreamFailure, upstreamFailureKind } from './upstream.js'

/**
 * Any upstream behind a circuit breaker. Timeouts and unavailability (network, 429, 5xx) count;
 * refusals of our request and answers (whatever their status code) do not. While the circuit is open a
 * check throws UpstreamFailure at once, so the service serves a stale entry or its on_unknown policy.
 */
export class CircuitBreakerUpstream implements ReachabilityUpstream {
  readonly name: string
  readonly breaker: CircuitBreaker<UpstreamAnswer>

  constructor (private readonly inner: ReachabilityUpstream, settings: CircuitBreakerSettings) {
    this.name = inner.name
    this.breaker = new CircuitBreaker(`upstream:${inner.name}`, settings, {
      error: err => ['timeout', 'unavailable'].includes(upstreamFailureKind(err)),
    })
  }

  async check (phoneNumber: string, options?: UpstreamCheckOptions): Promise<UpstreamAnswer> {
    try {
      return await this.breaker.execute(() => this.inner.check(phoneNumber, options))
    } catch (err) {
      if (!(err instanceof CircuitOpenError)) throw err
      throw new UpstreamFailure(`${this.name}: ${err.message}`, err.retryAfterSeconds, { cause: err })
    }
  }

  async verifySetup (): Promise<void> {
    await this.inner.verifySetup?.()
  }

  close (): Promise<void> {
    return this.inner.close()
  }
}
