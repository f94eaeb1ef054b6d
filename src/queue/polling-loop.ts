import { setMaxListeners } from 'node:events'

/**
 * A background worker's loop: turn after turn (tick) while started; a turn that found work is followed at once
 * by the next, otherwise the loop sleeps `pollMs` (a poke ends the sleep). A turn that throws is reported and
 * the loop goes on. stop() resolves once the turn under way has ended.
 */
export abstract class PollingLoop {
  private started = false
  private done: Promise<void> = Promise.resolve()
  private wake: (() => void) | undefined
  /** When the latest turn began (epoch ms): readiness tells a stuck loop by it. */
  lastLoopAt = 0

  protected constructor (
    private readonly pollMs: number,
    private readonly onError: (err: unknown) => void,
    protected readonly now: () => number = Date.now,
  ) {}

  /** One turn; resolves whether it found work (then the next turn follows at once). */
  protected abstract tick (): Promise<boolean>

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

  /** Ends the sleep at once: new work was just made in this process. */
  poke (): void {
    this.wake?.()
  }

  private async run (): Promise<void> {
    while (this.started) {
      this.lastLoopAt = this.now()
      let worked = false
      try {
        worked = await this.tick()
      } catch (err) {
        this.onError(err)
      }
      // Stopped during the turn: no sleep (stop() waits for this loop to end).
      if (worked || !this.started) continue
      await new Promise<void>(resolve => {
        const timer = setTimeout(resolve, this.pollMs)
        this.wake = () => { clearTimeout(timer); resolve() }
      })
      this.wake = undefined
    }
  }
}

/**
 * How long stop() lets the work under way finish by itself before it is told to let go: within the API's 10 s of
 * shutdown grace, with time left for what was under way when it was told.
 */
export const STOP_GRACE_MS = 5000

/**
 * A PollingLoop whose work under way listens to a stop signal (`stopping`): stop() aborts it after `stopGraceMs`
 * (at once with 0; the work under way may end by itself meanwhile), so the waits of that work (a store that fails,
 * the upstream budget) end and the work lets go (`lettingGo`). Up to `listeners` waits listen to it at a time: Node
 * would otherwise warn of a possible leak past 10. Past that bound it still does.
 */
export abstract class StoppablePollingLoop extends PollingLoop {
  protected stopping: AbortController

  protected constructor (pollMs: number, onError: (err: unknown) => void, now: (() => number) | undefined,
    private readonly listeners: number, private readonly stopGraceMs = STOP_GRACE_MS) {
    super(pollMs, onError, now)
    this.stopping = this.stopSignal()
  }

  /** Whether the work under way is to let go: stop() was called and its grace is over. */
  protected get lettingGo (): boolean {
    return this.stopping.signal.aborted
  }

  override start (): void {
    if (!this.running) this.stopping = this.stopSignal()
    super.start()
  }

  override async stop (): Promise<void> {
    const stopped = super.stop() // not running from here on
    const { stopping } = this
    const timer = this.stopGraceMs > 0 ? setTimeout(() => stopping.abort(), this.stopGraceMs) : undefined
    if (!timer) stopping.abort()
    try {
      await stopped
    } finally {
      clearTimeout(timer)
    }
  }

  private stopSignal (): AbortController {
    const controller = new AbortController()
    setMaxListeners(this.listeners, controller.signal)
    return controller
  }
}
