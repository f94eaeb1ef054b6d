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
  /**
   * The upstream answered, refusing our request (a 4xx other than 429: a wrong path or purpose): says
   * nothing about the upstream's health, so a circuit breaker does not count it.
   */
  readonly refused: boolean
  /** The HTTP status of a refusal. */
  readonly statusCode: number | undefined

  constructor (message: string, readonly retryAfterSeconds?: number, options?: { cause?: unknown, refused?: boolean, statusCode?: number }) {
    super(message, options)
    this.name = 'UpstreamFailure'
    this.refused = options?.refused ?? false
    this.statusCode = options?.statusCode
  }
}

export type UpstreamFailureKind = 'timeout' | 'unavailable' | 'refused' | 'other'

/**
 * Why a check threw: `timeout` (an attempt or the whole lookup ran out of time), `unavailable` (network,
 * 429, 5xx, an answer that cannot be read), `refused` (see UpstreamFailure.refused), `other` (not the upstream's doing).
 */
export function upstreamFailureKind (err: unknown): UpstreamFailureKind {
  if (isTimeout(err)) return 'timeout'
  if (err instanceof UpstreamFailure) return err.refused ? 'refused' : 'unavailable'
  return 'other'
}

/**
 * A timeout, or a failure caused by one: an attempt's own, or the lookup's deadline (AbortSignal.timeout), which
 * aborts the check with an AbortError whose cause is the TimeoutError.
 */
function isTimeout (err: unknown, depth = 0): boolean {
  const { name, cause } = (err ?? {}) as { name?: unknown, cause?: unknown }
  if (name === 'TimeoutError' || name === 'AttemptTimeoutError') return true
  return depth < 3 && cause !== undefined && isTimeout(cause, depth + 1)
}
