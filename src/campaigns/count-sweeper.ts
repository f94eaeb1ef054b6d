import { shardOfId } from '../notifications/ids.js'
import type { PendingCampaignCount, Store } from '../store/store.js'
import { PollingLoop } from '../queue/polling-loop.js'

/**
 * Counts a campaign notification in a final status (Store.countCampaignFinal), then settles the count its
 * transition noted. A count that fails stays pending, and the CampaignCountSweeper makes it. Resolves whether the
 * status it is counted in changed.
 */
export async function countAndSettle (store: Store, count: PendingCampaignCount): Promise<boolean> {
  const moved = await store.countCampaignFinal(count.campaignId, count.notificationId, count.status)
  const shard = shardOfId(count.notificationId, store.shards)
  if (shard !== undefined) await store.settlePendingCampaignCount(shard, count)
  return moved
}

export interface CampaignCountSweeperOptions {
  store: Store
  /** A count noted less than this long ago is left to the process that made the transition (it counts at once). */
  graceMs?: number
  /** How long the sweeper sleeps when it found nothing to count. */
  pollMs?: number
  /** Pending counts taken from one shard at a time. */
  batch?: number
  now?: () => number
  log?: { warn: (obj: object, msg: string) => void, info: (obj: object, msg: string) => void }
}

const DEFAULT_GRACE_MS = 30_000
const DEFAULT_POLL_MS = 5_000
const DEFAULT_BATCH = 100

/**
 * Makes the campaign counts that no process made: each transition that makes a campaign notification final notes
 * its count in the same step (Store.pendingCampaignCounts), and the process that made it counts at once and
 * settles the note. A process that died in between, or a count the store refused, leaves the note: after a grace
 * time, this loop counts it. A count is idempotent (Store.countCampaignFinal), so a count made twice (the process
 * and the sweeper at once, or several sweepers) is counted once.
 */
export class CampaignCountSweeper extends PollingLoop {
  private readonly graceMs: number
  private readonly batch: number
  private firstShard = 0

  constructor (private readonly options: CampaignCountSweeperOptions) {
    super(options.pollMs ?? DEFAULT_POLL_MS, err => options.log?.warn({ err }, 'the campaign count sweeper\'s turn failed; it tries again'), options.now)
    this.graceMs = options.graceMs ?? DEFAULT_GRACE_MS
    this.batch = options.batch ?? DEFAULT_BATCH
  }

  /** One pass over every shard (from a rotating first one); resolves whether some shard had a full batch. */
  protected async tick (): Promise<boolean> {
    const { store } = this.options
    const shards = store.shards
    const first = this.firstShard
    this.firstShard = (first + 1) % shards
    let more = false
    for (let i = 0; i < shards; i++) {
      const shard = (first + i) % shards
      const pending = await store.pendingCampaignCounts(shard, this.now() - this.graceMs, this.batch)
      for (const count of pending) await this.count(shard, count)
      if (pending.length === this.batch) more = true
    }
    return more
  }

  private async count (shard: number, count: PendingCampaignCount): Promise<void> {
    const { store } = this.options
    const stored = await store.getNotification(count.notificationId, shard)
    // Moved on since (a dead letter retried, or a sent SMS whose receipt came): its later status is counted by the
    // transition that made it. A notification past its retention is counted as noted (a campaign gone counts nothing).
    if (!stored || stored.notification.status === count.status) {
      const moved = await store.countCampaignFinal(count.campaignId, count.notificationId, count.status)
      if (moved) this.options.log?.info({ campaign: count.campaignId, notification: count.notificationId, status: count.status }, 'a campaign count no process made was made by the sweeper')
    }
    await store.settlePendingCampaignCount(shard, count)
  }
}
