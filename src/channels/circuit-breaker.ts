import { CircuitBreaker, CircuitOpenError, type CircuitBreakerSettings } from '../resilience/circuit-breaker.js'
import type { Channels, DeliveryOutcome, PushChannel, PushMessage, SmsChannel, SmsMessage } from './channel.js'

// Each provider behind a circuit breaker of its own. A `retry` outcome (network, timeout, 429, 5xx) or a
// throw counts as a failure; `sent`, `failed` (a 4xx refusal) and `token_invalid` are answers and do not.
// While the circuit is open the worker asks blockedForMs() first and waits without an attempt (a call held back,
// counted as one the circuit turned away); a call that
// meets an open circuit all the same (it was let through with the probe, waited for the probe's answer, and the
// probe failed) gets `blocked`: no call is made, and the worker takes its attempt back.

class GuardedSend {
  readonly breaker: CircuitBreaker<DeliveryOutcome>

  constructor (target: string, private readonly provider: string, settings: CircuitBreakerSettings) {
    this.breaker = new CircuitBreaker<DeliveryOutcome>(target, settings, {
      error: () => true,
      result: outcome => outcome.kind === 'retry',
    })
  }

  async send (call: () => Promise<DeliveryOutcome>): Promise<DeliveryOutcome> {
    try {
      return await this.breaker.execute(call)
    } catch (err) {
      if (!(err instanceof CircuitOpenError)) throw err
      return { kind: 'blocked', provider: this.provider, reason: err.message, blockedMs: err.retryAfterMs }
    }
  }
}

export class CircuitBreakerSmsChannel implements SmsChannel {
  readonly provider: string
  private readonly guard: GuardedSend

  constructor (private readonly inner: SmsChannel, settings: CircuitBreakerSettings) {
    this.provider = inner.provider
    this.guard = new GuardedSend(`sms:${inner.provider}`, inner.provider, settings)
  }

  get breaker (): CircuitBreaker<DeliveryOutcome> {
    return this.guard.breaker
  }

  sendSms (message: SmsMessage): Promise<DeliveryOutcome> {
    return this.guard.send(() => this.inner.sendSms(message))
  }

  blockedForMs (): number {
    return this.guard.breaker.holdBack()
  }

  failingForMs (): number {
    return this.guard.breaker.failingForMs()
  }

  close (): Promise<void> {
    return this.inner.close()
  }
}

export class CircuitBreakerPushChannel implements PushChannel {
  readonly provider: string
  private readonly guard: GuardedSend

  constructor (private readonly inner: PushChannel, settings: CircuitBreakerSettings) {
    this.provider = inner.provider
    this.guard = new GuardedSend(`push:${inner.provider}`, inner.provider, settings)
  }

  get breaker (): CircuitBreaker<DeliveryOutcome> {
    return this.guard.breaker
  }

  sendPush (message: PushMessage): Promise<DeliveryOutcome> {
    return this.guard.send(() => this.inner.sendPush(message))
  }

  blockedForMs (): number {
    return this.guard.breaker.holdBack()
  }

  failingForMs (): number {
    return this.guard.breaker.failingForMs()
  }

  close (): Promise<void> {
    return this.inner.close()
  }
}

/** Both channels, each behind its own breaker. */
export function withCircuitBreakers (channels: Channels, settings: CircuitBreakerSettings): Channels {
  return { sms: new CircuitBreakerSmsChannel(channels.sms, settings), push: new CircuitBreakerPushChannel(channels.push, settings) }
}
