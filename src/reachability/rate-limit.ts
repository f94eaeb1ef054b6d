import { setTimeout as sleep } from 'node:timers/promises'
import type { Store } from '../store/store.js'

/**
 * The upstream's budget, shared by every process through the store's token bucket: background work
 * (fleet scans, campaigns) waits for a token before each upstream lookup, so together they never
 * ask faster than the configured rate.
 */
export class UpstreamRateLimiter {
  constructor (
    private readonly store: Store,
    private readonly ratePerSecond: number,
    private readonly bucket = 'upstream',
    /** Tokens that may be taken at once after a quiet spell; one by default, so the rate holds over any window. */
    private readonly burst = 1,
  ) {}

  /** Resolves once a token is taken; rejects (AbortError) once `signal` is aborted, before taking one. */
  async acquire (signal?: AbortSignal): Promise<void> {
    for (;;) {
      signal?.throwIfAborted()
      const waitMs = await this.store.takeToken(this.bucket, this.ratePerSecond, this.burst)
      if (waitMs === 0) return
      await sleep(waitMs, undefined, signal ? { signal } : undefined)
    }
  }
}
