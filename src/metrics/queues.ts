import type { QueueState } from '../queue/ops.js'
import { gauge } from './registry.js'

const outboxDepth = gauge({
  name: 'reachroute_outbox_depth',
  help: 'Jobs in each outbox lane (push, sms, callback) and in the retry set, over all shards',
  labelNames: ['lane'] as const,
})
const fallbackEntries = gauge({
  name: 'reachroute_fallback_queue_entries',
  help: 'Fallback-queue entries by state (waiting, due, leased, dead), over all shards',
  labelNames: ['state'] as const,
})
const oldestWaiting = gauge({
  name: 'reachroute_fallback_queue_oldest_waiting_seconds',
  help: 'Age of the oldest notification waiting in the fallback queue (0 when none waits)',
})

const campaignCountsPending = gauge({
  name: 'reachroute_campaign_counts_pending',
  help: 'Campaign notifications in a final status not yet counted in their campaign (the count sweeper makes counts left over 30 s)',
})

export interface QueueGaugesOptions {
  /** Reads the queues' state (QueueOps.state()). */
  read: () => Promise<QueueState>
  /** A state read less than this long ago is served again, so scrapes do not hammer the store. */
  cacheMs: number
  now?: () => number
}

/** The queue gauges, refreshed on scrape from the store, at most once per cacheMs however many scrapers ask. */
export class QueueGauges {
  private readonly now: () => number
  private readAt = -Infinity
  private reading: Promise<void> | undefined

  constructor (private readonly options: QueueGaugesOptions) {
    this.now = options.now ?? Date.now
  }

  /** Rejects when the store cannot be read; the gauges then keep their last values. */
  refresh (): Promise<void> {
    if (this.now() - this.readAt < this.options.cacheMs) return Promise.resolve()
    this.reading ??= this.options.read()
      .then(state => {
        for (const [lane, depth] of Object.entries(state.outbox)) outboxDepth.set({ lane }, depth)
        for (const key of ['waiting', 'due', 'leased', 'dead'] as const) fallbackEntries.set({ state: key }, state[key])
        oldestWaiting.set(state.oldest_waiting_seconds ?? 0)
        campaignCountsPending.set(state.campaign_counts_pending)
        this.readAt = this.now()
      })
      .finally(() => { this.reading = undefined })
    return this.reading
  }
}
