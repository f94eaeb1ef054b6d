/**
 * The loop of a background worker: turn after turn while started; a turn that found work is followed at
 * once by the next, otherwise the loop sleeps `pollMs` (a poke ends the sleep). A turn that throws is
 * reported and the loop goes on. stop() resolves once the turn under way has ended.
 */
export class PollingLoop {
  private started = false
  private done: Promise<void> = Promise.resolve()
  private wake: (() => void) | undefined
  /** When the latest turn began (epoch ms): readiness tells a stuck loop by it. */
  lastTurnAt = 0

  constructor (
    private readonly turn: () => Promise<boolean>,
    private readonly pollMs: number,
    private readonly onError: (err: unknown) => void,
    private readonly now: () => number = Date.now,
  ) {}

  get running (): boolean {
    return this.started
  }

  start (): void {
    if (this.started) return
    this.started = true
    this.done = this.run()
  }

  async stop (): Promise<void> {
    this.started = false
    this.wake?.()
    await this.done
  }

  poke (): void {
    this.wake?.()
  }

  private async run (): Promise<void> {
    while (this.started) {
      this.lastTurnAt = this.now()
      let worked = false
      try {
        worked = await this.turn()
      } catch (err) {
        this.onError(err)
      }
      if (worked) continue
      await new Promise<void>(resolve => {
        const timer = setTimeout(resolve, this.pollMs)
        this.wake = () => { clearTimeout(timer); resolve() }
      })
      this.wake = undefined
    }
  }
}
