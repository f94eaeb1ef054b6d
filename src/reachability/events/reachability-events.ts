import { createHash } from 'node:crypto'
import { shardOfId } from '../../notifications/ids.js'
import type { Store } from '../../store/store.js'
import type { ReachabilityService } from '../service.js'
import { type CamaraSubscriptions, EVENT_TYPE_PREFIX, SUBSCRIBED_TYPES } from './camara-subscriptions.js'

export interface ReachabilityEvent {
  id: string
  /** With `id`, what makes an event unique (CloudEvents). */
  source: string
  type: string
  /** The subscription the event comes from: it names the number. */
  subscriptionId: string
  /** The device's number if the event names it; it must be the subscription's. */
  phoneNumber?: string | undefined
  time: string
}

/** The key an event is remembered by: CloudEvents promises `source` and `id` unique together, not `id` alone. */
export function eventKey (source: string, id: string): string {
  return createHash('sha256').update(source).update('\0').update(id).digest('base64url')
}

export interface ReachabilityEventsOptions {
  store: Store
  reachability: ReachabilityService
  /** Null when the operator has no subscriptions API: then only polling finds devices that come back. */
  subscriptions: CamaraSubscriptions | null
  sinkUrl: string
  sinkToken: string
  now?: () => number
  /** Told when queued notifications were made due, to wake the scheduler. */
  onWake?: () => void
  log?: { warn: (obj: object, msg: string) => void }
}

const EVENT_MEMORY_SECONDS = 86_400
/** How long, and how many, events of a subscription id not stored yet are kept for it (see apply). */
const EARLY_EVENT_SECONDS = 300
const EARLY_EVENTS_KEPT = 10
/**
 * Subscriptions end on the hour after the longest wait they cover: notifications of the same ttl accepted within the
 * hour share them, instead of each replacing them by one a few milliseconds longer.
 */
const SUBSCRIPTION_STEP_MS = 3_600_000

/**
 * Faster than polling: a queued number gets reachability subscriptions at the operator; an event
 * for it updates the cache and makes its queued notifications due at once. Subscriptions end when
 * no notification waits for the number any more. Polling stays the safety net, so a failure here
 * is logged, never passed on.
 */
export class ReachabilityEvents {
  private readonly now: () => number

  constructor (private readonly options: ReachabilityEventsOptions) {
    this.now = options.now ?? Date.now
  }

  get subscribing (): boolean {
    return this.options.subscriptions !== null
  }

  /** A notification started waiting for the number's device. */
  async watch (phoneNumber: string, notificationId: string, expiresAt: number): Promise<void> {
    try {
      await this.options.store.watchNumber(phoneNumber, notificationId, expiresAt)
      await this.subscribe(phoneNumber, expiresAt)
    } catch (err) {
      this.options.log?.warn({ err, notification: notificationId }, 'reachability subscription failed; polling will find the device')
    }
  }

  /** A notification stopped waiting; the number's subscriptions end with its last waiting notification. */
  async unwatch (phoneNumber: string, notificationId: string): Promise<void> {
    const { store, subscriptions } = this.options
    try {
      const left = await store.unwatchNumber(phoneNumber, notificationId)
      if (left > 0 || !subscriptions) return
      await this.end(phoneNumber)
      // A notification that started waiting meanwhile may have counted on what was just ended.
      await this.resubscribe(phoneNumber)
    } catch (err) {
      this.options.log?.warn({ err, notification: notificationId }, 'ending a reachability subscription failed; it ends at its expiry')
    }
  }

  /**
   * Applies an operator's event; resolves how many queued notifications it woke. Repeats change nothing, nor does
   * an event older (by its `time`) than the status already known for the number, nor one from a subscription that
   * is not (or no longer) ours. An event is remembered as seen only once applied: one that failed half way is
   * applied again when the operator sends it again (applying is idempotent).
   */
  async handle (event: ReachabilityEvent): Promise<number> {
    const { store } = this.options
    const key = eventKey(event.source, event.id)
    if (await store.eventSeen(key)) return 0
    const woken = await this.apply(event)
    await store.markEventSeen(key, EVENT_MEMORY_SECONDS)
    return woken
  }

  private async apply (event: ReachabilityEvent): Promise<number> {
    const { store, reachability } = this.options
    let phoneNumber = await store.subscriptionNumber(event.subscriptionId)
    if (phoneNumber === null) {
      // The operator's initial event may come before its answer to our create: kept until the id is stored (or
      // forgotten: one of a subscription that is not, or no longer, ours). Stored meanwhile: applied now.
      if (await store.parkSubscriptionEvent(event.subscriptionId, JSON.stringify(event), EARLY_EVENT_SECONDS, EARLY_EVENTS_KEPT)) return 0
      phoneNumber = await store.subscriptionNumber(event.subscriptionId)
      if (phoneNumber === null) return 0
    }
    if (event.phoneNumber !== undefined && event.phoneNumber !== phoneNumber) {
      this.options.log?.warn({ subscription: event.subscriptionId }, 'a reachability event names another device than its subscription; ignored')
      return 0
    }
    // Only the types of the API version subscribed to: a type without its prefix (or of another version) is not one
    // we asked for, and is not taken for one.
    const type = event.type.startsWith(EVENT_TYPE_PREFIX) ? event.type.slice(EVENT_TYPE_PREFIX.length) : undefined
    if (type === undefined) {
      this.options.log?.warn({ subscription: event.subscriptionId, type: event.type.slice(0, 200) }, 'a reachability event of a type not subscribed to; ignored')
      return 0
    }
    if (type === 'subscription-ends') {
      // Ours to end are forgotten before they are deleted: this one the operator ended, so subscribe again while notifications wait.
      const dropped = await store.dropSubscriptions(phoneNumber, event.subscriptionId)
      if (Object.keys(dropped).length > 0) await this.resubscribe(phoneNumber)
      return 0
    }
    if (type !== 'reachability-disconnected' && type !== 'reachability-data' && type !== 'reachability-sms') return 0
    const before = await reachability.cached(phoneNumber)
    // Events can arrive out of order: one older than the status already known (from a later event or lookup) is history.
    if (before?.latest_status_at && Date.parse(event.time) < Date.parse(before.latest_status_at)) return 0
    const ok = { code: 'OK', message: 'Success (operator event)' }
    if (type === 'reachability-disconnected') {
      await reachability.record(phoneNumber, { is_reachable: false, connectivity: [], latest_status_at: event.time, status: ok })
      return 0
    }

    // CAMARA's DATA means connected for data whatever the SMS state; keep an SMS we already knew of.
    const hadSms = before?.is_reachable === true && before.connectivity.includes('SMS')
    const connectivity = type === 'reachability-data' ? (hadSms ? ['DATA', 'SMS'] : ['DATA']) : ['SMS']
    // Older than what the number's report knows (the cache entry expired meanwhile): history, wakes nothing.
    if (!(await reachability.record(phoneNumber, { is_reachable: true, connectivity, latest_status_at: event.time, status: ok }))) return 0

    const waiting = await store.watchers(phoneNumber)
    const byShard = new Map<number, string[]>()
    for (const id of waiting) {
      const shard = shardOfId(id, store.shards)
      if (shard !== undefined) byShard.set(shard, [...(byShard.get(shard) ?? []), id])
    }
    let woken = 0
    const now = this.now()
    for (const [shard, ids] of byShard) woken += await store.wakeFallback(shard, ids, now)
    if (woken > 0) this.options.onWake?.()
    return woken
  }

  /**
   * Makes sure each event type has a subscription lasting past `waitsUntilMs`: one is made where none does, in place of
   * a shorter one (then deleted at the operator). One maker per number and type across processes. An operator that
   * refuses duplicates answers with the one it has, which may end sooner than asked: it is stored as asked, and its
   * subscription-ends (the operator ended it, not us) subscribes again.
   */
  private async subscribe (phoneNumber: string, waitsUntilMs: number): Promise<void> {
    const { store, subscriptions } = this.options
    if (!subscriptions) return
    const untilMs = Math.ceil(waitsUntilMs / SUBSCRIPTION_STEP_MS) * SUBSCRIPTION_STEP_MS
    await Promise.all(SUBSCRIBED_TYPES.map(async type => {
      const claim = await store.claimSubscription(phoneNumber, type, untilMs)
      if (claim === null) return
      let id: string
      try {
        id = await subscriptions.create({ phoneNumber, type, sink: this.options.sinkUrl, sinkToken: this.options.sinkToken, expireAt: new Date(untilMs) })
      } catch (err) {
        await store.releaseSubscriptionClaim(phoneNumber, type, claim)
        throw err
      }
      // An operator refusing duplicates answers with the one it holds: maybe the very one stored (then not `replaced`).
      const { stored, replaced } = await store.setSubscription(phoneNumber, type, claim, id, untilMs)
      // Not stored: the last notification left while it was made, or a longer-lasting one is being made. Deleted at
      // the operator, unless it is one the store still holds for the number.
      if (!stored) {
        if (Object.values(await store.getSubscriptions(phoneNumber)).includes(id)) return
        return subscriptions.delete(id)
      }
      if (replaced !== null) await subscriptions.delete(replaced)
      for (const early of await store.takeSubscriptionEvents(id)) await this.apply(JSON.parse(early) as ReachabilityEvent)
      // The last notification may have left before the claim: then its unwatch found nothing to end.
      if ((await store.watchers(phoneNumber)).length === 0) await this.end(phoneNumber)
    }))
  }

  /** Subscribes again for as long as notifications still wait for the number. */
  private async resubscribe (phoneNumber: string): Promise<void> {
    const until = await this.options.store.watchedUntil(phoneNumber)
    if (until !== null && until > this.now()) await this.subscribe(phoneNumber, until)
  }

  /** Forgets the number's subscriptions, then deletes them at the operator. */
  private async end (phoneNumber: string): Promise<void> {
    const { store, subscriptions } = this.options
    if (!subscriptions) return
    const dropped = await store.dropSubscriptions(phoneNumber)
    await Promise.all(Object.values(dropped).map(id => subscriptions.delete(id)))
  }
}
