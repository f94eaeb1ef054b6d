import type { Store } from '../store/store.js'

interface Waiter {
  resolve: (gotToken: boolean) => void
  timer: NodeJS.Timeout
}

/**
 * A provider's send rate, shared by every process through the store's token bucket (the one that also
 * paces the reachability upstream). Jobs of this process queue here for a token, transactional ones ahead
 * of campaign ones; one request for a token at a time goes to the store, however many jobs wait.
 */
export class ChannelBudget {
  private readonly transactional: Waiter[] = []
  private readonly bulk: Waiter[] = []
  private pumping = false
  private closed = false
  private pause: { timer: NodeJS.Timeout, resolve: () => void } | undefined

  constructor (
    private readonly store: Store,
    private readonly bucket: string,
    private readonly ratePerSecond: number,
    /** Tokens that may be taken at once after a quiet spell. */
    private readonly burst: number,
    /** Told each time a waiting job got its token (the worker may read more of this channel's jobs). */
    private readonly onToken: () => void = () => {},
  ) {}

  /** Jobs of this process waiting for a token. */
  get waiting (): number {
    return this.transactional.length + this.bulk.length
  }

  /** Resolves true once the job may call the provider; false when maxWaitMs passed (or the budget closed) first. */
  acquire (bulk: boolean, maxWaitMs: number): Promise<boolean> {
    if (this.closed) return Promise.resolve(false)
    const queue = bulk ? this.bulk : this.transactional
    return new Promise<boolean>(resolve => {
      const waiter: Waiter = {
        resolve,
        timer: setTimeout(() => {
          const at = queue.indexOf(waiter)
          if (at >= 0) queue.splice(at, 1)
          resolve(false)
        }, maxWaitMs),
      }
      queue.push(waiter)
      void this.pump()
    })
  }

  /** Lets every waiting job go without a token: they go back to their lane. */
  close (): void {
    this.closed = true
    for (const waiter of [...this.transactional.splice(0), ...this.bulk.splice(0)]) {
      clearTimeout(waiter.timer)
      waiter.resolve(false)
    }
    if (this.pause) {
      clearTimeout(this.pause.timer)
      this.pause.resolve()
    }
  }

  private async pump (): Promise<void> {
    if (this.pumping) return
    this.pumping = true
    try {
      while (!this.closed && this.waiting > 0) {
        let waitMs: number
        try {
          waitMs = await this.store.takeToken(this.bucket, this.ratePerSecond, this.burst)
        } catch {
          // The store is away: the waiting jobs run out of patience and go back to their lane.
          waitMs = 100
        }
        if (waitMs === 0) {
          const waiter = this.transactional.shift() ?? this.bulk.shift()
          if (!waiter) continue
          clearTimeout(waiter.timer)
          waiter.resolve(true)
          this.onToken()
          continue
        }
        await new Promise<void>(resolve => {
          this.pause = { timer: setTimeout(resolve, waitMs), resolve }
        })
        this.pause = undefined
      }
    } finally {
      this.pumping = false
    }
  }
}
