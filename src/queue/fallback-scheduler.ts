import { randomUUID } from 'node:crypto'
import { UpstreamUnavailableError } from '../domain/errors.js'
import { isSuccessCode, type ReachabilityResult, smsNotReported } from '../domain/reachability.js'
import { eventsSinceFinal, type Notification, type NotificationEvent, type NotificationStatus, timeAllowed } from '../notifications/types.js'
import type { ReachabilityService } from '../reachability/service.js'
import { decide, usableChannels } from '../routing/decide.js'
import { PollingLoop } from './polling-loop.js'
import { type FallbackLease, type JobTarget, type Store, laneFor } from '../store/store.js'

const SMS_ON_EXPIRY_WINDOW_MS = 3600_000
/**
 * What every transition of a leased entry applies from: the status it was read in. The lease keeps other schedulers
 * off, not a receipt: a `delivered` one for an earlier attempt (a dead letter retried) may end it during the re-check.
 */
const STILL_WAITING = ['queued'] as const

export interface FallbackSchedulerOptions {
  store: Store
  reachability: ReachabilityService
  firstCheckSeconds: number
  backoffFactor: number
  maxIntervalSeconds: number
  /** Re-checks accept cached reachability only this fresh. */
  recheckMaxAgeSeconds: number
  /** How long a scheduler holds an entry; past it, another scheduler takes it. */
  leaseSeconds: number
  /** Dead letters older than this are dropped. */
  deadLetterRetentionSeconds?: number
  concurrency: number
  pollMs: number
  now?: () => number
  random?: () => number
  /** Told when a notification was handed to an outbox, to wake the delivery worker. */
  onHandedOver?: () => void
  /** Told when a notification left the fallback queue, whatever the way (ends reachability subscriptions). Must not throw. */
  onLeft?: (notification: Notification) => Promise<void>
  /** Told when this scheduler ends a notification, in its final status (metrics). Must not throw. */
  onFinal?: (status: NotificationStatus) => void
  /** Told when a campaign's notification reaches a final status here (counted once per notification id). Must not throw. */
  onCampaignFinal?: (campaignId: string, status: NotificationStatus, notificationId: string) => void
  /** Whether a notification's campaign was cancelled: its notifications still waiting here are dropped when due. */
  isCampaignCancelled?: (campaignId: string) => Promise<boolean>
  log?: { warn: (obj: object, msg: string) => void, error: (obj: object, msg: string) => void }
}

/**
 * Re-checks the devices of notifications waiting in the fallback queue when their time comes, under a
 * lease so several schedulers share the work without handling one entry twice at once. A device that is
 * back gets its notification routed to an outbox; one still away is checked again after a growing
 * interval, never later than the notification's expiry; at expiry the notification ends (or goes as SMS).
 */
export class FallbackScheduler extends PollingLoop {
  readonly id = `scheduler-${randomUUID().slice(0, 8)}`
  private readonly random: () => number
  private readonly inFlight = new Set<Promise<void>>()
  private lastTrim = 0
  /** The shard the next pass starts with. */
  private firstShard = 0

  constructor (private readonly options: FallbackSchedulerOptions) {
    super(options.pollMs, err => options.log?.warn({ err }, 'fallback scheduler: the store failed; trying again'), options.now)
    this.random = options.random ?? Math.random
  }

  /** Stops taking entries and waits for those in hand; an entry not finished is taken again when its lease runs out. */
  override async stop (): Promise<void> {
    await super.stop()
    await Promise.allSettled([...this.inFlight])
  }

  /**
   * One pass over every shard: lapsed leases back to the queue, then due entries leased and handled. Due
   * entries are taken a pass at a time: the next pass waits its poll interval whatever this one found.
   */
  protected async tick (): Promise<boolean> {
    const { store } = this.options
    const trim = this.options.deadLetterRetentionSeconds !== undefined && this.now() - this.lastTrim > 60_000
    if (trim) this.lastTrim = this.now()
    // Each pass starts one shard further on, and a shard met with every slot taken waits for one, not skipped:
    // shards behind a backlog in the earlier ones would otherwise be re-checked only once it drained.
    const first = this.firstShard
    this.firstShard = (first + 1) % store.shards
    for (let i = 0; i < store.shards; i++) {
      const shard = (first + i) % store.shards
      while (this.inFlight.size >= this.options.concurrency) await Promise.race(this.inFlight)
      // Told to stop while it waited for a slot: no more leases (the shutdown waits for the re-checks in hand only).
      if (!this.running) break
      const now = this.now()
      const free = this.options.concurrency - this.inFlight.size
      let leases: FallbackLease[]
      // One shard whose Redis node is down must not hold up the others' re-checks.
      try {
        await store.expireFallbackLeases(shard, now)
        if (trim) await store.trimDead(shard, now - this.options.deadLetterRetentionSeconds! * 1000)
        leases = await store.takeDueFallback(shard, now, now + this.options.leaseSeconds * 1000, free)
      } catch (err) {
        this.options.log?.warn({ err, shard }, 'fallback scheduler: a shard did not answer; the others go on')
        continue
      }
      for (const lease of leases) {
        const work = this.handle(lease)
          .catch(err => this.options.log?.error({ err, notification: lease.notificationId }, 'fallback re-check failed; the entry is taken again when its lease runs out'))
          .finally(() => this.inFlight.delete(work))
        this.inFlight.add(work)
      }
    }
    return false
  }

  /** Waits for the entries in hand (tests drive single passes). */
  async drain (): Promise<void> {
    await Promise.allSettled([...this.inFlight])
  }

  private async handle (lease: FallbackLease): Promise<void> {
    const { store } = this.options
    const stored = await store.getNotification(lease.notificationId, lease.shard)
    const n = stored?.notification
    if (!n || n.status !== 'queued' || n.channel !== 'fallback_queue') {
      await store.transition({ notificationId: lease.notificationId, shard: lease.shard, patch: {}, events: [], lease, onlyFrom: ['__never__'] })
      // It left the queue another way (a receipt, an earlier hand-over whose answer was lost): it waits no more.
      if (n) await this.options.onLeft?.(n)
      return
    }
    const nowMs = this.now()
    const at = new Date(nowMs).toISOString()
    if (n.campaign_id !== undefined && await this.options.isCampaignCancelled?.(n.campaign_id)) {
      await this.end(lease, n, 'dropped', 'campaign cancelled', [], at, null)
      return
    }
    const expiresAt = Date.parse(n.expires_at)
    if (nowMs >= expiresAt) {
      await this.expire(lease, n, at, stored!.events)
      return
    }

    let reachability: ReachabilityResult | null = null
    let unavailable = ''
    try {
      reachability = await this.options.reachability.lookup(n.request.to, { maxAgeSeconds: this.options.recheckMaxAgeSeconds })
    } catch (err) {
      if (!(err instanceof UpstreamUnavailableError)) throw err
      unavailable = err.message
    }
    // Counted since its last final status: a dead letter retried backs off from the first interval again.
    const checks = eventsSinceFinal(stored!.events).filter(e => e.type === 'recheck').length + 1
    await store.countFallbackActivity(lease.shard, Math.floor(nowMs / 60_000), 'checks', 1)

    // On a re-check, "not reachable" and "no answer" both mean: keep waiting. A device back on the network for
    // DATA, with SMS not reported, is sent the SMS when the caller's on_unknown is sms, as at acceptance.
    const backForData = reachability !== null && isSuccessCode(reachability.status.code) && smsNotReported(reachability) && n.request.routing.on_unknown === 'sms'
    const decision = decide(reachability, { ...n.request, routing: { ...n.request.routing, on_unreachable: 'queue', on_unknown: backForData ? 'sms' : 'queue' } })
    const summary = reachability
      ? { source: reachability.source, is_reachable: reachability.is_reachable, connectivity: reachability.connectivity, status: reachability.status.code }
      : { unavailable }
    const recheck: NotificationEvent = { at, type: 'recheck', detail: `re-check ${checks}: ${decision.reason}`, check: checks, reachability: summary }

    if (decision.channel === 'push' || decision.channel === 'sms') {
      const handed = await store.transition({
        notificationId: n.id,
        shard: lease.shard,
        patch: { status: 'queued', channel: decision.channel, reason: `the device came back: ${decision.reason}`, updated_at: at, ...(reachability ? { reachability } : {}) },
        events: [recheck, { at, type: 'routed', detail: decision.reason, channel: decision.channel }, { at, type: 'enqueued', detail: `waiting in the ${decision.channel} outbox` }],
        lease,
        onlyFrom: STILL_WAITING,
        next: { kind: 'outbox', lane: laneFor(decision.channel, n.campaign_id !== undefined) },
        at: nowMs,
      })
      if (handed) {
        await store.countFallbackActivity(lease.shard, Math.floor(nowMs / 60_000), 'wakeups', 1)
        this.options.onHandedOver?.()
        await this.options.onLeft?.(n)
      } else {
        await this.leftMeanwhile(lease, n)
      }
      return
    }
    if (decision.final) {
      await this.end(lease, n, decision.final, decision.reason, [recheck], at, reachability)
      return
    }
    const nextAt = Math.min(nowMs + this.interval(checks), expiresAt)
    const rescheduled = await store.transition({
      notificationId: n.id,
      shard: lease.shard,
      patch: { updated_at: at, ...(reachability ? { reachability } : {}) },
      events: [{ ...recheck, detail: `${recheck.detail}; next check at ${new Date(nextAt).toISOString()}`, next_check_at: new Date(nextAt).toISOString() }],
      lease,
      onlyFrom: STILL_WAITING,
      next: { kind: 'fallback', dueAt: nextAt },
      at: nowMs,
    })
    if (!rescheduled) await this.leftMeanwhile(lease, n)
  }

  /** first × factor^checks, capped, with ±20% jitter so a crowd of entries spreads out. */
  private interval (checks: number): number {
    const { firstCheckSeconds, backoffFactor, maxIntervalSeconds } = this.options
    const base = Math.min(maxIntervalSeconds, firstCheckSeconds * backoffFactor ** checks)
    return Math.round(Math.min(maxIntervalSeconds, base * (0.8 + 0.4 * this.random())) * 1000)
  }

  private async expire (lease: FallbackLease, n: Notification, at: string, events: readonly NotificationEvent[]): Promise<void> {
    if (n.request.routing.on_expiry === 'sms' && usableChannels(n.request).has('sms')) {
      const handed = await this.options.store.transition({
        notificationId: n.id,
        shard: lease.shard,
        // The SMS gets a delivery window of its own: the carrier's SMS centre keeps it until the phone is back.
        patch: { status: 'queued', channel: 'sms', reason: 'the ttl passed in the fallback queue; on_expiry is sms: the SMS centre stores and forwards', updated_at: at, expires_at: new Date(this.now() + SMS_ON_EXPIRY_WINDOW_MS).toISOString() },
        events: [{ at, type: 'enqueued', detail: 'ttl passed in the fallback queue; sent as SMS (on_expiry: sms)', deadline: 'on_expiry_sms' }],
        lease,
        onlyFrom: STILL_WAITING,
        next: { kind: 'outbox', lane: laneFor('sms', n.campaign_id !== undefined) },
        at: this.now(),
      })
      if (handed) {
        this.options.onHandedOver?.()
        await this.options.onLeft?.(n)
      } else {
        await this.leftMeanwhile(lease, n)
      }
      return
    }
    await this.end(lease, n, 'expired', `the device did not come back within ${timeAllowed(n, events)}`, [], at, null)
  }

  private async end (lease: FallbackLease, n: Notification, status: 'expired' | 'failed' | 'dropped', reason: string, events: NotificationEvent[], at: string, reachability: ReachabilityResult | null): Promise<void> {
    const next: JobTarget = n.request.callback_url ? { kind: 'outbox', lane: 'callback' } : { kind: 'none' }
    const ended = await this.options.store.transition({
      notificationId: n.id,
      shard: lease.shard,
      patch: { status, reason, updated_at: at, ...(reachability ? { reachability } : {}) },
      events: [...events, { at, type: 'final', detail: `${status}: ${reason}`, status }],
      lease,
      onlyFrom: STILL_WAITING,
      next,
      // A drop is what was asked for: no dead letter.
      dead: status !== 'dropped',
      at: this.now(),
      // Its campaign's count is noted in the same step, and made by the sweeper if onCampaignFinal's never is.
      campaignId: n.campaign_id,
    })
    // A transition whose answer was lost ran all the same: its retry finds the status there, and finishes the job.
    if (!ended && (await this.options.store.getNotification(n.id, lease.shard))?.notification.status !== status) {
      await this.leftMeanwhile(lease, n)
      return
    }
    if (ended) this.options.onFinal?.(status)
    if (n.campaign_id !== undefined) this.options.onCampaignFinal?.(n.campaign_id, status, n.id)
    await this.options.onLeft?.(n)
  }

  /**
   * After a transition of a leased entry that did not apply: if the notification no longer waits here (it ended
   * meanwhile, or is gone), it is told as left, so its number's subscriptions end with their last waiter. If it still
   * waits, the lease was lost to another scheduler, which tells it.
   */
  private async leftMeanwhile (lease: FallbackLease, n: Notification): Promise<void> {
    const now = (await this.options.store.getNotification(n.id, lease.shard))?.notification
    if (!now || now.status !== 'queued' || now.channel !== 'fallback_queue') await this.options.onLeft?.(n)
  }
}
