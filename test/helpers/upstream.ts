import type { UpstreamAnswer } from '../../src/domain/reachability.js'
import type { ReachabilityUpstream, UpstreamCheckOptions } from '../../src/reachability/upstreams/upstream.js'

/** Wraps an upstream and counts the calls it receives, per number. */
export class CountingUpstream implements ReachabilityUpstream {
  readonly name: string
  readonly calls: string[] = []
  constructor (private readonly inner: ReachabilityUpstream) {
    this.name = inner.name
  }

  async check (phoneNumber: string, options?: UpstreamCheckOptions): Promise<UpstreamAnswer> {
    this.calls.push(phoneNumber)
    return this.inner.check(phoneNumber, options)
  }

  callsFor (phoneNumber: string): number {
    return this.calls.filter(n => n === phoneNumber).length
  }

  async close (): Promise<void> {
    await this.inner.close()
  }
}

/** An upstream whose answer the test sets, with an optional delay and failure. */
export class ScriptedUpstream implements ReachabilityUpstream {
  readonly name = 'scripted'
  calls = 0
  answer: UpstreamAnswer = { is_reachable: true, connectivity: ['DATA', 'SMS'], latest_status_at: '2026-11-25T00:00:00.000Z', status: { code: 'OK', message: 'Success' } }
  failWith: Error | undefined
  delayMs = 0
  /** When set, each call waits for it, after it is counted: the test lets the answer go when it chooses. */
  hold: Promise<void> | undefined

  async check (_phoneNumber: string, options: UpstreamCheckOptions = {}): Promise<UpstreamAnswer> {
    this.calls++
    if (this.hold) await this.hold
    if (this.delayMs) await new Promise(resolve => setTimeout(resolve, this.delayMs))
    options.signal?.throwIfAborted()
    if (this.failWith) throw this.failWith
    return structuredClone(this.answer)
  }

  async close (): Promise<void> {}
}
