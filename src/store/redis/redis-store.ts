import { createHash, randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { Cluster, type ClusterOptions, Redis, type RedisOptions, ReplyError, type Result } from 'ioredis'
import { OutcomeUnknownError, StoreUnavailableError } from '../../domain/errors.js'
import type { Position } from '../../domain/paging.js'
import { numberShard, shardOfId } from '../../notifications/ids.js'
import type { Reachability } from '../../domain/reachability.js'
import type { NotificationEvent, NotificationStatus } from '../../notifications/types.js'
import {
  type AcceptCommand, type CachedReachability, type IdempotencyClaim, type IdempotencyRef, type JobTarget,
  type ChunkLease, type ClaimedChunk, type CampaignDoc, type CampaignRecord, type CampaignStatus, type DeadLetter, type FallbackLease, type NumberReport, type RefreshJob, type ReportEntry, type FallbackState, type Lane, LANES, type OutboxJob, type Store,
  type StoredNotification, type Transition, CAMPAIGN_FAILURES_KEPT, type CampaignFailure, type HandledRecipient, type ListedCampaign, type PendingCampaignCount, notedCampaignCount, droppedCampaignCounts, statusInstant, recordKeptUntil, transitionKeptUntil, wellFormedPatch,
} from '../store.js'
import { acceptDocument, decodePendingCount, encodeEvents, encodePendingCount, fieldsToNotification, patchToFields } from './codec.js'
import { RedisKeys } from './keys.js'
import {
  ACCEPT, ACCEPT_TO_OUTBOX, APPEND_RECIPIENTS, CLAIM, CLAIM_CHUNK, COMPLETE_CAMPAIGN, RELEASE_CANCELLED_CAMPAIGN, COUNT_CAMPAIGN_FINAL, COMPLETE_REFRESH, EXPIRE_LEASES, FINISH_CHUNK, FINISH_IDEMPOTENCY, KEEP_JOBS, RANGE_AFTER, READ_OUTBOX,
  COUNT_CAMPAIGN_RECIPIENTS, RELEASE, REOPEN_CAMPAIGN_FINAL, RELEASE_DUE, RENEW_CHUNK, SET_CAMPAIGN_STATUS, PUT_REACHABILITY, RECORD_REPORT, SETTLE_ACCEPT, SHORTEN_ANSWERED, TAKE_DUE, TAKE_TOKEN, TRANSITION, WAKE_FALLBACK,
  CLAIM_SUBSCRIPTION, DROP_SUBSCRIPTIONS, PARK_SUBSCRIPTION_EVENT, RELEASE_SUBSCRIPTION_CLAIM, SET_SUBSCRIPTION, TAKE_SUBSCRIPTION_EVENTS,
} from './lua/scripts.js'

declare module 'ioredis' {
  interface RedisCommander<Context> {
    rrAccept (...args: (string | number)[]): Result<number, Context>
    rrAcceptToOutbox (notification: string, stream: string, cache: string, keptUntil: number, id: string, doc: string, status: string, cacheValue: string): Result<number, Context>
    rrTransition (...args: (string | number)[]): Result<number, Context>
    rrPutReachability (...args: (string | number)[]): Result<string | null, Context>
    rrRecordReport (...args: (string | number)[]): Result<number, Context>
    rrSettleAccept (notification: string, tombstoneMs: number): Result<number, Context>
    /** rrReadOutbox1 to rrReadOutbox5 (one per number of lanes read): lane streams, then group, consumer, count. */
    rrReadOutbox1 (...args: (string | number)[]): Result<(string | number)[], Context>
    rrKeepJobs (stream: string, group: string, consumer: string, ...entryIds: string[]): Result<number, Context>
    rrRangeAfter (key: string, min: string, max: string, afterScore: string, afterMember: string, limit: number): Result<string[], Context>
    rrClaim (key: string, token: string, hash: string, ms: number): Result<[string, ...(string | number)[]], Context>
    rrRelease (key: string, token: string): Result<number, Context>
    rrShortenAnswered (key: string, seconds: number): Result<number, Context>
    rrReleaseDue (...args: (string | number)[]): Result<number, Context>
    rrTakeDue (queue: string, leased: string, woken: string, now: number, until: number, count: number): Result<string[], Context>
    rrExpireLeases (queue: string, leased: string, woken: string, now: number): Result<number, Context>
    rrWakeFallback (queue: string, leased: string, woken: string, now: number, ...ids: string[]): Result<number, Context>
    rrTakeToken (bucket: string, rate: number, burst: number): Result<number, Context>
    rrCompleteRefresh (job: string, list: string, leases: string, at: string): Result<number, Context>
    rrAppendRecipients (campaign: string, list: string, numbers: string, ...pairs: string[]): Result<number[], Context>
    rrCountCampaignRecipients (campaign: string, leases: string, failures: string, counted: string, handled: string, chunk: string, until: number,
      finish: number, kept: number, minute: number, ...recipients: (string | number)[]): Result<number, Context>
    rrCountCampaignFinal (campaign: string, counted: string, notificationId: string, status: string): Result<number, Context>
    rrReopenCampaignFinal (campaign: string, counted: string, notificationId: string, status: string): Result<number, Context>
    rrClaimChunk (hash: string, list: string, leases: string, now: number, until: number, count: number): Result<(number | string)[], Context>
    rrRenewChunk (leases: string, chunk: string, until: number, newUntil: number): Result<number, Context>
    rrFinishChunk (hash: string, leases: string, chunk: string, until: number, ...counts: (string | number)[]): Result<number, Context>
    rrSetCampaignStatus (campaign: string, to: string, at: string, ...from: string[]): Result<[number, string], Context>
    rrCompleteCampaign (campaign: string, list: string, leases: string, numbers: string, handled: string, at: string): Result<number, Context>
    rrReleaseCancelledCampaign (campaign: string, list: string, leases: string, numbers: string, handled: string, now: number): Result<number, Context>
    rrFinishIdempotency (key: string, token: string, hash: string, response: string, ttl: number): Result<number, Context>
    rrClaimSubscription (subs: string, type: string, until: number, token: string): Result<number, Context>
    rrReleaseSubscriptionClaim (subs: string, type: string, token: string): Result<number, Context>
    rrSetSubscription (subs: string, type: string, token: string, id: string, until: number): Result<[number, string], Context>
    rrDropSubscriptions (subs: string, id: string): Result<string[], Context>
    rrParkSubscriptionEvent (number: string, early: string, event: string, seconds: number, most: number): Result<number, Context>
    rrTakeSubscriptionEvents (early: string): Result<string[], Context>
  }
}

export interface RedisStoreOptions {
  /** One Redis; or, with clusterNodes instead, Redis Cluster. */
  url?: string
  clusterNodes?: { host: string, port: number }[]
  keyPrefix: string
  commandTimeoutMs: number
  shards: number
}

const GROUP = 'delivery'

/** Reconnects for ever, at most a second apart: the service comes back by itself when Redis does. */
const reconnectDelay = (attempt: number) => Math.min(attempt * 100, 1000)

export function redisClientOptions (commandTimeoutMs: number): RedisOptions {
  return {
    lazyConnect: true,
    enableAutoPipelining: true,
    // Fail fast while Redis is away: the caller gets a 503, never a hanging request.
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    commandTimeout: commandTimeoutMs,
    connectTimeout: 5000,
    retryStrategy: reconnectDelay,
    // A command whose connection dropped fails (a 503) instead of being sent again after the reconnect:
    // a script that did run would run twice.
    autoResendUnfulfilledCommands: false,
  }
}

/** The same fail-fast behaviour on Redis Cluster; writes and reads go to the masters only (no stale reads). */
export function redisClusterOptions (commandTimeoutMs: number): ClusterOptions {
  // The cluster reconnects and queues by itself: its nodes must not have options of their own for that.
  const { lazyConnect, enableAutoPipelining, retryStrategy: _retry, enableOfflineQueue: _queue, ...node } = redisClientOptions(commandTimeoutMs)
  return {
    lazyConnect,
    enableAutoPipelining,
    scaleReads: 'master',
    // Queued only while the first connection is made; connect() turns it off (see RedisStore.connect).
    enableOfflineQueue: true,
    clusterRetryStrategy: reconnectDelay,
    // A cluster that is down (CLUSTERDOWN) is tried again briefly, never for long: each try of a command is one
    // redirection, so it fails after about 4 x 50 ms. A failover takes the cluster's node timeout (seconds) anyway:
    // until it is done, a fast 503 serves callers better. A command whose node connection closed is not sent again
    // (retryDelayOnFailover 0): it may have run, and a script that ran must not run a second time.
    retryDelayOnFailover: 0,
    retryDelayOnClusterDown: 50,
    maxRedirections: 4,
    slotsRefreshTimeout: Math.max(1000, commandTimeoutMs),
    redisOptions: node,
  }
}

/**
 * Runs Redis calls, turning connection and timeout failures into StoreUnavailableError, and gives up on a
 * call after deadlineMs: with auto-pipelining a command waits for the pipeline before it, so on a Redis that
 * hangs the client's own command timeout would add up (one wait per pipeline in front). One sweeper checks
 * every call in flight, not a timer each: this is on every request's path.
 */
class Deadlines {
  private readonly pending = new Set<{ due: number, fail: () => void }>()
  private sweeper: NodeJS.Timeout | undefined
  /** Calls are checked this often: one may run up to a quarter of the deadline past it. */
  private readonly everyMs: number

  constructor (private readonly deadlineMs: number) {
    this.everyMs = Math.max(5, Math.min(250, Math.floor(deadlineMs / 4)))
  }

  guard<T> (work: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const call = {
        due: Date.now() + this.deadlineMs,
        fail: () => reject(new StoreUnavailableError(`the store did not answer: no answer within ${this.deadlineMs} ms`)),
      }
      this.pending.add(call)
      this.sweeper ??= setInterval(() => this.sweep(), this.everyMs).unref()
      work.then(value => {
        this.pending.delete(call)
        resolve(value)
      }, (err: unknown) => {
        this.pending.delete(call)
        reject(err instanceof StoreUnavailableError ? err : new StoreUnavailableError(`the store did not answer: ${(err as Error).message}`, { cause: err }))
      })
    })
  }

  private sweep (): void {
    const now = Date.now()
    for (const call of this.pending) {
      if (call.due > now) continue
      this.pending.delete(call)
      call.fail()
    }
    if (this.pending.size === 0) {
      clearInterval(this.sweeper)
      this.sweeper = undefined
    }
  }
}


/** How often an accept whose answer was lost asks whether it ran (see settleAccept). */
const SETTLE_POLL_MS = 100
/** How long the id of an accept settled as not stored stays refused: past any resend of it still on its way. */
const TOMBSTONE_MS = 10 * 60_000

/**
 * Whether a failed call may still have run in Redis: not when Redis answered with an error, nor when the
 * command never left (no connection, and no offline queue to wait in).
 */
/**
 * ioredis's words for a command it refused before writing it. (Not MaxRetriesPerRequestError: with no offline
 * queue, ioredis raises it for the commands written to a connection that dropped, which may have run.)
 */
const NEVER_SENT = ["Stream isn't writeable", "Cluster isn't ready", 'None of startup nodes', 'Cluster is disconnect', 'Node is disconnected']

function mayHaveRun (err: unknown): boolean {
  const cause = err instanceof StoreUnavailableError && err.cause !== undefined ? err.cause : err
  if (cause instanceof ReplyError) return false
  const message = cause instanceof Error ? cause.message : ''
  return !NEVER_SENT.some(text => message.includes(text))
}

export class RedisStore implements Store {
  readonly kind = 'redis' as const
  readonly keys: RedisKeys

  private readonly deadlines: Deadlines
  /** How long an accept whose answer was lost waits for the store to say whether it ran: the command timeout. */
  private readonly settleMs: number
  private closing = false

  private constructor (readonly redis: Redis | Cluster, keyPrefix: string, readonly shards: number, deadlineMs: number) {
    this.keys = new RedisKeys(keyPrefix, shards)
    this.deadlines = new Deadlines(deadlineMs)
    this.settleMs = deadlineMs
  }

  /** Every call of this store ends within its command timeout (and a quarter), answered or not. */
  private guard<T> (work: Promise<T>): Promise<T> {
    return this.deadlines.guard(work)
  }

  static async connect (options: RedisStoreOptions): Promise<RedisStore> {
    const redis = options.clusterNodes
      ? new Cluster(options.clusterNodes, redisClusterOptions(options.commandTimeoutMs))
      : new Redis(options.url ?? 'redis://127.0.0.1:6379', redisClientOptions(options.commandTimeoutMs))
    // Without a listener ioredis prints every reconnect failure as an unhandled error. The last one says why a
    // first connection failed (ECONNREFUSED, a DNS name unknown), where connect() only says it closed.
    let lastError: Error | undefined
    redis.on('error', (err: Error) => { lastError = err })
    redis.on('node error', (err: Error) => { lastError = err })
    redis.defineCommand('rrAccept', { numberOfKeys: 8, lua: ACCEPT })
    redis.defineCommand('rrAcceptToOutbox', { numberOfKeys: 3, lua: ACCEPT_TO_OUTBOX })
    redis.defineCommand('rrTransition', { numberOfKeys: 9, lua: TRANSITION })
    redis.defineCommand('rrSettleAccept', { numberOfKeys: 1, lua: SETTLE_ACCEPT })
    redis.defineCommand('rrPutReachability', { numberOfKeys: 1, lua: PUT_REACHABILITY })
    redis.defineCommand('rrRecordReport', { numberOfKeys: 1, lua: RECORD_REPORT })
    redis.defineCommand('rrKeepJobs', { numberOfKeys: 1, lua: KEEP_JOBS })
    redis.defineCommand('rrRangeAfter', { numberOfKeys: 1, lua: RANGE_AFTER })
    // One command per number of lanes: a fixed key count lets ioredis find the keys (Cluster routing, auto-pipelining).
    for (let lanes = 1; lanes <= LANES.length; lanes++) redis.defineCommand(`rrReadOutbox${lanes}`, { numberOfKeys: lanes, lua: READ_OUTBOX })
    redis.defineCommand('rrTakeDue', { numberOfKeys: 3, lua: TAKE_DUE })
    redis.defineCommand('rrExpireLeases', { numberOfKeys: 3, lua: EXPIRE_LEASES })
    redis.defineCommand('rrWakeFallback', { numberOfKeys: 3, lua: WAKE_FALLBACK })
    redis.defineCommand('rrTakeToken', { numberOfKeys: 1, lua: TAKE_TOKEN })
    redis.defineCommand('rrCompleteRefresh', { numberOfKeys: 3, lua: COMPLETE_REFRESH })
    redis.defineCommand('rrClaim', { numberOfKeys: 1, lua: CLAIM })
    redis.defineCommand('rrAppendRecipients', { numberOfKeys: 3, lua: APPEND_RECIPIENTS })
    redis.defineCommand('rrCountCampaignRecipients', { numberOfKeys: 5, lua: COUNT_CAMPAIGN_RECIPIENTS })
    redis.defineCommand('rrCountCampaignFinal', { numberOfKeys: 2, lua: COUNT_CAMPAIGN_FINAL })
    redis.defineCommand('rrReopenCampaignFinal', { numberOfKeys: 2, lua: REOPEN_CAMPAIGN_FINAL })
    redis.defineCommand('rrClaimChunk', { numberOfKeys: 3, lua: CLAIM_CHUNK })
    redis.defineCommand('rrRenewChunk', { numberOfKeys: 1, lua: RENEW_CHUNK })
    redis.defineCommand('rrFinishChunk', { numberOfKeys: 2, lua: FINISH_CHUNK })
    redis.defineCommand('rrSetCampaignStatus', { numberOfKeys: 1, lua: SET_CAMPAIGN_STATUS })
    redis.defineCommand('rrCompleteCampaign', { numberOfKeys: 5, lua: COMPLETE_CAMPAIGN })
    redis.defineCommand('rrReleaseCancelledCampaign', { numberOfKeys: 5, lua: RELEASE_CANCELLED_CAMPAIGN })
    redis.defineCommand('rrFinishIdempotency', { numberOfKeys: 1, lua: FINISH_IDEMPOTENCY })
    redis.defineCommand('rrClaimSubscription', { numberOfKeys: 1, lua: CLAIM_SUBSCRIPTION })
    redis.defineCommand('rrReleaseSubscriptionClaim', { numberOfKeys: 1, lua: RELEASE_SUBSCRIPTION_CLAIM })
    redis.defineCommand('rrSetSubscription', { numberOfKeys: 1, lua: SET_SUBSCRIPTION })
    redis.defineCommand('rrDropSubscriptions', { numberOfKeys: 1, lua: DROP_SUBSCRIPTIONS })
    redis.defineCommand('rrParkSubscriptionEvent', { numberOfKeys: 2, lua: PARK_SUBSCRIPTION_EVENT })
    redis.defineCommand('rrTakeSubscriptionEvents', { numberOfKeys: 1, lua: TAKE_SUBSCRIPTION_EVENTS })
    redis.defineCommand('rrRelease', { numberOfKeys: 1, lua: RELEASE })
    redis.defineCommand('rrShortenAnswered', { numberOfKeys: 1, lua: SHORTEN_ANSWERED })
    redis.defineCommand('rrReleaseDue', { numberOfKeys: 1 + LANES.length, lua: RELEASE_DUE })
    try {
      await redis.connect()
      // From now on a command while the cluster is away fails at once (a 503) instead of waiting in a queue.
      if (redis instanceof Cluster) redis.options.enableOfflineQueue = false
      const store = new RedisStore(redis, options.keyPrefix, options.shards, options.commandTimeoutMs)
      await store.ensureGroups()
      return store
    } catch (err) {
      // Not left reconnecting in the background: whoever asked gives up (a process that cannot start exits).
      redis.disconnect()
      const why = lastError && lastError.message !== (err as Error).message ? `${(err as Error).message} (${lastError.message})` : (err as Error).message
      throw new StoreUnavailableError(`${whereRedis(options)} did not answer: ${why}`, { cause: err })
    }
  }

  /** Creates every outbox stream's consumer group (from the start of the stream, so nothing added before is missed). */
  private async ensureGroups (): Promise<void> {
    const creations: Promise<unknown>[] = []
    for (let shard = 0; shard < this.shards; shard++) {
      for (const lane of LANES) {
        creations.push(this.redis.xgroup('CREATE', this.keys.outbox(shard, lane), GROUP, '0', 'MKSTREAM').catch((err: Error) => {
          if (!err.message.includes('BUSYGROUP')) throw err
        }))
      }
    }
    await this.guard(Promise.all(creations))
  }

  async getReachability (phoneNumber: string): Promise<CachedReachability | null> {
    const raw = await this.guard(this.redis.get(this.keys.reachability(phoneNumber)))
    if (raw === null) return null
    // The version is the SHA-1 of the stored text: the accept script hashes the entry as it stands and compares.
    return { ...JSON.parse(raw) as CachedReachability, version: createHash('sha1').update(raw).digest('hex') }
  }

  async putReachability (entry: CachedReachability, keepSeconds: number, unlessNewerSince?: number): Promise<Reachability | null> {
    const { record, freshUntil } = entry
    const key = this.keys.reachability(record.phone_number)
    const text = JSON.stringify({ record, freshUntil })
    if (unlessNewerSince === undefined) {
      if (keepSeconds > 0) await this.guard(this.redis.set(key, text, 'EX', keepSeconds))
      return null
    }
    const held = await this.guard(this.redis.rrPutReachability(key, text, Math.ceil(keepSeconds), new Date(unlessNewerSince).toISOString(), statusInstant(record)))
    return held === null ? null : (JSON.parse(held) as CachedReachability).record
  }

  async claimIdempotency (ref: IdempotencyRef, requestHash: string, claimSeconds: number): Promise<IdempotencyClaim> {
    const token = randomUUID()
    const reply = await this.guard(this.redis.rrClaim(this.keys.idempotency(ref.shard, ref.key), token, requestHash, claimSeconds * 1000))
    if (reply[0] === 'claimed') return { state: 'claimed', token }
    if (reply[0] === 'in_flight') return { state: 'in_flight', retryAfterSeconds: Math.max(1, Math.ceil(Number(reply[1]) / 1000)) }
    return { state: 'done', requestHash: String(reply[1]), response: String(reply[2]) }
  }

  async releaseIdempotency (ref: IdempotencyRef, token: string): Promise<void> {
    await this.guard(this.redis.rrRelease(this.keys.idempotency(ref.shard, ref.key), token))
  }

  async shortenIdempotency (refs: IdempotencyRef[], ttlSeconds: number): Promise<void> {
    // One small script a record (auto-pipelined): the records of a chunk are spread over every shard.
    await this.guard(Promise.all(refs.map(ref => this.redis.rrShortenAnswered(this.keys.idempotency(ref.shard, ref.key), ttlSeconds))))
  }

  async acceptNotification (command: AcceptCommand): Promise<boolean> {
    const { notification: n } = command
    const shard = shardOfId(n.id, this.shards)!
    const record = this.keys.notification(shard, n.id)
    try {
      return await this.runAccept(command, shard, record)
    } catch (err) {
      if (!mayHaveRun(err)) throw err
      return await this.settleAccept(n.id, record, err as StoreUnavailableError)
    }
  }

  private async runAccept (command: AcceptCommand, shard: number, record: string): Promise<boolean> {
    const { notification: n, idempotency: idem, basedOn } = command
    // Without a check the third key is the notification's own: every key stays in the shard's slot.
    const cacheKey = basedOn ? this.keys.reachability(basedOn.phoneNumber) : record
    const keptUntil = recordKeptUntil(Date.now(), command.retentionSeconds, n.expires_at)
    if (command.next.kind === 'outbox' && !idem) {
      return await this.guard(this.redis.rrAcceptToOutbox(record, this.keys.outbox(shard, command.next.lane),
        cacheKey, keptUntil, n.id, acceptDocument(n, command.events), n.status, basedOn?.version ?? '')) === 1
    }
    const next = this.nextArgs(shard, n.id, command.next)
    const result = await this.guard(this.redis.rrAccept(
      record, this.keys.events(shard, n.id), next.key,
      idem ? this.keys.idempotency(idem.shard, idem.key) : record,
      ...this.queueKeys(shard), cacheKey,
      keptUntil, next.kind, next.score, next.member,
      idem?.token ?? '', idem?.ttlSeconds ?? 0, idem?.requestHash ?? '', idem?.response ?? '',
      n.id, Date.parse(n.created_at), '0',
      acceptDocument(n, command.events), n.status, basedOn?.version ?? '',
    ))
    return result === 1
  }

  /**
   * An accept whose answer was lost (the connection dropped, or no answer in time) may have run: its caller
   * must not be told "not stored" for a notification that will be delivered. The store is asked whether the
   * record exists (SETTLE_ACCEPT); on one connection Redis runs commands in order, so the question is answered
   * after the accept ran. When it did not, the id is left a tombstone the accept scripts refuse, should the accept
   * still come some other way (a resend, a late connection). Asked until the store answers, for at most the
   * command timeout: then the caller is told the outcome is not known (OutcomeUnknownError).
   */
  private async settleAccept (id: string, recordKey: string, lost: StoreUnavailableError): Promise<boolean> {
    const giveUpAt = Date.now() + this.settleMs
    for (;;) {
      const exists = await this.guard(this.redis.rrSettleAccept(recordKey, TOMBSTONE_MS)).catch(() => undefined)
      if (exists === 1) return true
      if (exists === 0) throw new StoreUnavailableError(`${lost.message}; the notification was not stored`, { cause: lost })
      if (Date.now() >= giveUpAt || this.closing) throw new OutcomeUnknownError(id, lost)
      await sleep(SETTLE_POLL_MS)
    }
  }

  async getNotification (id: string, shard: number): Promise<StoredNotification | null> {
    const [hash, events] = await this.guard(Promise.all([
      this.redis.hgetall(this.keys.notification(shard, id)),
      this.redis.lrange(this.keys.events(shard, id), 0, -1),
    ]))
    const read = fieldsToNotification(hash)
    if (!read) return null
    return { notification: read.notification, events: [...read.events0, ...events.map(e => JSON.parse(e) as NotificationEvent)] }
  }

  async transition (t: Transition): Promise<boolean> {
    const { shard, notificationId: id } = t
    const next = this.nextArgs(shard, id, t.next ?? { kind: 'none' })
    const fields = patchToFields(wellFormedPatch(t.patch))
    const noted = notedCampaignCount(t)
    const result = await this.guard(this.redis.rrTransition(
      this.keys.notification(shard, id), this.keys.events(shard, id), next.key,
      t.ack ? this.keys.outbox(shard, t.ack.lane) : this.keys.notification(shard, id),
      ...this.queueKeys(shard), this.keys.pendingCounts(shard), this.keys.fallbackWoken(shard),
      t.ack?.entryId ?? '', GROUP, (t.onlyFrom ?? []).join(','), next.kind, next.score, next.member,
      id, t.at ?? Date.now(), t.dead ? '1' : t.fromDead ? '-1' : '0', t.lease ? String(t.lease.until) : '',
      fields, encodeEvents(t.events), transitionKeptUntil(t.patch) ?? '',
      noted ? encodePendingCount(noted) : '', t.onlyAtAttempt ?? '', ...droppedCampaignCounts(t).map(encodePendingCount),
    ))
    return result === 1
  }

  private queueKeys (shard: number): [string, string, string] {
    return [this.keys.fallbackSince(shard), this.keys.fallbackLeased(shard), this.keys.dead(shard)]
  }

  private nextArgs (shard: number, id: string, next: JobTarget): { key: string, kind: string, score: number, member: string } {
    switch (next.kind) {
      case 'outbox': return { key: this.keys.outbox(shard, next.lane), kind: 'outbox', score: 0, member: id }
      case 'retry': return { key: this.keys.retry(shard), kind: 'retry', score: next.dueAt, member: `${next.lane}|${id}` }
      case 'fallback': return { key: this.keys.fallback(shard), kind: 'fallback', score: next.dueAt, member: id }
      case 'none': return { key: this.keys.notification(shard, id), kind: 'none', score: 0, member: '' }
    }
  }

  async readOutbox (shard: number, lanes: readonly Lane[], consumer: string, count: number): Promise<OutboxJob[]> {
    const streams = lanes.map(lane => this.keys.outbox(shard, lane))
    const command = `rrReadOutbox${streams.length}` as 'rrReadOutbox1'
    const read = () => this.redis[command](...streams, GROUP, consumer, count)
    let reply: (string | number)[]
    try {
      reply = await this.guard(read())
    } catch (err) {
      // The groups vanish when the keys are deleted (FLUSHDB, a new Redis): make them again.
      if (!(err as Error).message.includes('NOGROUP')) throw err
      await this.ensureGroups()
      reply = await this.guard(read())
    }
    const jobs: OutboxJob[] = []
    for (let i = 0; i < reply.length; i += 3) {
      jobs.push({ shard, lane: lanes[Number(reply[i]) - 1]!, entryId: String(reply[i + 1]), notificationId: String(reply[i + 2]), deliveries: 1 })
    }
    return jobs
  }

  async reclaimOutbox (shard: number, lane: Lane, consumer: string, minIdleMs: number, count: number): Promise<OutboxJob[]> {
    const reply = await this.guard(this.redis.xautoclaim(this.keys.outbox(shard, lane), GROUP, consumer, minIdleMs, '0', 'COUNT', count)) as [string, [string, string[] | null][], string[]?]
    const jobs: OutboxJob[] = []
    for (const [entryId, fields] of reply[1]) {
      if (fields) jobs.push({ shard, lane, entryId, notificationId: fieldValue(fields, 'id'), deliveries: 2 })
    }
    return jobs
  }

  async keepOutboxJobs (shard: number, lane: Lane, consumer: string, entryIds: string[]): Promise<void> {
    if (entryIds.length === 0) return
    await this.guard(this.redis.rrKeepJobs(this.keys.outbox(shard, lane), GROUP, consumer, ...entryIds))
  }

  async releaseDueRetries (shard: number, now: number, count: number): Promise<number> {
    return this.guard(this.redis.rrReleaseDue(this.keys.retry(shard), ...LANES.map(l => this.keys.outbox(shard, l)), now, count, ...LANES))
  }

  async outboxDepth (shard: number): Promise<Record<Lane | 'retry', number>> {
    const [lengths, retry] = await this.guard(Promise.all([
      Promise.all(LANES.map(lane => this.redis.xlen(this.keys.outbox(shard, lane)))),
      this.redis.zcard(this.keys.retry(shard)),
    ]))
    return { ...Object.fromEntries(LANES.map((lane, i) => [lane, lengths[i]!])) as Record<Lane, number>, retry }
  }

  async takeDueFallback (shard: number, now: number, leaseUntil: number, count: number): Promise<FallbackLease[]> {
    const ids = await this.guard(this.redis.rrTakeDue(this.keys.fallback(shard), this.keys.fallbackLeased(shard), this.keys.fallbackWoken(shard), now, leaseUntil, count))
    return ids.map(notificationId => ({ shard, notificationId, until: leaseUntil }))
  }

  async expireFallbackLeases (shard: number, now: number): Promise<number> {
    return this.guard(this.redis.rrExpireLeases(this.keys.fallback(shard), this.keys.fallbackLeased(shard), this.keys.fallbackWoken(shard), now))
  }

  async fallbackState (shard: number, now: number): Promise<FallbackState> {
    const queue = this.keys.fallback(shard)
    const [total, due, leased, dead, oldest, next] = await this.guard(Promise.all([
      this.redis.zcard(queue),
      this.redis.zcount(queue, '-inf', now),
      this.redis.zcard(this.keys.fallbackLeased(shard)),
      this.redis.zcard(this.keys.dead(shard)),
      this.redis.zrange(this.keys.fallbackSince(shard), '0', '0', 'WITHSCORES'),
      this.redis.zrange(queue, '0', '0', 'WITHSCORES'),
    ]))
    return {
      waiting: total - due,
      due,
      leased,
      dead,
      oldestSince: oldest[1] ? Number(oldest[1]) : null,
      nextCheckAt: next[1] ? Number(next[1]) : null,
    }
  }

  async countFallbackActivity (shard: number, minute: number, kind: 'checks' | 'wakeups', n: number): Promise<void> {
    const key = this.keys.fallbackStats(shard)
    await this.guard(Promise.all([
      this.redis.hincrby(key, `${kind}:${minute}`, n),
      this.redis.expire(key, 7200),
    ]))
  }

  async fallbackActivity (shard: number, fromMinute: number): Promise<{ checks: number, wakeups: number }> {
    const key = this.keys.fallbackStats(shard)
    const all = await this.guard(this.redis.hgetall(key))
    const totals = { checks: 0, wakeups: 0 }
    const stale: string[] = []
    for (const [field, value] of Object.entries(all)) {
      const [kind, minute] = field.split(':') as ['checks' | 'wakeups', string]
      if (Number(minute) >= fromMinute) totals[kind] += Number(value)
      else if (Number(minute) < fromMinute - 60) stale.push(field)
    }
    if (stale.length > 0) await this.guard(this.redis.hdel(key, ...stale))
    return totals
  }

  async listDead (shard: number, after: Position | undefined, limit: number): Promise<DeadLetter[]> {
    return (await this.rangeAfter(this.keys.dead(shard), -Infinity, Infinity, after, limit)).map(([notificationId, at]) => ({ notificationId, at }))
  }

  /** A page of a sorted set by score, ties by member, after `after`: [member, score] pairs. */
  private async rangeAfter (key: string, min: number, max: number, after: Position | undefined, limit: number): Promise<[string, number][]> {
    const bound = (v: number) => v === -Infinity ? '-inf' : v === Infinity ? '+inf' : String(v)
    const flat = await this.guard(this.redis.rrRangeAfter(key, bound(min), bound(max), after ? String(after.score) : '', after?.member ?? '', limit))
    const pairs: [string, number][] = []
    for (let i = 0; i < flat.length; i += 2) pairs.push([flat[i]!, Number(flat[i + 1])])
    return pairs
  }

  async removeDead (shard: number, notificationId: string): Promise<boolean> {
    return (await this.guard(this.redis.zrem(this.keys.dead(shard), notificationId))) === 1
  }

  async notePendingCampaignCount (shard: number, count: PendingCampaignCount, at: number): Promise<void> {
    await this.guard(this.redis.zadd(this.keys.pendingCounts(shard), at, encodePendingCount(count)))
  }

  async pendingCampaignCounts (shard: number, notedBefore: number, limit: number): Promise<PendingCampaignCount[]> {
    const members = await this.guard(this.redis.zrangebyscore(this.keys.pendingCounts(shard), '-inf', `(${notedBefore}`, 'LIMIT', 0, limit))
    return members.map(decodePendingCount)
  }

  async pendingCampaignCountDepth (shard: number): Promise<number> {
    return this.guard(this.redis.zcard(this.keys.pendingCounts(shard)))
  }

  async settlePendingCampaignCount (shard: number, count: PendingCampaignCount): Promise<void> {
    await this.guard(this.redis.zrem(this.keys.pendingCounts(shard), encodePendingCount(count)))
  }

  async isDead (shard: number, notificationId: string): Promise<boolean> {
    return (await this.guard(this.redis.zscore(this.keys.dead(shard), notificationId))) !== null
  }

  async trimDead (shard: number, before: number): Promise<number> {
    return this.guard(this.redis.zremrangebyscore(this.keys.dead(shard), '-inf', `(${before}`))
  }

  async recordReport (r: Reachability, reachable: boolean | null, unlessLater = false): Promise<boolean> {
    const key = this.keys.report(r.phone_number)
    const at = r.checked_at
    const fields: Record<string, string> = {
      last_checked_at: at, status_code: r.status.code, is_reachable: String(r.is_reachable),
      connectivity: JSON.stringify(r.connectivity), latest_status_at: r.latest_status_at ?? '',
    }
    if (reachable) fields.last_reachable_at = at
    if (reachable && r.connectivity.includes('DATA')) fields.last_data_at = at
    if (reachable && r.connectivity.includes('SMS')) fields.last_sms_at = at
    const shard = numberShard(r.phone_number, this.shards)
    const stale = this.keys.reportIndex('stale', shard)
    const offline = this.keys.reportIndex('offline', shard)
    const record = () => this.redis.rrRecordReport(key, unlessLater ? statusInstant(r) : '', at, ...Object.entries(fields).flat())
    const indexes = () => {
      if (reachable === true) return [this.redis.zrem(stale, r.phone_number), this.redis.zrem(offline, r.phone_number)]
      // Quiet since the network's status time; an answer without one keeps the time already there (the first offline
      // check), or the stale contact would never get older than the last check.
      if (reachable === false) {
        const quiet = r.latest_status_at === null
          ? this.redis.zadd(stale, 'NX', Date.parse(at), r.phone_number)
          : this.redis.zadd(stale, Date.parse(r.latest_status_at), r.phone_number)
        return [quiet, this.redis.zadd(offline, Date.parse(at), r.phone_number)]
      }
      return []
    }
    // Without a check, the record and the indexes (other slots) are written at once, in one round trip.
    if (!unlessLater) {
      await this.guard(Promise.all([record(), ...indexes()]))
      return true
    }
    // With one, the indexes only once the record took the news.
    if (await this.guard(record()) !== 1) return false
    await this.guard(Promise.all(indexes()))
    return true
  }

  async getReports (phoneNumbers: string[]): Promise<(NumberReport | null)[]> {
    const hashes = await this.guard(Promise.all(phoneNumbers.map(p => this.redis.hgetall(this.keys.report(p)))))
    return hashes.map((h, i) => h.first_seen_at ? reportFromHash(phoneNumbers[i]!, h) : null)
  }

  async reportIndex (index: 'stale' | 'offline', shard: number, min: number, max: number, after: Position | undefined, limit: number): Promise<ReportEntry[]> {
    return (await this.rangeAfter(this.keys.reportIndex(index, shard), min, max, after, limit)).map(([phoneNumber, at]) => ({ phoneNumber, at }))
  }

  async takeToken (bucket: string, ratePerSecond: number, burst: number): Promise<number> {
    return this.guard(this.redis.rrTakeToken(this.keys.bucket(bucket), ratePerSecond, burst))
  }

  async createRefreshJob (job: RefreshJob, phoneNumbers: string[], retentionSeconds: number): Promise<void> {
    const jobKey = this.keys.refreshJob(job.id)
    const todo = this.keys.refreshTodo(job.id)
    const fields = Object.fromEntries(Object.entries(job).map(([k, v]) => [k, v === null ? '' : String(v)]))
    await this.guard(this.redis.multi()
      .hset(jobKey, fields).expire(jobKey, retentionSeconds)
      .rpush(todo, ...phoneNumbers).expire(todo, retentionSeconds)
      .exec())
    await this.guard(this.redis.sadd(this.keys.refreshActive(), job.id))
  }

  async getRefreshJob (id: string): Promise<RefreshJob | null> {
    const h = await this.guard(this.redis.hgetall(this.keys.refreshJob(id)))
    if (!h.id) return null
    return {
      id: h.id, owner: h.owner ?? '', status: h.status as RefreshJob['status'], total: Number(h.total), done: Number(h.done),
      failed: Number(h.failed), created_at: h.created_at!, completed_at: h.completed_at || null,
    }
  }

  async activeRefreshJobs (): Promise<string[]> {
    return this.guard(this.redis.smembers(this.keys.refreshActive()))
  }

  async claimRefreshNumbers (id: string, count: number, now: number, leaseUntil: number): Promise<ClaimedChunk | null> {
    return this.claimChunk(this.keys.refreshJob(id), this.keys.refreshTodo(id), this.keys.refreshLeases(id), count, now, leaseUntil)
  }

  async renewRefreshChunk (id: string, lease: ChunkLease, until: number): Promise<boolean> {
    return (await this.guard(this.redis.rrRenewChunk(this.keys.refreshLeases(id), chunkMember(lease), lease.until, until))) === 1
  }

  async finishRefreshChunk (id: string, lease: ChunkLease, done: number, failed: number): Promise<boolean> {
    return (await this.guard(this.redis.rrFinishChunk(this.keys.refreshJob(id), this.keys.refreshLeases(id), chunkMember(lease), lease.until,
      'done', done, 'failed', failed))) === 1
  }

  async completeRefreshJob (id: string, at: string): Promise<boolean> {
    const complete = await this.guard(this.redis.rrCompleteRefresh(this.keys.refreshJob(id), this.keys.refreshTodo(id), this.keys.refreshLeases(id), at)) === 1
    // A job gone past its retention is also no longer active.
    if (complete || !(await this.guard(this.redis.exists(this.keys.refreshJob(id))))) await this.guard(this.redis.srem(this.keys.refreshActive(), id))
    return complete
  }

  async createCampaign (doc: CampaignDoc, retentionSeconds: number): Promise<void> {
    const key = this.keys.campaign(doc.id)
    const createdMs = Date.parse(doc.created_at)
    await this.guard(this.redis.multi()
      .hset(key, 'doc', JSON.stringify(doc), 'status', 'accepted', 'next', 0, 'updated_at', doc.created_at)
      .expire(key, retentionSeconds)
      .exec())
    const index = this.keys.campaignIndex()
    await this.guard(Promise.all([
      this.redis.zadd(index, createdMs, doc.id),
      // Campaigns past their retention leave the listing.
      this.redis.zremrangebyscore(index, '-inf', `(${createdMs - retentionSeconds * 1000}`),
    ]))
  }

  async appendCampaignRecipients (id: string, recipients: { to: string, payload: string }[]): Promise<boolean[]> {
    if (recipients.length === 0) return []
    const added = await this.guard(this.redis.rrAppendRecipients(this.keys.campaign(id), this.keys.campaignRecipients(id), this.keys.campaignNumbers(id),
      ...recipients.flatMap(r => [r.to, r.payload])))
    return added.map(a => a === 1)
  }

  async claimCampaignRecipients (id: string, count: number, now: number, leaseUntil: number): Promise<ClaimedChunk | null> {
    return this.claimChunk(this.keys.campaign(id), this.keys.campaignRecipients(id), this.keys.campaignLeases(id), count, now, leaseUntil)
  }

  async renewCampaignChunk (id: string, lease: ChunkLease, until: number): Promise<boolean> {
    return (await this.guard(this.redis.rrRenewChunk(this.keys.campaignLeases(id), chunkMember(lease), lease.until, until))) === 1
  }

  async countCampaignRecipients (id: string, lease: ChunkLease, handled: HandledRecipient[], { at, finish = false }: { at: number, finish?: boolean }): Promise<number | null> {
    const args = handled.flatMap(h => 'notification' in h
      ? [h.index, h.lookup ?? '', h.notification.id, h.notification.channel, h.notification.final ?? '', '']
      : [h.index, h.lookup ?? '', '', '', '', JSON.stringify(h.failure)])
    const counted = await this.guard(this.redis.rrCountCampaignRecipients(this.keys.campaign(id), this.keys.campaignLeases(id), this.keys.campaignFailures(id),
      this.keys.campaignCounted(id), this.keys.campaignHandled(id), chunkMember(lease), lease.until, finish ? 1 : 0, CAMPAIGN_FAILURES_KEPT, Math.floor(at / 60_000), ...args))
    return counted < 0 ? null : counted
  }

  private async claimChunk (hash: string, list: string, leases: string, count: number, now: number, leaseUntil: number): Promise<ClaimedChunk | null> {
    const reply = await this.guard(this.redis.rrClaimChunk(hash, list, leases, now, leaseUntil, count))
    if (reply.length === 0) return null
    const [start, taken, ...items] = reply
    return { lease: { start: Number(start), count: Number(taken), until: leaseUntil }, items: items as string[] }
  }

  async countCampaign (id: string, counts: Record<string, number>): Promise<void> {
    const key = this.keys.campaign(id)
    const entries = Object.entries(counts).filter(([, n]) => n !== 0)
    if (entries.length === 0) return
    // A campaign past its retention is not brought back by a late count.
    if (!(await this.guard(this.redis.exists(key)))) return
    await this.guard(Promise.all(entries.map(([field, n]) => this.redis.hincrby(key, field, n))))
  }

  async countCampaignFinal (id: string, notificationId: string, status: NotificationStatus): Promise<boolean> {
    return (await this.guard(this.redis.rrCountCampaignFinal(this.keys.campaign(id), this.keys.campaignCounted(id), notificationId, status))) === 1
  }

  async reopenCampaignFinal (id: string, notificationId: string, status: NotificationStatus): Promise<boolean> {
    return (await this.guard(this.redis.rrReopenCampaignFinal(this.keys.campaign(id), this.keys.campaignCounted(id), notificationId, status))) === 1
  }

  async campaignFailures (id: string): Promise<CampaignFailure[]> {
    const kept = await this.guard(this.redis.zrange(this.keys.campaignFailures(id), '0', '-1'))
    return kept.map(f => JSON.parse(f) as CampaignFailure)
  }

  async setCampaignStatus (id: string, to: CampaignStatus, from: readonly CampaignStatus[], at: string): Promise<{ changed: boolean, status: CampaignStatus | null }> {
    const [changed, status] = await this.guard(this.redis.rrSetCampaignStatus(this.keys.campaign(id), to, at, ...from))
    return { changed: changed === 1, status: status === '' ? null : status as CampaignStatus }
  }

  async completeCampaign (id: string, at: string): Promise<boolean> {
    return (await this.guard(this.redis.rrCompleteCampaign(this.keys.campaign(id), this.keys.campaignRecipients(id), this.keys.campaignLeases(id), this.keys.campaignNumbers(id),
      this.keys.campaignHandled(id), at))) === 1
  }

  async releaseCancelledCampaign (id: string, now: number): Promise<boolean> {
    return (await this.guard(this.redis.rrReleaseCancelledCampaign(this.keys.campaign(id), this.keys.campaignRecipients(id), this.keys.campaignLeases(id),
      this.keys.campaignNumbers(id), this.keys.campaignHandled(id), now))) === 1
  }

  async getCampaign (id: string): Promise<CampaignRecord | null> {
    const h = await this.guard(this.redis.hgetall(this.keys.campaign(id)))
    if (!h.doc) return null
    const counters: Record<string, number> = {}
    for (const [field, value] of Object.entries(h)) {
      if (!['doc', 'status', 'next', 'updated_at', 'completed_at', 'run_since', 'run_processed'].includes(field)) counters[field] = Number(value)
    }
    return {
      doc: JSON.parse(h.doc) as CampaignDoc, status: h.status as CampaignStatus, counters, completed_at: h.completed_at ?? null,
      run: h.run_since !== undefined ? { since: h.run_since, processed: Number(h.run_processed ?? 0) } : null,
    }
  }

  async listCampaigns (after: Position | undefined, limit: number): Promise<ListedCampaign[]> {
    return (await this.rangeAfter(this.keys.campaignIndex(), -Infinity, Infinity, after, limit)).map(([id, createdMs]) => ({ id, createdMs }))
  }

  async activeCampaigns (): Promise<string[]> {
    return this.guard(this.redis.smembers(this.keys.campaignActive()))
  }

  async setCampaignActive (id: string, active: boolean): Promise<void> {
    await this.guard(active ? this.redis.sadd(this.keys.campaignActive(), id) : this.redis.srem(this.keys.campaignActive(), id))
  }

  async finishIdempotency (ref: IdempotencyRef, token: string, requestHash: string, response: string, ttlSeconds: number): Promise<boolean> {
    return (await this.guard(this.redis.rrFinishIdempotency(this.keys.idempotency(ref.shard, ref.key), token, requestHash, response, ttlSeconds))) === 1
  }

  async wakeFallback (shard: number, notificationIds: string[], now: number): Promise<number> {
    if (notificationIds.length === 0) return 0
    return this.guard(this.redis.rrWakeFallback(this.keys.fallback(shard), this.keys.fallbackLeased(shard), this.keys.fallbackWoken(shard), now, ...notificationIds))
  }

  async watchNumber (phoneNumber: string, notificationId: string, untilMs: number): Promise<void> {
    const key = this.keys.watchers(phoneNumber)
    await this.guard(Promise.all([
      this.redis.sadd(key, notificationId),
      // The set lives as long as its longest-waiting notification.
      this.redis.pexpireat(key, untilMs, 'NX'),
      this.redis.pexpireat(key, untilMs, 'GT'),
    ]))
  }

  async unwatchNumber (phoneNumber: string, notificationId: string): Promise<number> {
    const key = this.keys.watchers(phoneNumber)
    const [, left] = await this.guard(Promise.all([this.redis.srem(key, notificationId), this.redis.scard(key)]))
    return left
  }

  async watchers (phoneNumber: string): Promise<string[]> {
    return this.guard(this.redis.smembers(this.keys.watchers(phoneNumber)))
  }

  async watchedUntil (phoneNumber: string): Promise<number | null> {
    // The set lives as long as its longest-waiting notification, and is gone once empty.
    const at = await this.guard(this.redis.pexpiretime(this.keys.watchers(phoneNumber)))
    return at > 0 ? at : null
  }

  async getSubscriptions (phoneNumber: string): Promise<Record<string, string>> {
    const all = await this.guard(this.redis.hgetall(this.keys.subscriptions(phoneNumber)))
    return Object.fromEntries(Object.entries(all).filter(([field]) => !field.includes(':')))
  }

  async claimSubscription (phoneNumber: string, type: string, untilMs: number): Promise<string | null> {
    const token = randomUUID()
    const claimed = await this.guard(this.redis.rrClaimSubscription(this.keys.subscriptions(phoneNumber), type, untilMs, token))
    return claimed === 1 ? token : null
  }

  async releaseSubscriptionClaim (phoneNumber: string, type: string, claim: string): Promise<void> {
    await this.guard(this.redis.rrReleaseSubscriptionClaim(this.keys.subscriptions(phoneNumber), type, claim))
  }

  async setSubscription (phoneNumber: string, type: string, claim: string, subscriptionId: string, untilMs: number): Promise<{ stored: boolean, replaced: string | null }> {
    // The id's number is written first (another slot): an event from the new subscription may come at once. Only if
    // absent: an operator refusing duplicates answers with an id stored already, whose number stays if this is not stored.
    const index = this.keys.subscriptionNumber(subscriptionId)
    const written = await this.guard(this.redis.set(index, phoneNumber, 'PXAT', untilMs, 'NX')) === 'OK'
    const [stored, old] = await this.guard(this.redis.rrSetSubscription(this.keys.subscriptions(phoneNumber), type, claim, subscriptionId, untilMs))
    if (stored !== 1) {
      if (written) await this.guard(this.redis.del(index))
      return { stored: false, replaced: null }
    }
    if (!written) await this.guard(this.redis.set(index, phoneNumber, 'PXAT', untilMs))
    const replaced = old && old !== subscriptionId ? old : null
    if (replaced !== null) await this.guard(this.redis.del(this.keys.subscriptionNumber(replaced)))
    return { stored: true, replaced }
  }

  async dropSubscriptions (phoneNumber: string, subscriptionId?: string): Promise<Record<string, string>> {
    const flat = await this.guard(this.redis.rrDropSubscriptions(this.keys.subscriptions(phoneNumber), subscriptionId ?? ''))
    const dropped: Record<string, string> = {}
    for (let i = 0; i < flat.length; i += 2) dropped[flat[i]!] = flat[i + 1]!
    const ids = Object.values(dropped)
    // One key per id, each in its own slot.
    if (ids.length > 0) await this.guard(Promise.all(ids.map(id => this.redis.del(this.keys.subscriptionNumber(id)))))
    return dropped
  }

  async subscriptionNumber (subscriptionId: string): Promise<string | null> {
    return this.guard(this.redis.get(this.keys.subscriptionNumber(subscriptionId)))
  }

  async parkSubscriptionEvent (subscriptionId: string, event: string, ttlSeconds: number, most: number): Promise<boolean> {
    const keys = [this.keys.subscriptionNumber(subscriptionId), this.keys.subscriptionEarlyEvents(subscriptionId)] as const
    return (await this.guard(this.redis.rrParkSubscriptionEvent(...keys, event, ttlSeconds, most))) === 1
  }

  async takeSubscriptionEvents (subscriptionId: string): Promise<string[]> {
    return this.guard(this.redis.rrTakeSubscriptionEvents(this.keys.subscriptionEarlyEvents(subscriptionId)))
  }

  async eventSeen (eventKey: string): Promise<boolean> {
    return (await this.guard(this.redis.exists(this.keys.event(eventKey)))) === 1
  }

  async markEventSeen (eventKey: string, ttlSeconds: number): Promise<void> {
    await this.guard(this.redis.set(this.keys.event(eventKey), '1', 'EX', ttlSeconds))
  }

  async ping (): Promise<void> {
    if (this.redis instanceof Cluster) {
      // Every master must answer: one that is gone leaves its slots' notifications unreachable. The client drops
      // a master whose connection died from its node list, but the slot table still names it until the cluster
      // hands its slots to another: every slot's owner must be among the connected masters.
      const cluster = this.redis
      if (cluster.status !== 'ready') throw new StoreUnavailableError(`the Redis Cluster is ${cluster.status}`)
      const masters = cluster.nodes('master')
      const connected = new Set(masters.map(node => `${node.options.host}:${node.options.port}`))
      for (let slot = 0; slot < 16384; slot++) {
        const owner = cluster.slots[slot]?.[0]
        if (!owner) throw new StoreUnavailableError(`no master serves slot ${slot} of the Redis Cluster`)
        if (!connected.has(owner)) throw new StoreUnavailableError(`the master ${owner} of the Redis Cluster does not answer`)
      }
      // A master that just came back answers PING before the cluster takes it in (CLUSTERDOWN until then).
      const states = await this.guard(Promise.all(masters.map(async node => [node, await node.cluster('INFO')] as const)))
      for (const [node, info] of states) {
        if (!info.includes('cluster_state:ok')) throw new StoreUnavailableError(`the Redis Cluster is not ok at ${node.options.host}:${node.options.port}`)
      }
      return
    }
    await this.guard(this.redis.ping())
  }

  async close (): Promise<void> {
    this.closing = true
    await this.redis.quit().catch(() => this.redis.disconnect())
  }
}

function reportFromHash (phoneNumber: string, h: Record<string, string>): NumberReport {
  return {
    phone_number: phoneNumber,
    first_seen_at: h.first_seen_at!,
    last_checked_at: h.last_checked_at!,
    last_reachable_at: h.last_reachable_at ?? null,
    last_data_at: h.last_data_at ?? null,
    last_sms_at: h.last_sms_at ?? null,
    is_reachable: h.is_reachable === 'true',
    connectivity: JSON.parse(h.connectivity ?? '[]') as string[],
    latest_status_at: h.latest_status_at || null,
    status_code: h.status_code ?? '',
  }
}

function fieldValue (fields: string[], name: string): string {
  const i = fields.indexOf(name)
  return i >= 0 ? fields[i + 1]! : ''
}

/** How a chunk is named in its leases set. */
function chunkMember (lease: ChunkLease): string {
  return `${lease.start}:${lease.count}`
}

/** Where the store's Redis is, for a message: host and port only (a URL may carry a password). */
function whereRedis (options: RedisStoreOptions): string {
  if (options.clusterNodes) return `Redis Cluster (${options.clusterNodes.map(n => `${n.host}:${n.port}`).join(', ')})`
  const url = new URL(options.url ?? 'redis://127.0.0.1:6379')
  return `Redis at ${url.hostname}:${url.port || '6379'}`
}
