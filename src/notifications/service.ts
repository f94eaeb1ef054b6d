import { createHash } from 'node:crypto'
import { ConflictError, NotFoundError, UnprocessableError, UpstreamUnavailableError } from '../domain/errors.js'
import type { ReachabilityResult } from '../domain/reachability.js'
import type { ReachabilityService } from '../reachability/service.js'
import { type Decision, decide, usableChannels } from '../routing/decide.js'
import { type IdempotencyRef, type JobTarget, type Store, type StoredNotification, laneFor } from '../store/store.js'
import type { CallbackPolicy } from './callback-policy.js'
import { idempotencyRef, newNotificationId, numberShard, shardOfId } from './ids.js'
import type { Notification, NotificationEvent, NotificationRequest, NotificationStatus, RoutedChannel } from './types.js'
import { countAndSettle } from '../campaigns/count-sweeper.js'

export interface AcceptAnswer {
  id: string
  status: NotificationStatus
  channel: RoutedChannel
  reason: string
  reachability: ReachabilityResult | null
  client_ref: string | null
  metadata: Record<string, string> | null
  created_at: string
}

export interface NotificationServiceOptions {
  store: Store
  reachability: ReachabilityService
  retentionSeconds: number
  idempotencyTtlSeconds: number
  /** How long a request holds its Idempotency-Key before another may take it (a crashed request's claim runs out). */
  idempotencyClaimSeconds?: number
  /** When a fallback-queued notification is first re-checked. */
  firstRecheckSeconds: number
  now?: () => number
  /** Told after each accepted notification that has a job, so in-process workers need not wait for their next poll. */
  onEnqueued?: () => void
  /** Told when a notification starts waiting in the fallback queue (reachability subscriptions). Must not throw. */
  onQueued?: (notification: Notification) => Promise<void>
  /** Whether callbacks are on and where callback_url may point; absent: anywhere. */
  callbackPolicy?: CallbackPolicy
  /** Told of the routing decision of each notification accepted (metrics). Must not throw. */
  onRouted?: (decision: Decision, reachability: ReachabilityResult | null, request: NotificationRequest) => void
}

type ClaimedKey = IdempotencyRef & { token: string, requestHash: string }

/** How a notification is accepted on behalf of a campaign. */
export interface AcceptOptions {
  /** The campaign it belongs to: kept on the notification. */
  campaignId?: string
  /** Goes to the bulk lanes, served after single notifications. */
  bulk?: boolean
  /** The reachability already looked up by the caller (null: the upstream gave no answer); no lookup is made here. */
  reachability?: ReachabilityResult | null
  /** How long the answer to its Idempotency-Key is kept (default idempotencyTtlSeconds): a campaign recipient's, as long as its campaign may run. */
  idempotencyTtlSeconds?: number
  /** How long its Idempotency-Key claim holds before another request may take it (default idempotencyClaimSeconds). */
  claimSeconds?: number
}

/** Accepts notifications (routed, stored and enqueued in one atomic step) and reads them back. */
export class NotificationService {
  private readonly now: () => number

  constructor (private readonly options: NotificationServiceOptions) {
    this.now = options.now ?? Date.now
  }

  /**
   * Accepts a notification for `owner` (the caller's token subject). With an Idempotency-Key, the same key
   * and body answer the first answer again (replayed: true), another body is a 422, a request still in flight a 409.
   */
  async accept (owner: string, request: NotificationRequest, idempotencyKey?: string, options: AcceptOptions = {}): Promise<{ answer: AcceptAnswer, replayed: boolean }> {
    if (usableChannels(request).size === 0) {
      throw new UnprocessableError('no channel can carry this message: give SMS text, or push content with a push_token, on a channel that routing.channels allows')
    }
    const { store } = this.options
    let idem: ClaimedKey | undefined
    if (idempotencyKey !== undefined) {
      const requestHash = hashRequest(request)
      const ref = this.idempotencyRef(owner, idempotencyKey)
      const claim = await store.claimIdempotency(ref, requestHash, options.claimSeconds ?? this.options.idempotencyClaimSeconds ?? 30)
      // An accept takes milliseconds: try again in a second, not when the claim would run out (30 s; it ends sooner).
      if (claim.state === 'in_flight') throw new ConflictError('a request with this Idempotency-Key is still in flight', 1)
      if (claim.state === 'done') {
        if (claim.requestHash !== requestHash) throw new UnprocessableError('this Idempotency-Key was used with another request body')
        return { answer: JSON.parse(claim.response) as AcceptAnswer, replayed: true }
      }
      idem = { ...ref, token: claim.token, requestHash }
    }

    try {
      // After the key's replay: the callback settings may have changed since its first answer, which stays the answer.
      const refusal = request.callback_url === undefined ? undefined : this.options.callbackPolicy?.refusal(request.callback_url)
      if (refusal) throw new UnprocessableError(refusal)
      return { answer: await this.route(owner, request, idem, options), replayed: false }
    } catch (err) {
      if (idem) await store.releaseIdempotency(idem, idem.token).catch(() => {})
      throw err
    }
  }

  /**
   * Keeps the answered records of these Idempotency-Keys of `owner` for at most ttlSeconds more: for keys hardly
   * any request will send again (a campaign's, once the chunk that used them is counted). A claim in flight stays.
   */
  async shortenIdempotencyKeys (owner: string, idempotencyKeys: string[], ttlSeconds: number): Promise<void> {
    await this.options.store.shortenIdempotency(idempotencyKeys.map(key => this.idempotencyRef(owner, key)), ttlSeconds)
  }

  private idempotencyRef (owner: string, idempotencyKey: string): IdempotencyRef {
    return idempotencyRef(`${owner}\u0000${idempotencyKey}`, this.options.store.shards)
  }

  private async route (owner: string, request: NotificationRequest, idem: ClaimedKey | undefined, options: AcceptOptions): Promise<AcceptAnswer> {
    // The cache entry this process last read for the number, if still fresh: routed on it and stored in one
    // step that checks the entry is unchanged (one store round trip). Otherwise (or if it changed) a lookup.
    if (options.reachability === undefined && !idem) {
      const guess = this.options.reachability.recentlyCached(request.to, request.routing.max_age)
      if (guess) {
        const answer = await this.store(owner, request, undefined, options, guess.result, '', guess.version)
        if (answer) {
          this.options.reachability.confirmed(guess)
          return answer
        }
        this.options.reachability.forget(request.to)
      }
    }

    let reachability: ReachabilityResult | null = null
    let lookupNote = options.reachability === null ? 'the upstream gave no answer' : ''
    if (options.reachability !== undefined) {
      reachability = options.reachability
    } else {
      try {
        reachability = await this.options.reachability.lookup(request.to, { maxAgeSeconds: request.routing.max_age })
      } catch (err) {
        if (!(err instanceof UpstreamUnavailableError)) throw err
        lookupNote = err.message
      }
    }
    const answer = await this.store(owner, request, idem, options, reachability, lookupNote)
    if (!answer) throw new ConflictError('the Idempotency-Key claim of this request ran out and was taken by another request', 1)
    return answer
  }

  /**
   * Routes on `reachability` and stores the notification with its job; null when nothing was stored: the
   * idempotency claim was lost, or the cache entry `basedOnVersion` names changed in the meantime.
   */
  private async store (owner: string, request: NotificationRequest, idem: ClaimedKey | undefined, options: AcceptOptions,
    reachability: ReachabilityResult | null, lookupNote: string, basedOnVersion?: string): Promise<AcceptAnswer | null> {
    const { store } = this.options
    const decision = decide(reachability, request)

    const nowMs = this.now()
    const at = new Date(nowMs).toISOString()
    // Without a key, in the number's shard: beside its cache entry, so the accept can check that entry.
    const id = newNotificationId(idem?.shard ?? numberShard(request.to, store.shards))
    const status: NotificationStatus = decision.final ?? 'queued'
    const notification: Notification = {
      id,
      owner,
      status,
      channel: decision.channel,
      reason: decision.reason,
      request,
      reachability,
      attempts: 0,
      created_at: at,
      updated_at: at,
      expires_at: new Date(nowMs + request.routing.ttl_seconds * 1000).toISOString(),
      ...(options.campaignId !== undefined ? { campaign_id: options.campaignId } : {}),
    }
    const events: NotificationEvent[] = [
      { at, type: 'accepted', detail: `accepted for ${request.to}` },
      {
        at,
        type: 'routed',
        detail: decision.reason,
        channel: decision.channel,
        reachability: reachability
          ? { source: reachability.source, is_reachable: reachability.is_reachable, connectivity: reachability.connectivity, status: reachability.status.code }
          : { unavailable: lookupNote },
      },
    ]
    let next: JobTarget
    if (decision.channel === 'push' || decision.channel === 'sms') {
      next = { kind: 'outbox', lane: laneFor(decision.channel, options.bulk === true) }
      events.push({ at, type: 'enqueued', detail: `waiting in the ${decision.channel} outbox` })
    } else if (decision.channel === 'fallback_queue') {
      next = { kind: 'fallback', dueAt: nowMs + this.options.firstRecheckSeconds * 1000 }
      events.push({ at, type: 'enqueued', detail: `waiting in the fallback queue; first re-check in ${this.options.firstRecheckSeconds} s` })
    } else {
      next = request.callback_url ? { kind: 'outbox', lane: 'callback' } : { kind: 'none' }
      events.push({ at, type: 'final', detail: `${status}: ${decision.reason}`, status })
    }

    const answer: AcceptAnswer = {
      id,
      status,
      channel: decision.channel,
      reason: decision.reason,
      reachability,
      client_ref: request.client_ref ?? null,
      metadata: request.metadata ?? null,
      created_at: at,
    }
    const accepted = await store.acceptNotification({
      notification,
      events,
      next,
      retentionSeconds: this.options.retentionSeconds,
      ...(idem
        ? { idempotency: { ...idem, response: JSON.stringify(answer), ttlSeconds: options.idempotencyTtlSeconds ?? this.options.idempotencyTtlSeconds } }
        : {}),
      ...(basedOnVersion !== undefined ? { basedOn: { phoneNumber: request.to, version: basedOnVersion } } : {}),
    })
    if (!accepted) return null
    this.options.onRouted?.(decision, reachability, request)
    if (next.kind === 'outbox') this.options.onEnqueued?.()
    // Subscribing at the operator takes its own round trips: the caller's 202 does not wait for it.
    if (next.kind === 'fallback') void this.options.onQueued?.(notification)
    return answer
  }

  async get (id: string): Promise<StoredNotification> {
    const shard = shardOfId(id, this.options.store.shards)
    const stored = shard === undefined ? null : await this.options.store.getNotification(id, shard)
    if (!stored) throw new NotFoundError(`no notification ${id} (ids look like ntf_07_…; notifications are kept for a limited time)`)
    return stored
  }
}

/** A stable hash of the request: the same fields in any order hash the same. */
export function hashRequest (request: unknown): string {
  return createHash('sha256').update(canonicalJson(request)).digest('hex')
}

function canonicalJson (value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  if (value && typeof value === 'object') {
    return `{${Object.keys(value).sort().filter(k => (value as Record<string, unknown>)[k] !== undefined)
      .map(k => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`).join(',')}}`
  }
  return JSON.stringify(value)
}

export interface MessageReceipt {
  /** Our notification id, sent to the provider as client_ref. */
  clientRef: string
  status: string
  providerMessageId?: string | undefined
  error?: string | undefined
  at: string
}

/** A Map, not an object: a receipt's status is the sender's text, and `__proto__` or `toString` must not find anything. */
const RECEIPT_STATUS: ReadonlyMap<string, 'delivered' | 'failed'> = new Map([
  ['delivered', 'delivered'],
  ['rejected', 'failed'],
  ['undeliverable', 'failed'],
  ['failed', 'failed'],
])

/**
 * Applies a provider's delivery receipt. Repeats (the same message id and status) and receipts for unknown or already
 * final notifications change nothing; a failure reported for an earlier send than the latest is recorded, not applied.
 * Resolves whether the notification changed.
 * A campaign's notification is counted in the receipt's final status (moved from `sent`, or counted for the first
 * time when the receipt came before the worker recorded `sent`). A repeat of the receipt counts again (the count is
 * idempotent): when the count failed (a 503), the provider's retry makes it, or the count sweeper. `onFinal` is told
 * once, when the receipt moved the notification to a final status, and `onCampaignFinal` when it was a campaign's (metrics).
 */
export async function applyReceipt (store: Store, receipt: MessageReceipt,
  { now = Date.now(), onFinal, onCampaignFinal }: { now?: number, onFinal?: (status: 'delivered' | 'failed') => void, onCampaignFinal?: (status: 'delivered' | 'failed') => void } = {}): Promise<boolean> {
  const shard = shardOfId(receipt.clientRef, store.shards)
  if (shard === undefined) return false
  const stored = await store.getNotification(receipt.clientRef, shard)
  if (!stored) return false
  // Sent again after an attempt whose answer was lost (at least once): a failure of an earlier send is not the
  // notification's, whose latest send may still be delivered. Its delivery is (the customer has the message).
  const latest = stored.notification.provider_message_id
  const earlierSend = receipt.providerMessageId !== undefined && latest !== undefined && latest !== receipt.providerMessageId
  const reported = RECEIPT_STATUS.get(receipt.status)
  const next = earlierSend && reported === 'failed' ? undefined : reported
  // Vonage sends a webhook again until it is answered (and a captured one may be replayed): a receipt already
  // recorded adds no event.
  const repeat = stored.events.some(e => e.type === 'receipt' && e.provider_status === receipt.status && e.provider_message_id === receipt.providerMessageId)
  const at = new Date(now).toISOString()
  const detail = `receipt: ${receipt.status}${receipt.error ? ` (${receipt.error})` : ''}` +
    (earlierSend && reported === 'failed' ? ` for an earlier send (${receipt.providerMessageId}), not the latest (${latest})` : '')
  const changed = !repeat && await store.transition({
    notificationId: receipt.clientRef,
    shard,
    // A failed one says why in its reason; a delivered one keeps its routing reason.
    patch: next ? { status: next, updated_at: at, ...(next === 'failed' ? { reason: detail } : {}) } : {},
    events: [
      { at, type: 'receipt', detail, provider_status: receipt.status, provider_at: receipt.at, provider_message_id: receipt.providerMessageId },
      ...(next ? [{ at, type: 'final' as const, detail: `${next}: ${detail}`, status: next }] : []),
    ],
    // `delivered` also while the notification waits to retry (queued after an attempt): the provider took the SMS
    // although its answer to us was lost, and the retry, finding it delivered, is not sent. A failure report then
    // changes nothing: the retry may still get through.
    onlyFrom: next === 'delivered' && stored.notification.attempts > 0 ? ['sending', 'sent', 'queued'] : ['sending', 'sent'],
    next: next && stored.notification.request.callback_url ? { kind: 'outbox', lane: 'callback' } : { kind: 'none' },
    // Failed by the carrier: a dead letter, as a delivery that ends failed is (an operator may retry it).
    dead: next === 'failed',
    campaignId: stored.notification.campaign_id,
  })
  if (next && changed) onFinal?.(next)
  const campaignId = stored.notification.campaign_id
  if (next && campaignId !== undefined && (changed || stored.notification.status === next)) {
    // Told before the count: a count that fails stays pending (the transition noted it), and is made by the
    // provider's retry, which no longer changes the notification, or by the count sweeper.
    if (changed) onCampaignFinal?.(next)
    await countAndSettle(store, { campaignId, notificationId: receipt.clientRef, status: next })
  }
  return changed
}
