import { countAndSettle } from '../campaigns/count-sweeper.js'
import { NotFoundError, UnprocessableError } from '../domain/errors.js'
import { type Page, pageAcrossShards } from '../domain/paging.js'
import { shardOfId } from '../notifications/ids.js'
import { type Notification, isFinal } from '../notifications/types.js'
import type { Lane, PendingCampaignCount, Store } from '../store/store.js'

export interface QueueState {
  waiting: number
  due: number
  leased: number
  dead: number
  oldest_waiting_seconds: number | null
  next_check_at: string | null
  checks_last_hour: number
  wakeups_last_hour: number
  outbox: Record<Lane | 'retry', number>
  campaign_counts_pending: number
}

export interface DeadLetterView {
  id: string
  to: string
  status: Notification['status']
  channel: Notification['channel']
  reason: string
  reachability: Notification['reachability']
  dead_at: string
  created_at: string
  expires_at: string
}

/** What ops see of the queues, and what they may do to dead letters. */
export class QueueOps {
  private readonly now: () => number

  constructor (private readonly store: Store, now?: () => number, private readonly onQueued?: (n: Notification) => Promise<void>) {
    this.now = now ?? Date.now
  }

  async state (): Promise<QueueState> {
    const now = this.now()
    const shards = Array.from({ length: this.store.shards }, (_, i) => i)
    const fromMinute = Math.floor(now / 60_000) - 59
    const [states, activity, depths, pendingCounts] = await Promise.all([
      Promise.all(shards.map(s => this.store.fallbackState(s, now))),
      Promise.all(shards.map(s => this.store.fallbackActivity(s, fromMinute))),
      Promise.all(shards.map(s => this.store.outboxDepth(s))),
      Promise.all(shards.map(s => this.store.pendingCampaignCountDepth(s))),
    ])
    const sum = <T>(items: T[], pick: (t: T) => number) => items.reduce((a, t) => a + pick(t), 0)
    const oldest = states.map(s => s.oldestSince).filter((v): v is number => v !== null)
    const next = states.map(s => s.nextCheckAt).filter((v): v is number => v !== null)
    return {
      waiting: sum(states, s => s.waiting),
      due: sum(states, s => s.due),
      leased: sum(states, s => s.leased),
      dead: sum(states, s => s.dead),
      oldest_waiting_seconds: oldest.length ? Math.max(0, Math.round((now - Math.min(...oldest)) / 1000)) : null,
      next_check_at: next.length ? new Date(Math.min(...next)).toISOString() : null,
      checks_last_hour: sum(activity, a => a.checks),
      wakeups_last_hour: sum(activity, a => a.wakeups),
      outbox: {
        push: sum(depths, d => d.push),
        sms: sum(depths, d => d.sms),
        callback: sum(depths, d => d.callback),
        push_bulk: sum(depths, d => d.push_bulk),
        sms_bulk: sum(depths, d => d.sms_bulk),
        retry: sum(depths, d => d.retry),
      },
      campaign_counts_pending: sum(pendingCounts, n => n),
    }
  }

  /** Dead letters, oldest first over every shard. */
  async listDead (cursor: string | undefined, limit: number): Promise<Page<DeadLetterView>> {
    return pageAcrossShards(this.store.shards, cursor, limit, async (shard, after, count) => {
      const letters = await this.store.listDead(shard, after, count)
      return Promise.all(letters.map(async letter => {
        const stored = await this.store.getNotification(letter.notificationId, shard)
        // A notification past its retention leaves a dead letter pointing nowhere: shown as such.
        const n = stored?.notification
        const final = stored?.events.filter(e => e.type === 'final').at(-1)
        return {
          at: { score: letter.at, member: letter.notificationId },
          item: {
          id: letter.notificationId,
          to: n?.request.to ?? '',
          status: n?.status ?? 'failed',
          channel: n?.channel ?? 'none',
          reason: final?.detail ?? n?.reason ?? 'the notification record is past its retention',
          reachability: n?.reachability ?? null,
          dead_at: new Date(letter.at).toISOString(),
          created_at: n?.created_at ?? '',
          expires_at: n?.expires_at ?? '',
          },
        }
      }))
    })
  }

  /** Puts a dead letter back in the fallback queue, due now, with a new expiry. */
  async retryDead (id: string, ttlSeconds: number | undefined): Promise<Notification> {
    const shard = shardOfId(id, this.store.shards)
    const stored = shard === undefined ? null : await this.store.getNotification(id, shard)
    if (shard === undefined || !stored || !(await this.store.isDead(shard, id))) throw new NotFoundError(`no dead letter ${id}`)
    const { notification } = stored
    const campaignId = notification.campaign_id
    // The count it stands in, should it not move (made again below, or by the count sweeper if this process dies
    // first); the move takes it off in the same step.
    const standing = campaignId !== undefined && isFinal(notification.status) ? { campaignId, notificationId: id, status: notification.status } : undefined
    if (standing) await this.store.notePendingCampaignCount(shard, standing, this.now())
    // Its campaign counts it in progress again, and in the status it ends in. First, while it is still a dead
    // letter: a failure here leaves it one, and the retry can be asked again. Only out of the status read here: a
    // count made since (another retry moved it and it ended again) is not this retry's to take off.
    if (standing) await this.store.reopenCampaignFinal(standing.campaignId, id, standing.status)
    let moved = false
    const nowMs = this.now()
    const at = new Date(nowMs).toISOString()
    const ttl = ttlSeconds ?? notification.request.routing.ttl_seconds
    const patch = {
      status: 'queued', channel: 'fallback_queue', reason: 'retried from the dead-letter list: waiting in the fallback queue for its re-check',
      updated_at: at, expires_at: new Date(nowMs + ttl * 1000).toISOString(),
    } as const
    try {
      moved = await this.store.transition({
        notificationId: id,
        shard,
        patch,
        // A delivery anew: DELIVERY_MAX_ATTEMPTS of its own, counted from here (attempts_base).
        events: [{ at, type: 'enqueued', detail: `retried from the dead-letter list: back in the fallback queue with a ttl of ${ttl} s`, attempts_base: notification.attempts, deadline: 'dead_letter_retry' }],
        onlyFrom: ['failed', 'expired'],
        // Off the dead-letter list in the same step: a transition that fails leaves it there, to be retried again.
        fromDead: true,
        next: { kind: 'fallback', dueAt: nowMs },
        at: nowMs,
        campaignId,
      })
      if (!moved) {
        // No longer a dead letter (retried or deleted meanwhile), or no longer failed or expired.
        if (!(await this.store.isDead(shard, id))) throw new NotFoundError(`no dead letter ${id}`)
        throw new UnprocessableError(`notification ${id} is ${notification.status}: only failed or expired notifications can be retried`)
      }
    } finally {
      // Not retried after all: counted again as it stands (a count is idempotent; one that fails stays pending),
      // unless it moved on meanwhile: another retry took it (the count is that retry's to drop) or it ended again
      // in another status (counted by that transition). Only the note is settled then, as the count sweeper does.
      if (!moved && standing) await this.recount(shard, standing).catch(() => {})
    }
    // The retry happened: a read-back the store does not answer must not make it look failed (asked again, it is a 404).
    const requeued = (await this.store.getNotification(id, shard).catch(() => null))?.notification ?? { ...notification, ...patch }
    await this.onQueued?.(requeued)
    return requeued
  }

  private async recount (shard: number, standing: PendingCampaignCount): Promise<void> {
    const now = (await this.store.getNotification(standing.notificationId, shard))?.notification
    if (!now || now.status === standing.status) await countAndSettle(this.store, standing)
    else await this.store.settlePendingCampaignCount(shard, standing)
  }

  async deleteDead (id: string): Promise<void> {
    const shard = shardOfId(id, this.store.shards)
    if (shard === undefined || !(await this.store.removeDead(shard, id))) throw new NotFoundError(`no dead letter ${id}`)
  }
}
