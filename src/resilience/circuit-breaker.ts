import { BrokenCircuitError, CircuitState, type CircuitBreakerPolicy, ConsecutiveBreaker, circuitBreaker, handleWhen } from 'cockatiel'

// A circuit breaker in front of one outside system (the reachability upstream, a channel provider), on cockatiel:
// after `failures` failures in a row it opens and calls fail at once, without touching the system; after
// `halfOpenAfterMs` one call goes through as a probe (the others wait for it): success closes, failure reopens.

export type CircuitStateName = 'closed' | 'half_open' | 'open'

/** Told of state changes and of calls turned away (metrics). Must not throw. */
export interface CircuitObserver {
  stateChanged (target: string, state: CircuitStateName): void
  rejected (target: string): void
}

export interface CircuitBreakerSettings {
  /** Failures in a row that open the circuit (BREAKER_FAILURES). */
  failures: number
  /** How long it stays open before a probe may go through (BREAKER_HALF_OPEN_AFTER_MS). */
  halfOpenAfterMs: number
  observer?: CircuitObserver
}

/** What counts as the outside system failing; anything else (a refusal of our request, a bug) leaves the count alone. */
export interface FailureRule<T> {
  error: (err: Error) => boolean
  result?: (value: T) => boolean
}

/** The circuit is open: no call was made. */
export class CircuitOpenError extends Error {
  constructor (readonly target: string, readonly retryAfterMs: number) {
    super(`the circuit to ${target} is open after repeated failures; no call was made`)
    this.name = 'CircuitOpenError'
  }

  /** Whole seconds until a probe may go through, at least 1. */
  get retryAfterSeconds (): number {
    return Math.max(1, Math.ceil(this.retryAfterMs / 1000))
  }
}

const STATE_NAMES: Record<CircuitState, CircuitStateName> = {
  [CircuitState.Closed]: 'closed',
  [CircuitState.HalfOpen]: 'half_open',
  [CircuitState.Open]: 'open',
  [CircuitState.Isolated]: 'open',
}

/** While a probe is out, other calls wait this long before they ask again. */
const PROBE_OUT_WAIT_MS = 500

export class CircuitBreaker<T> {
  private readonly policy: CircuitBreakerPolicy
  private openedAt = 0
  /** When the circuit first opened since it was last closed (0 while closed): the outage's start as seen here. */
  private failingSince = 0

  // cockatiel times the open state with Date.now(): so does the Retry-After given out here.
  constructor (readonly target: string, private readonly settings: CircuitBreakerSettings, counts: FailureRule<T>) {
    const rule = counts.result ? handleWhen(counts.error).orWhenResult(value => counts.result!(value as T)) : handleWhen(counts.error)
    this.policy = circuitBreaker(rule, { halfOpenAfter: settings.halfOpenAfterMs, breaker: new ConsecutiveBreaker(settings.failures) })
    this.policy.onStateChange(state => {
      if (state === CircuitState.Open) {
        this.openedAt = Date.now()
        if (this.failingSince === 0) this.failingSince = this.openedAt
      }
      if (state === CircuitState.Closed) this.failingSince = 0
      settings.observer?.stateChanged(target, STATE_NAMES[state])
    })
    settings.observer?.stateChanged(target, 'closed')
  }

  get state (): CircuitStateName {
    return STATE_NAMES[this.policy.state]
  }

  /**
   * How long until a call may go through: 0 while closed, or open past the half-open time (the next call is
   * the probe); the time left while open; a short wait while a probe is out (cockatiel holds other calls until the
   * probe's answer, then runs them, or turns them away when it failed).
   */
  blockedForMs (): number {
    switch (this.policy.state) {
      case CircuitState.Closed: return 0
      case CircuitState.HalfOpen: return PROBE_OUT_WAIT_MS
      default: return Math.max(0, this.openedAt + this.settings.halfOpenAfterMs - Date.now())
    }
  }

  /**
   * blockedForMs for a caller that holds its call back when it is not 0: that call is one the circuit turned away,
   * counted as execute counts the calls it refuses (the observer's `rejected`).
   */
  holdBack (): number {
    const blocked = this.blockedForMs()
    if (blocked > 0) this.settings.observer?.rejected(this.target)
    return blocked
  }

  /** How long the system has been failing: since the circuit opened, through any probes that failed; 0 once it closed again. */
  failingForMs (): number {
    return this.failingSince === 0 ? 0 : Date.now() - this.failingSince
  }

  /** Runs the call through the breaker; throws CircuitOpenError, without calling, while the circuit is open. */
  async execute (call: () => Promise<T>): Promise<T> {
    try {
      return await this.policy.execute(() => call())
    } catch (err) {
      if (!(err instanceof BrokenCircuitError)) throw err
      this.settings.observer?.rejected(this.target)
      throw new CircuitOpenError(this.target, Math.max(0, this.openedAt + this.settings.halfOpenAfterMs - Date.now()))
    }
  }
}
