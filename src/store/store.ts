import type { Position } from '../domain/paging.js'
import type { Reachability } from '../domain/reachability.js'
import { hasLoneSurrogate, wellFormed } from '../domain/unicode.js'
import { isFinal, NOTIFICATION_STATUSES, type Notification, type NotificationEvent, type NotificationMessage, type NotificationStatus, type RoutedChannel, type Routing } from '../notifications/types.js'

// The port every piece of state goes through. Two adapters: redis/ (production) and memory/ (embedded default).
// Everything a notification owns lives in its shard: one shard's keys share a Redis Cluster hash tag.

export interface CachedReachability {
  record: Reachability
  /** Epoch ms until which the record is fresh; after it, it may only be served as stale. */
  freshUntil: number
  /** Set by the store on read: which write of the number's entry this is (an AcceptCommand can be based on it). */
  version?: string
}

/** The lanes a job can wait in: one outbox stream per lane and shard. Campaign traffic has lanes of its own (`_bulk`). */
export type Lane = 'push' | 'sms' | 'callback' | 'push_bulk' | 'sms_bulk'
export const LANES: readonly Lane[] = ['push', 'sms', 'callback', 'push_bulk', 'sms_bulk']

/** The outbox lane of a channel: the bulk one for campaign notifications. */
export function laneFor (channel: 'push' | 'sms', bulk: boolean): Lane {
  return bulk ? `${channel}_bulk` : channel
}

/** The channel a lane's jobs go out on. */
export function channelOfLane (lane: Lane): 'push' | 'sms' | 'callback' {
  return lane === 'push_bulk' ? 'push' : lane === 'sms_bulk' ? 'sms' : lane
}

/** Where a notification goes next: an outbox lane now, the retry set later, or nowhere. */
export type JobTarget =
  | { kind: 'outbox', lane: Lane }
  | { kind: 'retry', lane: Lane, dueAt: number }
  | { kind: 'fallback', dueAt: number }
  | { kind: 'none' }

export type IdempotencyClaim =
  | { state: 'claimed', token: string }
  | { state: 'in_flight', retryAfterSeconds: number }
  | { state: 'done', requestHash: string, response: string }

export interface IdempotencyRef {
  shard: number
  /** Caller and key, already hashed: the same key of two callers never meets. */
  key: string
}

export interface AcceptCommand {
  notification: Notification
  events: NotificationEvent[]
  next: JobTarget
  /** How long the record is kept after acceptance, and in any case until KEPT_PAST_DEADLINE_MS past its expires_at. */
  retentionSeconds: number
  idempotency?: IdempotencyRef & { token: string, requestHash: string, response: string, ttlSeconds: number }
  /**
   * Accept only while the number's cache entry is still this version (the one the routing decision used).
   * Never with `idempotency`; the notification must be in the number's shard (shardFor(phoneNumber)).
   */
  basedOn?: { phoneNumber: string, version: string }
}

/** Fields a transition may change; undefined leaves a field as it is. */
export type NotificationPatch = Partial<Pick<Notification,
  'status' | 'channel' | 'reason' | 'attempts' | 'updated_at' | 'expires_at' | 'provider_message_id' | 'reachability'>>

export interface OutboxJob {
  shard: number
  lane: Lane
  /** The stream entry id: what acknowledges it. */
  entryId: string
  notificationId: string
  /** How many times this entry has been handed to a consumer (more than 1: reclaimed after a crash). */
  deliveries: number
}

/**
 * A notification's record is kept at least this long past its delivery deadline (expires_at), whatever its
 * retention: a ttl longer than the retention, a dead letter retried or an on_expiry SMS window moves the deadline,
 * and the record must still be there to be expired, to report its final status and to send its callback.
 */
export const KEPT_PAST_DEADLINE_MS = 86_400_000

/** Until when (epoch ms) an accepted notification's record is kept (see AcceptCommand.retentionSeconds). */
export function recordKeptUntil (nowMs: number, retentionSeconds: number, expiresAt: string): number {
  return Math.max(nowMs + retentionSeconds * 1000, Date.parse(expiresAt) + KEPT_PAST_DEADLINE_MS)
}

/**
 * A patch's texts as every store keeps them: well-formed Unicode, a lone surrogate (half an emoji, from a provider's
 * id or error text) written as U+FFFD. Redis's Lua JSON decoder refuses one, and a transition it refused would leave
 * the notification where it was.
 */
export function wellFormedPatch (patch: NotificationPatch): NotificationPatch {
  let out: NotificationPatch | undefined
  for (const key in patch) {
    const value = patch[key as keyof NotificationPatch]
    if (typeof value !== 'string' || !hasLoneSurrogate(value)) continue
    out ??= { ...patch }
    ;(out as Record<string, unknown>)[key] = wellFormed(value)
  }
  return out ?? patch
}

/** Until when a transition that sets expires_at keeps the record at least (never shortened); undefined: unchanged. */
export function transitionKeptUntil (patch: NotificationPatch): number | undefined {
  return patch.expires_at === undefined ? undefined : Date.parse(patch.expires_at) + KEPT_PAST_DEADLINE_MS
}

export interface Transition {
  notificationId: string
  shard: number
  patch: NotificationPatch
  events: NotificationEvent[]
  /** When set, the transition only applies if the notification's status is one of these. */
  onlyFrom?: readonly string[]
  /**
   * When set, the transition only applies while the notification's `attempts` is this number: a delivery attempt's
   * answer, recorded once more after the store's first answer was lost, or late from a worker whose job was taken
   * over, does not apply once a later attempt has begun. Its job is then not acknowledged either: it is in the hands
   * of the worker making the later attempt (taken over), or was acknowledged already.
   */
  onlyAtAttempt?: number
  /** The job this transition completes (acknowledged in the same step). */
  ack?: OutboxJob
  next?: JobTarget
  /** The fallback lease this transition ends: nothing at all happens when the lease is no longer held. */
  lease?: FallbackLease
  /** Also put the notification on the dead-letter list. */
  dead?: boolean
  /**
   * Applies only while the notification is on the dead-letter list, and takes it off in the same step (a dead letter
   * retried: it never leaves the list without being moved, nor is moved twice).
   */
  fromDead?: boolean
  /** The transition's time (epoch ms), for the queue's bookkeeping. */
  at?: number
  /**
   * The notification's campaign, when it has one. A transition to a status the campaign counts (`sent` or a final
   * one) notes it in the shard's pending campaign counts in the same step (see pendingCampaignCounts); a `fromDead`
   * transition takes the notification's pending counts off (it is in progress again).
   */
  campaignId?: string
}

/**
 * A campaign notification in a status its campaign is to count (see countCampaignFinal), noted beside the
 * notification in the same step as the transition that made it so, and settled once the campaign has counted it.
 */
export interface PendingCampaignCount {
  campaignId: string
  notificationId: string
  status: NotificationStatus
}

/** When the network last told of the device's status, as far as a record says (else when it was checked), as an ISO instant. */
export function statusInstant (record: Reachability): string {
  return record.latest_status_at ?? record.checked_at
}

/**
 * Whether `held` is news checked after `since` (epoch ms) and at least as new as `record`: an answer about an
 * earlier moment does not overwrite it. Times are ISO instants (toISOString), compared as text (as the Redis script does).
 */
export function newerNews (held: Reachability, record: Reachability, since: number): boolean {
  return held.checked_at > new Date(since).toISOString() && statusInstant(held) >= statusInstant(record)
}

/** The count a transition notes (see Transition.campaignId), if any. */
export function notedCampaignCount (t: Transition): PendingCampaignCount | undefined {
  const status = t.patch.status
  if (t.campaignId === undefined || status === undefined || !isFinal(status)) return undefined
  return { campaignId: t.campaignId, notificationId: t.notificationId, status }
}

/** The counts a `fromDead` transition takes off: the notification's, in any status its campaign counts. */
export function droppedCampaignCounts (t: Transition): PendingCampaignCount[] {
  if (t.campaignId === undefined || !t.fromDead) return []
  const campaignId = t.campaignId
  return NOTIFICATION_STATUSES.filter(isFinal).map(status => ({ campaignId, notificationId: t.notificationId, status }))
}

/** A fallback-queue entry a scheduler holds until `until` (epoch ms); past it, the entry is due again. */
export interface FallbackLease {
  shard: number
  notificationId: string
  until: number
}

export interface FallbackState {
  /** Waiting for a later check. */
  waiting: number
  /** Due now, not yet taken. */
  due: number
  /** Being re-checked under a lease. */
  leased: number
  dead: number
  /** When the longest-waiting entry entered the queue (epoch ms). */
  oldestSince: number | null
  nextCheckAt: number | null
}

/** What is known of one number across every lookup: the contact-hygiene and fleet record. */
export interface NumberReport {
  phone_number: string
  first_seen_at: string
  last_checked_at: string
  /** Last time a check found it reachable (for anything), for DATA, for SMS; null when never seen so. */
  last_reachable_at: string | null
  last_data_at: string | null
  last_sms_at: string | null
  is_reachable: boolean
  connectivity: string[]
  latest_status_at: string | null
  status_code: string
}

/** A number in a report's time index: when it went quiet (stale contacts) or was last checked (offline devices). */
export interface ReportEntry {
  phoneNumber: string
  at: number
}

/**
 * A run of consecutive items (a campaign's recipients, a fleet scan's numbers) held by one runner until `until`
 * (epoch ms). Past it, any runner may take the chunk again; only the holder of the latest lease counts it done.
 */
export interface ChunkLease {
  start: number
  count: number
  until: number
}

/** A chunk taken: its lease and its items, in order (the item at `start + i` is `items[i]`). */
export interface ClaimedChunk {
  lease: ChunkLease
  items: string[]
}

export interface RefreshJob {
  id: string
  owner: string
  status: 'running' | 'completed'
  total: number
  done: number
  failed: number
  created_at: string
  completed_at: string | null
}

export type CampaignStatus = 'accepted' | 'running' | 'paused' | 'completed' | 'cancelled'

/** What a campaign sends, and to whom it belongs; its recipients are a list beside it. */
export interface CampaignDoc {
  id: string
  owner: string
  name: string
  message: NotificationMessage
  routing: Routing
  created_at: string
}

/**
 * A campaign and its counters: recipients_total, recipients_accepted, recipients_rejected, processed,
 * recipients_failed, `channel:<channel>` (each notification made, once, as its recipient is counted: see
 * countCampaignRecipients), `status:<final status>` (each notification once, in its latest final status, and only once
 * it is counted as made: see countCampaignFinal), `lookups:cache`, `lookups:upstream` (one per recipient processed),
 * `minute:<epoch minute>` (recipients processed in that minute). `run` is when it last started running (created, or
 * resumed) and how many recipients were processed by then.
 */
export interface CampaignRecord {
  doc: CampaignDoc
  status: CampaignStatus
  counters: Record<string, number>
  completed_at: string | null
  run: { since: string, processed: number } | null
}

/** Why one recipient of a campaign failed; `index` is its place among the accepted recipients (0 = the first). */
export interface CampaignFailure {
  index: number
  to: string
  reason: string
}

/** The notification made for a campaign's recipient: the channel it was routed to, and its status if final at acceptance. */
export interface RecipientNotification {
  id: string
  channel: RoutedChannel
  final?: NotificationStatus
}

/**
 * A recipient a campaign runner handled (see countCampaignRecipients): its place, where the reachability it was routed
 * on came from (none: it failed before its lookup), and the notification made for it or why it failed.
 */
export type HandledRecipient = { index: number, lookup?: 'cache' | 'upstream' } & ({ notification: RecipientNotification } | { failure: CampaignFailure })

/** A campaign in the listing: its id and when it was created (epoch ms). */
export interface ListedCampaign {
  id: string
  createdMs: number
}

/** How many failed recipients a campaign keeps with their reasons (all are counted). */
export const CAMPAIGN_FAILURES_KEPT = 100

export interface DeadLetter {
  notificationId: string
  at: number
}

export interface StoredNotification {
  notification: Notification
  events: NotificationEvent[]
}

export interface Store {
  readonly kind: 'redis' | 'memory'
  readonly shards: number

  getReachability (phoneNumber: string): Promise<CachedReachability | null>
  /**
   * Keeps the entry for keepSeconds (its freshness plus the stale window; nothing is written when it is 0 or less).
   * With `unlessNewerSince` (epoch ms), in the same step: when the number's entry holds news checked after that
   * moment and at least as new as the entry's (by status time: see newerNews), that entry stands and is resolved,
   * and nothing is written. Resolves null otherwise.
   */
  putReachability (entry: CachedReachability, keepSeconds: number, unlessNewerSince?: number): Promise<Reachability | null>

  /** Takes an idempotency key for an in-flight request, or says what already holds it. */
  claimIdempotency (ref: IdempotencyRef, requestHash: string, claimSeconds: number): Promise<IdempotencyClaim>
  /** Frees a claim whose request failed before anything was stored. */
  releaseIdempotency (ref: IdempotencyRef, token: string): Promise<void>
  /** Shortens the time answered idempotency records are kept to at most ttlSeconds from now (a claim in flight is left alone). */
  shortenIdempotency (refs: IdempotencyRef[], ttlSeconds: number): Promise<void>
  /**
   * In one atomic step: the notification, its first events, its first job and the idempotency answer.
   * Resolves false when the idempotency claim was lost (expired and taken by another request), or the cache entry
   * of `basedOn` is no longer that version: nothing is written.
   */
  acceptNotification (command: AcceptCommand): Promise<boolean>
  getNotification (id: string, shard: number): Promise<StoredNotification | null>
  /**
   * Applies a transition atomically; resolves false (and changes nothing but the ack) when onlyFrom did not match.
   * The patch's texts are kept well-formed (wellFormedPatch).
   */
  transition (transition: Transition): Promise<boolean>

  /** New jobs of one shard, at most `count` in all, lanes in the order given (earlier lanes served first). */
  readOutbox (shard: number, lanes: readonly Lane[], consumer: string, count: number): Promise<OutboxJob[]>
  /** Jobs another consumer took more than minIdleMs ago and never acknowledged: now this consumer's. */
  reclaimOutbox (shard: number, lane: Lane, consumer: string, minIdleMs: number, count: number): Promise<OutboxJob[]>
  /**
   * Jobs of one lane this consumer still has in hand: their idle time starts again, so no consumer takes them over
   * (reclaimOutbox) while they are being delivered. A job acknowledged meanwhile or taken over already is left alone.
   */
  keepOutboxJobs (shard: number, lane: Lane, consumer: string, entryIds: string[]): Promise<void>
  /** Moves retries that are due back into their outbox lane; resolves how many moved. */
  releaseDueRetries (shard: number, now: number, count: number): Promise<number>
  /** Jobs waiting per lane (in the outbox, not yet acknowledged) and in the retry set. */
  outboxDepth (shard: number): Promise<Record<Lane | 'retry', number>>

  /** Leases up to `count` due fallback entries until `leaseUntil`. */
  takeDueFallback (shard: number, now: number, leaseUntil: number, count: number): Promise<FallbackLease[]>
  /** Makes entries whose lease ran out (their scheduler died) due again; resolves how many. */
  expireFallbackLeases (shard: number, now: number): Promise<number>
  fallbackState (shard: number, now: number): Promise<FallbackState>
  /** Counts re-checks and wake-ups per minute (epoch minute), kept for two hours. */
  countFallbackActivity (shard: number, minute: number, kind: 'checks' | 'wakeups', n: number): Promise<void>
  fallbackActivity (shard: number, fromMinute: number): Promise<{ checks: number, wakeups: number }>
  /** Dead letters of one shard, oldest first (ties by id), after the one at `after`. */
  listDead (shard: number, after: Position | undefined, limit: number): Promise<DeadLetter[]>
  removeDead (shard: number, notificationId: string): Promise<boolean>
  isDead (shard: number, notificationId: string): Promise<boolean>
  /** Drops dead letters older than `before` (epoch ms). */
  trimDead (shard: number, before: number): Promise<number>

  /**
   * Folds a fresh reachability into the number's report record and the report indexes: a number not
   * reachable is indexed by its latest status time (stale contacts) and by its check time (offline
   * devices); a reachable one (DATA or SMS connectivity, as the caller decides it) leaves both. Answers that say
   * nothing of the device (`reachable` null) change only the record.
   * With `unlessLater` (news that came by other means than a lookup: an operator's event, which may come late), a
   * record that tells of an earlier moment than the report already knows (its status instant before the report's:
   * see statusInstant) changes nothing, checked in the same step as the record's write. Resolves whether it was
   * folded in.
   */
  recordReport (record: Reachability, reachable: boolean | null, unlessLater?: boolean): Promise<boolean>
  getReports (phoneNumbers: string[]): Promise<(NumberReport | null)[]>
  /** One report shard's entries of an index, by time (ties by number), between `min` and `max` (epoch ms), after the one at `after`. */
  reportIndex (index: 'stale' | 'offline', shard: number, min: number, max: number, after: Position | undefined, limit: number): Promise<ReportEntry[]>

  /** A token bucket shared by every process: takes a token, or resolves how long to wait (ms) before asking again. */
  takeToken (bucket: string, ratePerSecond: number, burst: number): Promise<number>

  createRefreshJob (job: RefreshJob, phoneNumbers: string[], retentionSeconds: number): Promise<void>
  getRefreshJob (id: string): Promise<RefreshJob | null>
  activeRefreshJobs (): Promise<string[]>
  /**
   * Leases a chunk of a running job's numbers until `leaseUntil`: one whose lease ran out by `now` (its runner
   * died) first, else the next `count` numbers; null when there is nothing to take.
   */
  claimRefreshNumbers (id: string, count: number, now: number, leaseUntil: number): Promise<ClaimedChunk | null>
  /** Extends a lease still held; resolves false when it was lost. */
  renewRefreshChunk (id: string, lease: ChunkLease, until: number): Promise<boolean>
  /** Ends a chunk still held and counts its numbers in the same step; resolves false (nothing counted) when the lease was lost. */
  finishRefreshChunk (id: string, lease: ChunkLease, done: number, failed: number): Promise<boolean>
  /** Marks the job completed once every chunk is finished and every number counted; resolves whether it is. */
  completeRefreshJob (id: string, at: string): Promise<boolean>

  /** Stores a new campaign (status accepted, no recipients yet) and lists it by creation time. */
  createCampaign (doc: CampaignDoc, retentionSeconds: number): Promise<void>
  /**
   * Appends recipients (their JSON payloads) in order; a number already in the campaign is not appended.
   * Resolves, per recipient, whether it was appended (false: a duplicate).
   */
  appendCampaignRecipients (id: string, recipients: { to: string, payload: string }[]): Promise<boolean[]>
  /**
   * Leases a chunk of a running campaign's recipients (their payloads) until `leaseUntil`: one whose lease ran
   * out by `now` (its runner died) first, else the next `count`; null when there is nothing to take or the
   * campaign is not running.
   */
  claimCampaignRecipients (id: string, count: number, now: number, leaseUntil: number): Promise<ClaimedChunk | null>
  /** Extends a lease still held; resolves false when it was lost. */
  renewCampaignChunk (id: string, lease: ChunkLease, until: number): Promise<boolean>
  /**
   * Counts recipients of a chunk this runner holds (its lease as given), each recipient once whoever tells it and
   * however often (one counted already, by this holder or by one before it, is passed over): `processed`,
   * `minute:<minute of at>`, its lookup, and either its notification (`channel:<channel>`, the notification counted as
   * made: a final status told before then is counted now, see countCampaignFinal; and its status if final at
   * acceptance) or its failure (`recipients_failed`, and kept: the lowest CAMPAIGN_FAILURES_KEPT indexes of the
   * campaign whatever order they come in, expiring with it). With `finish`, the lease ends in the same step. Resolves
   * how many recipients were counted now, or null (nothing counted) when the lease is not held as given: lost, or
   * renewed since.
   */
  countCampaignRecipients (id: string, lease: ChunkLease, handled: HandledRecipient[], options: { at: number, finish?: boolean }): Promise<number | null>
  /** Adds to the campaign's counters (not its `status:` counters: see countCampaignFinal). */
  countCampaign (id: string, counts: Record<string, number>): Promise<void>
  /**
   * Counts a campaign notification once, in its latest final status, whatever order and however often it is told:
   * the first status counted adds to `status:<status>`; a notification counted as `sent` moves to a later final
   * (`delivered` or `failed` from a delivery receipt); anything else (the same status again, `sent` after a later
   * final, a second later final) changes nothing. A notification not yet counted as made (its recipient not yet
   * counted: see countCampaignRecipients) keeps the status told, by the same rules, and adds it to `status:` when it is
   * counted as made: no status count ever holds a notification that `channel:` counts do not. Resolves whether the
   * status it is counted in changed. The status each notification is counted in is kept beside the campaign and
   * expires with it; a campaign gone counts nothing.
   */
  countCampaignFinal (id: string, notificationId: string, status: NotificationStatus): Promise<boolean>
  /**
   * A campaign notification is in progress again (a dead letter retried by hand): it leaves the final status it
   * was counted in, and is counted anew when it ends. Only while it is counted in `status`, the one it was read in: a
   * retry that lost its race to another must not take off the count of what the notification became since. Resolves
   * whether it was counted so (a repeat changes nothing).
   */
  reopenCampaignFinal (id: string, notificationId: string, status: NotificationStatus): Promise<boolean>
  /**
   * Notes a count for the campaign to make (as a transition with `campaignId` does), at `at` (epoch ms): for a
   * count that is not made by a transition (a dead letter's count reopened, made again if its retry fails).
   */
  notePendingCampaignCount (shard: number, count: PendingCampaignCount, at: number): Promise<void>
  /** The shard's pending campaign counts noted before `notedBefore` (epoch ms), oldest first. */
  pendingCampaignCounts (shard: number, notedBefore: number, limit: number): Promise<PendingCampaignCount[]>
  /** How many campaign counts the shard has pending. */
  pendingCampaignCountDepth (shard: number): Promise<number>
  /** Takes a pending count off once the campaign has counted it (or has no use for it). */
  settlePendingCampaignCount (shard: number, count: PendingCampaignCount): Promise<void>
  /** The failed recipients kept, by index. */
  campaignFailures (id: string): Promise<CampaignFailure[]>
  /**
   * Moves the campaign to `to` if its status is one of `from`; resolves whether it did and the status it now has (null:
   * no such campaign). Moved to `running`, its `run` starts at `at`.
   */
  setCampaignStatus (id: string, to: CampaignStatus, from: readonly CampaignStatus[], at: string): Promise<{ changed: boolean, status: CampaignStatus | null }>
  /** Completes a running campaign once every chunk is finished and every accepted recipient processed; resolves whether it is completed. */
  completeCampaign (id: string, at: string): Promise<boolean>
  /**
   * A cancelled campaign's recipients, numbers and record of those counted go once no chunk lease is live at `now` (ms);
   * resolves whether they did (false: not cancelled, or a chunk still in hand). Its record, counts and failures stay.
   */
  releaseCancelledCampaign (id: string, now: number): Promise<boolean>
  getCampaign (id: string): Promise<CampaignRecord | null>
  /**
   * Campaigns by creation time (ms), ties by id, after `after` (score: created ms, member: id): a position, not an
   * offset, so campaigns that leave the head of the list (past their retention) never shift the next page.
   */
  listCampaigns (after: Position | undefined, limit: number): Promise<ListedCampaign[]>
  /** The campaigns the runners look at. */
  activeCampaigns (): Promise<string[]>
  setCampaignActive (id: string, active: boolean): Promise<void>
  /** Stores the answer under a claimed idempotency key; resolves false when the claim was lost. */
  finishIdempotency (ref: IdempotencyRef, token: string, requestHash: string, response: string, ttlSeconds: number): Promise<boolean>

  /**
   * Makes due now the given fallback entries that are waiting (an event says their device is back). One under a lease
   * is marked instead: the transition that ends its lease puts it back due now if it stays in the fallback queue (its
   * re-check may have read reachability before the event). Resolves how many were woken or marked.
   */
  wakeFallback (shard: number, notificationIds: string[], now: number): Promise<number>

  /** Notes that a notification waits for this number's device, until `untilMs` at the latest. */
  watchNumber (phoneNumber: string, notificationId: string, untilMs: number): Promise<void>
  /** Resolves how many notifications still wait for the number. */
  unwatchNumber (phoneNumber: string, notificationId: string): Promise<number>
  watchers (phoneNumber: string): Promise<string[]>
  /** When the last notification waiting for the number stops waiting, at the latest (epoch ms); null: none waits. */
  watchedUntil (phoneNumber: string): Promise<number | null>
  /** The number's reachability subscriptions at the operator: event type → subscription id. */
  getSubscriptions (phoneNumber: string): Promise<Record<string, string>>
  /**
   * Takes the right to make the number's subscription of this type, to last until `untilMs`: resolves a claim token;
   * null when the type's subscription lasts that long already, or one that will is being made.
   */
  claimSubscription (phoneNumber: string, type: string, untilMs: number): Promise<string | null>
  /** Gives up a claim (the subscription could not be made); the type's stored subscription, if any, stays. */
  releaseSubscriptionClaim (phoneNumber: string, type: string, claim: string): Promise<void>
  /**
   * Stores the subscription made under the claim, in place of the type's earlier one (`replaced`: to end at the
   * operator; null when it is this very id, as an operator refusing duplicates answers), and notes its number under
   * its id until `untilMs`. `stored` false: the claim is gone (the number's subscriptions were dropped, or a
   * longer-lasting claim took over) and nothing changed: end the new one, unless it is one stored for the number.
   */
  setSubscription (phoneNumber: string, type: string, claim: string, subscriptionId: string, untilMs: number): Promise<{ stored: boolean, replaced: string | null }>
  /** Forgets the number's subscriptions (all, claims too; or the one with this id); resolves those forgotten. */
  dropSubscriptions (phoneNumber: string, subscriptionId?: string): Promise<Record<string, string>>
  /** The number a stored subscription is for; null: not one of ours, or ended. */
  subscriptionNumber (subscriptionId: string): Promise<string | null>
  /**
   * Keeps an event of a subscription id not stored (yet) for ttlSeconds, at most `most` per id: the operator's
   * initial event may come before its answer to the create. Resolves false, keeping nothing, once the id is stored.
   */
  parkSubscriptionEvent (subscriptionId: string, event: string, ttlSeconds: number, most: number): Promise<boolean>
  /** Takes the events parked for a subscription id, oldest first. */
  takeSubscriptionEvents (subscriptionId: string): Promise<string[]>
  /** True when an event with this key was marked seen within the last ttlSeconds given. */
  eventSeen (eventKey: string): Promise<boolean>
  /** Marks an event applied, for ttlSeconds: repeats are ignored. */
  markEventSeen (eventKey: string, ttlSeconds: number): Promise<void>

  /** Resolves when the store answers; throws StoreUnavailableError when it does not. */
  ping (): Promise<void>
  close (): Promise<void>
}
