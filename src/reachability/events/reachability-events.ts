import { shardOfId } from '../../notifications/ids.js'
import type { Store } from '../../store/store.js'
import type { ReachabilityService } from '../service.js'
import { type CamaraSubscriptions, EVENT_TYPE_PREFIX, SUBSCRIBED_TYPES } from './camara-subscriptions.js'

export interface ReachabilityEvent {
  id: string
  type: string
  phoneNumber: string
  subscriptionId?: string | undefined
  time?: string | undefined
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
/** What the store holds for a subscription claimed but not yet created. */
const PENDING = 'pending'

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
    const { store, subscriptions } = this.options
    try {
      await store.watchNumber(phoneNumber, notificationId, expiresAt)
      if (!subscriptions) return
      await Promise.all(SUBSCRIBED_TYPES.map(async type => {
        // One creator per number and type, across processes; the others see the claim and go on.
        if (!(await store.claimSubscription(phoneNumber, type, expiresAt))) return
        try {
          const id = await subscriptions.create({
            phoneNumber, type, sink: this.options.sinkUrl, sinkToken: this.options.sinkToken, expireAt: new Date(expiresAt),
          })
          await store.setSubscription(phoneNumber, type, id, expiresAt)
        } catch (err) {
          await store.dropSubscriptions(phoneNumber, PENDING)
          throw err
        }
      }))
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
      const dropped = await store.dropSubscriptions(phoneNumber)
      await Promise.all(Object.values(dropped).filter(id => id !== PENDING).map(id => subscriptions.delete(id)))
    } catch (err) {
      this.options.log?.warn({ err, notification: notificationId }, 'ending a reachability subscription failed; it ends at its expiry')
    }
  }

  /**
   * Applies an operator's event; resolves how many queued notifications it woke. Repeats change nothing, nor does
   * an event older (by its `time`) than the status already known for the number.
   */
  async handle (event: ReachabilityEvent): Promise<number> {
    const { store, reachability } = this.options
    if (!(await store.firstSighting(event.id, EVENT_MEMORY_SECONDS))) return 0
    const type = event.type.startsWith(EVENT_TYPE_PREFIX) ? event.type.slice(EVENT_TYPE_PREFIX.length) : event.type
    if (type === 'subscription-ends') {
      await store.dropSubscriptions(event.phoneNumber, event.subscriptionId)
      return 0
    }
    if (type !== 'reachability-disconnected' && type !== 'reachability-data' && type !== 'reachability-sms') return 0
    const latest = event.time ?? new Date(this.now()).toISOString()
    const before = await reachability.cached(event.phoneNumber)
    // Events can arrive out of order: one older than the status already known (from a later event or lookup) is history.
    if (event.time !== undefined && before?.latest_status_at && Date.parse(event.time) < Date.parse(before.latest_status_at)) return 0
    const ok = { code: 'OK', message: 'Success (operator event)' }
    if (type === 'reachability-disconnected') {
      await reachability.record(event.phoneNumber, { is_reachable: false, connectivity: [], latest_status_at: latest, status: ok })
      return 0
    }

    // CAMARA's DATA means connected for data whatever the SMS state; keep an SMS we already knew of.
    const hadSms = before?.is_reachable === true && before.connectivity.includes('SMS')
    const connectivity = type === 'reachability-data' ? (hadSms ? ['DATA', 'SMS'] : ['DATA']) : ['SMS']
    await reachability.record(event.phoneNumber, { is_reachable: true, connectivity, latest_status_at: latest, status: ok })

    const waiting = await store.watchers(event.phoneNumber)
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
}
