import type { UpstreamAnswer } from '../../domain/reachability.js'

// The port to the carrier-backed source of reachability. Adapters: vonage, camara, sandbox.

export interface UpstreamCheckOptions {
  /** Vonage's purpose; adapters that have no such notion ignore it. */
  purpose?: string
  signal?: AbortSignal
}

export interface ReachabilityUpstream {
  readonly name: string
  /**
   * Asks about one E.164 number. An answer, even a not-OK status code, resolves;
   * throws UpstreamFailure when no answer could be had (network, timeout, 429/5xx after retries).
   */
  check (phoneNumber: string, options?: UpstreamCheckOptions): Promise<UpstreamAnswer>
  /** Checks what can be checked before the first call (keys parse, …); throws with a message for the operator. */
  verifySetup? (): Promise<void>
  close (): Promise<void>
}

/** No answer from the upstream. Transient by nature: never cached, a stale entry may stand in. */
export class UpstreamFailure extends Error {
  constructor (message: string, readonly retryAfterSeconds?: number, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'UpstreamFailure'
  }
}
