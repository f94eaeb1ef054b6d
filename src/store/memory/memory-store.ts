import { randomUUID } from 'node:crypto'
import { numberShard, shardOfId } from '../../notifications/ids.js'
import type { Position } from '../../domain/paging.js'
import type { Reachability } from '../../domain/reachability.js'
import type { Notification, NotificationStatus } from '../../notifications/types.js'
import {
  type AcceptCommand, type CachedReachability, type IdempotencyClaim, type IdempotencyRef, type JobTarget,
  type ChunkLease, type ClaimedChunk, type CampaignDoc, type CampaignRecord, type CampaignStatus, type DeadLetter, type FallbackLease, type NumberReport, type RefreshJob, type ReportEntry, type FallbackState, type Lane, LANES, type OutboxJob, type Store,
  type StoredNotification, type Transition, recordKeptUntil, transitionKeptUntil, wellFormedPatch,
  CAMPAIGN_FAILURES_KEPT, type CampaignFailure, type HandledRecipient, type ListedCampaign, type PendingCampaignCount, notedCampaignCount, droppedCampaignCounts, newerNews, statusInstant,
} from '../store.js'

interface Expiring<T> {
  value: T
  expiresAt: number
}

/** A map whose entries vanish after their time; a periodic sweep keeps it from growing forever. */
class ExpiringMap<T> {
  private readonly entries = new Map<string, Expiring<T>>()
  constructor (private readonly now: () => number) {}

  get (key: string): T | undefined {
    const hit = this.entries.get(key)
    if (!hit) return undefined
    if (hit.expiresAt <= this.now()) {
      this.entries.delete(key)
      return undefined
    }
    return hit.value
  }

  set (key: string, value: T, ttlMs: number): void {
    this.entries.set(key, { value, expiresAt: this.now() + ttlMs })
  }

  delete (key: string): void {
    this.entries.delete(key)
  }

  /** Keeps the entry at least until `untilMs` (epoch ms); never shortens it. */
  keepUntil (key: string, untilMs: number): void {
    const hit = this.entries.get(key)
    if (hit && untilMs > hit.expiresAt) hit.expiresAt = untilMs
  }

  ttl (key: string): number {
    const hit = this.entries.get(key)
    return hit ? Math.max(0, hit.expiresAt - this.now()) : 0
  }

  sweep (): void {
    const now = this.now()
    for (const [key, entry] of this.entries) if (entry.expiresAt <= now) this.entries.delete(key)
  }
}

/** One event type's subscription of a number: the one stored (and when it ends), and a creation in flight. */
interface SubscriptionSlot {
  id?: string
  untilMs?: number
  claim?: { token: string, untilMs: number }
}

interface StreamEntry {
  notificationId: string
  consumer: string | null
  deliveredAt: number
  deliveries: number
}

interface CampaignEntry {
  doc: CampaignDoc
  status: CampaignStatus
  counters: Map<string, number>
  recipients: string[]
  numbers: Set<string>
  failures: Map<number, CampaignFailure>
  /**
   * What each notification is counted as (see countCampaignFinal): made or not yet, and the final status told (counted
   * in it once made); goes with the campaign.
   */
  counted: Map<string, { made: boolean, status: NotificationStatus | null }>
  /** The recipients counted, by index (see countCampaignRecipients). */
  handled: Set<number>
  run: { since: string, processed: number } | null
  /** Work in leased chunks, as in Redis. */
  chunks: Chunks
  completedAt: string | null
  expiresAt: number
}

/** One key per campaign, notification and status (the fields in a fixed order). */
function pendingKey (count: PendingCampaignCount): string {
  return JSON.stringify({ campaignId: count.campaignId, notificationId: count.notificationId, status: count.status })
}

function bump (c: CampaignEntry, field: string, by = 1): void {
  c.counters.set(field, (c.counters.get(field) ?? 0) + by)
}

/**
 * As COUNT_FINAL's countFinal in Redis: once per notification, in its latest final status (`sent` moves on, nothing
 * else does), and in the `status:` counts only once it is counted as made.
 */
function countFinal (c: CampaignEntry, notificationId: string, status: NotificationStatus): boolean {
  const was = c.counted.get(notificationId)
  const prior = was?.status ?? null
  if (prior !== null && (prior !== 'sent' || status === 'sent')) return false
  const made = was?.made ?? false
  c.counted.set(notificationId, { made, status })
  if (made) {
    if (prior !== null) bump(c, `status:${prior}`, -1)
    bump(c, `status:${status}`)
  }
  return true
}

/** As COUNT_FINAL's countMade in Redis: the notification is counted as made, and in the final status told before, if any. */
function countMade (c: CampaignEntry, notificationId: string): void {
  const was = c.counted.get(notificationId)
  if (was?.made) return
  c.counted.set(notificationId, { made: true, status: was?.status ?? null })
  if (was?.status) bump(c, `status:${was.status}`)
}

/** A list worked through in leased chunks: the next index, and the chunks held ("<start>:<count>" → lease until). */
interface Chunks {
  next: number
  leases: Map<string, number>
}

/** A lapsed chunk first, else the next `count` items; the chunk is leased until `leaseUntil`. */
function claimChunk (items: string[], chunks: Chunks, count: number, now: number, leaseUntil: number): ClaimedChunk | null {
  let lease: ChunkLease | undefined
  for (const [member, until] of chunks.leases) {
    if (until > now) continue
    const [start, n] = member.split(':').map(Number) as [number, number]
    lease = { start, count: n, until: leaseUntil }
    break
  }
  if (!lease) {
    const n = Math.min(count, items.length - chunks.next)
    if (n <= 0) return null
    lease = { start: chunks.next, count: n, until: leaseUntil }
    chunks.next += n
  }
  chunks.leases.set(`${lease.start}:${lease.count}`, leaseUntil)
  return { lease, items: items.slice(lease.start, lease.start + lease.count) }
}

/** A campaign's recipients, numbers and record of those counted, gone once it completes or, cancelled, is released. */
function dropRecipients (c: { recipients: string[], numbers: Set<string>, handled: Set<number> }): void {
  c.recipients = []
  c.numbers.clear()
  c.handled.clear()
}

/** Whether the lease is still the one held on its chunk. */
function holds (chunks: Chunks, lease: ChunkLease): boolean {
  return chunks.leases.get(`${lease.start}:${lease.count}`) === lease.until
}

interface IdempotencyEntry {
  state: 'pending' | 'done'
  token?: string
  requestHash: string
  response?: string
}

export interface MemoryStoreOptions {
  shards?: number
  now?: () => number
  sweepIntervalMs?: number
}

/**
 * The embedded store: everything in this process, nothing survives a restart. It keeps the
 * semantics of the Redis store (consumer groups, reclaim after a visibility timeout, atomic steps).
 */
export class MemoryStore implements Store {
  readonly kind = 'memory' as const
  readonly shards: number
  private readonly now: () => number
  private readonly reachability: ExpiringMap<CachedReachability>
  private reachabilityWrites = 0
  private readonly notifications: ExpiringMap<StoredNotification>
  private readonly idempotency: ExpiringMap<IdempotencyEntry>
  private readonly streams = new Map<string, Map<string, StreamEntry>>()
  private readonly retries = new Map<number, Map<string, number>>()
  private readonly fallbacks = new Map<number, Map<string, number>>()
  private readonly fallbackSince = new Map<number, Map<string, number>>()
  private readonly leased = new Map<number, Map<string, number>>()
  /** Leased entries an event woke during their re-check, and when (see WAKE_FALLBACK in the Redis store). */
  private readonly woken = new Map<number, Map<string, number>>()
  private readonly deadLetters = new Map<number, Map<string, number>>()
  /** Pending campaign counts by shard: when each was noted, by pendingKey. */
  private readonly pendingCounts = new Map<number, Map<string, number>>()
  private readonly activity = new Map<string, number>()
  // Reports are kept for the life of the process, as the Redis ones are kept without expiry.
  private readonly reports = new Map<string, NumberReport>()
  private readonly buckets = new Map<string, { tokens: number, at: number }>()
  private readonly refreshJobs = new Map<string, { job: RefreshJob, numbers: string[], chunks: Chunks, expiresAt: number }>()
  private readonly reportIndexes = { stale: new Map<number, Map<string, number>>(), offline: new Map<number, Map<string, number>>() }
  private readonly campaigns = new Map<string, CampaignEntry>()
  private readonly campaignsActive = new Set<string>()
  private readonly watching: ExpiringMap<Set<string>>
  private readonly subscriptions: ExpiringMap<Map<string, SubscriptionSlot>>
  private readonly subscriptionNumbers: ExpiringMap<string>
  private readonly sightings: ExpiringMap<true>
  private readonly earlyEvents: ExpiringMap<string[]>
  private readonly sweeper: NodeJS.Timeout
  private sequence = 0

  constructor (options: MemoryStoreOptions = {}) {
    this.now = options.now ?? Date.now
    this.shards = options.shards ?? 16
    this.reachability = new ExpiringMap(this.now)
    this.notifications = new ExpiringMap(this.now)
    this.idempotency = new ExpiringMap(this.now)
    this.watching = new ExpiringMap(this.now)
    this.subscriptions = new ExpiringMap(this.now)
    this.subscriptionNumbers = new ExpiringMap(this.now)
    this.sightings = new ExpiringMap(this.now)
    this.earlyEvents = new ExpiringMap(this.now)
    this.sweeper = setInterval(() => {
      this.reachability.sweep()
      this.notifications.sweep()
      this.idempotency.sweep()
      this.watching.sweep()
      this.subscriptions.sweep()
      this.subscriptionNumbers.sweep()
      this.sightings.sweep()
      this.earlyEvents.sweep()
      this.sweepCampaignsAndScans()
    }, options.sweepIntervalMs ?? 60_000)
    this.sweeper.unref()
  }

  async getReachability (phoneNumber: string): Promise<CachedReachability | null> {
    return structuredClone(this.reachability.get(phoneNumber) ?? null)
  }

  async putReachability (entry: CachedReachability, keepSeconds: number, unlessNewerSince?: number): Promise<Reachability | null> {
    const { record, freshUntil } = entry
    const held = unlessNewerSince === undefined ? undefined : this.reachability.get(record.phone_number)?.record
    if (held && newerNews(held, record, unlessNewerSince!)) return structuredClone(held)
    if (keepSeconds > 0) this.reachability.set(record.phone_number, { record: structuredClone(record), freshUntil, version: String(++this.reachabilityWrites) }, keepSeconds * 1000)
    return null
  }

  async claimIdempotency (ref: IdempotencyRef, requestHash: string, claimSeconds: number): Promise<IdempotencyClaim> {
    const key = `${ref.shard}:${ref.key}`
    const held = this.idempotency.get(key)
    if (!held) {
      const token = randomUUID()
      this.idempotency.set(key, { state: 'pending', token, requestHash }, claimSeconds * 1000)
      return { state: 'claimed', token }
    }
    if (held.state === 'pending') return { state: 'in_flight', retryAfterSeconds: Math.max(1, Math.ceil(this.idempotency.ttl(key) / 1000)) }
    return { state: 'done', requestHash: held.requestHash, response: held.response! }
  }

  async releaseIdempotency (ref: IdempotencyRef, token: string): Promise<void> {
    const key = `${ref.shard}:${ref.key}`
    if (this.idempotency.get(key)?.token === token) this.idempotency.delete(key)
  }

  async shortenIdempotency (refs: IdempotencyRef[], ttlSeconds: number): Promise<void> {
    for (const ref of refs) {
      const key = `${ref.shard}:${ref.key}`
      const held = this.idempotency.get(key)
      if (held?.state === 'done' && this.idempotency.ttl(key) > ttlSeconds * 1000) this.idempotency.set(key, held, ttlSeconds * 1000)
    }
  }

  async acceptNotification (command: AcceptCommand): Promise<boolean> {
    const { notification, idempotency: idem } = command
    // As in Redis: an id accepted already (the same accept again) is accepted, and nothing more is stored.
    if (this.notifications.get(notification.id)) return true
    if (idem && this.idempotency.get(`${idem.shard}:${idem.key}`)?.token !== idem.token) return false
    const basedOn = command.basedOn
    if (basedOn && this.reachability.get(basedOn.phoneNumber)?.version !== basedOn.version) return false
    const shard = this.shardOf(notification.id)
    const keptUntil = recordKeptUntil(this.now(), command.retentionSeconds, notification.expires_at)
    this.notifications.set(notification.id, structuredClone({ notification, events: command.events }), keptUntil - this.now())
    this.schedule(shard, notification.id, command.next, Date.parse(notification.created_at))
    if (idem) {
      this.idempotency.set(`${idem.shard}:${idem.key}`, { state: 'done', requestHash: idem.requestHash, response: idem.response }, idem.ttlSeconds * 1000)
    }
    return true
  }

  async getNotification (id: string): Promise<StoredNotification | null> {
    return structuredClone(this.notifications.get(id) ?? null)
  }

  async transition (t: Transition): Promise<boolean> {
    // The answer of an attempt when a later one has begun: its job is not acknowledged either (see TRANSITION).
    if (t.onlyAtAttempt !== undefined && (this.notifications.get(t.notificationId)?.notification.attempts ?? 0) !== t.onlyAtAttempt) return false
    if (t.ack) this.stream(t.shard, t.ack.lane).delete(t.ack.entryId)
    let wokenAt: number | undefined
    if (t.lease) {
      const leased = this.sorted(this.leased, t.shard)
      if (leased.get(t.notificationId) !== t.lease.until) return false
      leased.delete(t.notificationId)
      const woken = this.sorted(this.woken, t.shard)
      wokenAt = woken.get(t.notificationId)
      woken.delete(t.notificationId)
    }
    const stored = this.notifications.get(t.notificationId)
    const dead = this.sorted(this.deadLetters, t.shard)
    if (!stored || (t.onlyFrom && !t.onlyFrom.includes(stored.notification.status)) || (t.fromDead && !dead.has(t.notificationId))) {
      // A lease held on a record that is gone or has left the fallback path: it no longer waits there.
      if (t.lease) this.sorted(this.fallbackSince, t.shard).delete(t.notificationId)
      return false
    }
    const keptUntil = transitionKeptUntil(t.patch)
    if (keptUntil !== undefined) this.notifications.keepUntil(t.notificationId, keptUntil)
    const patch = Object.fromEntries(Object.entries(wellFormedPatch(t.patch)).filter(([, v]) => v !== undefined)) as Partial<Notification>
    Object.assign(stored.notification, structuredClone(patch))
    stored.events.push(...structuredClone(t.events))
    const at = t.at ?? this.now()
    const next = t.next?.kind === 'fallback' && wokenAt !== undefined && wokenAt < t.next.dueAt ? { ...t.next, dueAt: wokenAt } : t.next
    if (next) this.schedule(t.shard, t.notificationId, next, at)
    if (t.lease && t.next?.kind !== 'fallback') this.sorted(this.fallbackSince, t.shard).delete(t.notificationId)
    if (t.fromDead) dead.delete(t.notificationId)
    if (t.dead) dead.set(t.notificationId, at)
    const pending = this.sorted(this.pendingCounts, t.shard)
    for (const count of droppedCampaignCounts(t)) pending.delete(pendingKey(count))
    const noted = notedCampaignCount(t)
    if (noted) pending.set(pendingKey(noted), at)
    return true
  }

  async notePendingCampaignCount (shard: number, count: PendingCampaignCount, at: number): Promise<void> {
    this.sorted(this.pendingCounts, shard).set(pendingKey(count), at)
  }

  async pendingCampaignCounts (shard: number, notedBefore: number, limit: number): Promise<PendingCampaignCount[]> {
    return [...this.sorted(this.pendingCounts, shard)]
      .filter(([, at]) => at < notedBefore)
      .sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0))
      .slice(0, limit)
      .map(([key]) => JSON.parse(key) as PendingCampaignCount)
  }

  async pendingCampaignCountDepth (shard: number): Promise<number> {
    return this.sorted(this.pendingCounts, shard).size
  }

  async settlePendingCampaignCount (shard: number, count: PendingCampaignCount): Promise<void> {
    this.sorted(this.pendingCounts, shard).delete(pendingKey(count))
  }

  async takeDueFallback (shard: number, now: number, leaseUntil: number, count: number): Promise<FallbackLease[]> {
    const queue = this.sorted(this.fallbacks, shard)
    const due = [...queue].filter(([, at]) => at <= now).sort((a, b) => a[1] - b[1]).slice(0, count)
    const leased = this.sorted(this.leased, shard)
    return due.map(([id]) => {
      queue.delete(id)
      leased.set(id, leaseUntil)
      this.sorted(this.woken, shard).delete(id)
      return { shard, notificationId: id, until: leaseUntil }
    })
  }

  async expireFallbackLeases (shard: number, now: number): Promise<number> {
    const leased = this.sorted(this.leased, shard)
    let n = 0
    for (const [id, until] of leased) {
      if (until > now) continue
      leased.delete(id)
      this.sorted(this.woken, shard).delete(id)
      this.sorted(this.fallbacks, shard).set(id, now)
      n++
    }
    return n
  }

  async fallbackState (shard: number, now: number): Promise<FallbackState> {
    const scores = [...this.sorted(this.fallbacks, shard).values()]
    const since = [...this.sorted(this.fallbackSince, shard).values()]
    const due = scores.filter(at => at <= now).length
    return {
      waiting: scores.length - due,
      due,
      leased: this.sorted(this.leased, shard).size,
      dead: this.sorted(this.deadLetters, shard).size,
      oldestSince: since.length ? Math.min(...since) : null,
      nextCheckAt: scores.length ? Math.min(...scores) : null,
    }
  }

  async countFallbackActivity (shard: number, minute: number, kind: 'checks' | 'wakeups', n: number): Promise<void> {
    const key = `${shard}:${kind}:${minute}`
    this.activity.set(key, (this.activity.get(key) ?? 0) + n)
  }

  async fallbackActivity (shard: number, fromMinute: number): Promise<{ checks: number, wakeups: number }> {
    const totals = { checks: 0, wakeups: 0 }
    for (const [key, value] of this.activity) {
      const [s, kind, minute] = key.split(':') as [string, 'checks' | 'wakeups', string]
      if (Number(minute) < fromMinute - 60) this.activity.delete(key)
      else if (Number(s) === shard && Number(minute) >= fromMinute) totals[kind] += value
    }
    return totals
  }

  async listDead (shard: number, after: Position | undefined, limit: number): Promise<DeadLetter[]> {
    return rangeAfter(this.sorted(this.deadLetters, shard), -Infinity, Infinity, after, limit).map(([notificationId, at]) => ({ notificationId, at }))
  }

  async removeDead (shard: number, notificationId: string): Promise<boolean> {
    return this.sorted(this.deadLetters, shard).delete(notificationId)
  }

  async isDead (shard: number, notificationId: string): Promise<boolean> {
    return this.sorted(this.deadLetters, shard).has(notificationId)
  }

  async trimDead (shard: number, before: number): Promise<number> {
    const dead = this.sorted(this.deadLetters, shard)
    let n = 0
    for (const [id, at] of dead) if (at < before && dead.delete(id)) n++
    return n
  }

  async readOutbox (shard: number, lanes: readonly Lane[], consumer: string, count: number): Promise<OutboxJob[]> {
    const jobs: OutboxJob[] = []
    for (const lane of lanes) {
      for (const [entryId, entry] of this.stream(shard, lane)) {
        if (jobs.length >= count) return jobs
        if (entry.consumer !== null) continue
        Object.assign(entry, { consumer, deliveredAt: this.now(), deliveries: 1 })
        jobs.push({ shard, lane, entryId, notificationId: entry.notificationId, deliveries: 1 })
      }
    }
    return jobs
  }

  async keepOutboxJobs (shard: number, lane: Lane, consumer: string, entryIds: string[]): Promise<void> {
    const stream = this.stream(shard, lane)
    const now = this.now()
    for (const entryId of entryIds) {
      const entry = stream.get(entryId)
      if (entry?.consumer === consumer) entry.deliveredAt = now
    }
  }

  async reclaimOutbox (shard: number, lane: Lane, consumer: string, minIdleMs: number, count: number): Promise<OutboxJob[]> {
    const jobs: OutboxJob[] = []
    const now = this.now()
    for (const [entryId, entry] of this.stream(shard, lane)) {
      if (jobs.length >= count) break
      if (entry.consumer === null || now - entry.deliveredAt < minIdleMs) continue
      Object.assign(entry, { consumer, deliveredAt: now, deliveries: entry.deliveries + 1 })
      jobs.push({ shard, lane, entryId, notificationId: entry.notificationId, deliveries: entry.deliveries })
    }
    return jobs
  }

  async releaseDueRetries (shard: number, now: number, count: number): Promise<number> {
    const retries = this.sorted(this.retries, shard)
    const due = [...retries].filter(([, at]) => at <= now).sort((a, b) => a[1] - b[1]).slice(0, count)
    for (const [member] of due) {
      const sep = member.indexOf('|')
      this.append(shard, member.slice(0, sep) as Lane, member.slice(sep + 1))
      retries.delete(member)
    }
    return due.length
  }

  async outboxDepth (shard: number): Promise<Record<Lane | 'retry', number>> {
    const depth = Object.fromEntries(LANES.map(lane => [lane, this.stream(shard, lane).size])) as Record<Lane, number>
    return { ...depth, retry: this.sorted(this.retries, shard).size }
  }

  async recordReport (r: Reachability, reachable: boolean | null, unlessLater = false): Promise<boolean> {
    const at = r.checked_at
    const before = this.reports.get(r.phone_number)
    if (unlessLater && before && (before.latest_status_at ?? before.last_checked_at) > statusInstant(r)) return false
    this.reports.set(r.phone_number, {
      phone_number: r.phone_number,
      first_seen_at: before?.first_seen_at ?? at,
      last_checked_at: at,
      last_reachable_at: reachable ? at : before?.last_reachable_at ?? null,
      last_data_at: reachable && r.connectivity.includes('DATA') ? at : before?.last_data_at ?? null,
      last_sms_at: reachable && r.connectivity.includes('SMS') ? at : before?.last_sms_at ?? null,
      is_reachable: r.is_reachable,
      connectivity: [...r.connectivity],
      latest_status_at: r.latest_status_at,
      status_code: r.status.code,
    })
    const shard = numberShard(r.phone_number, this.shards)
    const stale = this.sorted(this.reportIndexes.stale, shard)
    const offline = this.sorted(this.reportIndexes.offline, shard)
    if (reachable === true) {
      stale.delete(r.phone_number)
      offline.delete(r.phone_number)
    }
    if (reachable === false) {
      // As in Redis: without a status time, the time already there stays (the first offline check).
      if (r.latest_status_at !== null || !stale.has(r.phone_number)) stale.set(r.phone_number, Date.parse(r.latest_status_at ?? at))
      offline.set(r.phone_number, Date.parse(at))
    }
    return true
  }

  async getReports (phoneNumbers: string[]): Promise<(NumberReport | null)[]> {
    return phoneNumbers.map(p => structuredClone(this.reports.get(p) ?? null))
  }

  async reportIndex (index: 'stale' | 'offline', shard: number, min: number, max: number, after: Position | undefined, limit: number): Promise<ReportEntry[]> {
    return rangeAfter(this.sorted(this.reportIndexes[index], shard), min, max, after, limit).map(([phoneNumber, at]) => ({ phoneNumber, at }))
  }

  async takeToken (bucket: string, ratePerSecond: number, burst: number): Promise<number> {
    const now = this.now()
    const b = this.buckets.get(bucket) ?? { tokens: burst, at: now }
    b.tokens = Math.min(burst, b.tokens + Math.max(0, now - b.at) * ratePerSecond / 1000)
    b.at = now
    this.buckets.set(bucket, b)
    if (b.tokens >= 1) {
      b.tokens -= 1
      return 0
    }
    return Math.ceil((1 - b.tokens) * 1000 / ratePerSecond)
  }

  async createRefreshJob (job: RefreshJob, phoneNumbers: string[], retentionSeconds: number): Promise<void> {
    this.refreshJobs.set(job.id, { job: { ...job }, numbers: [...phoneNumbers], chunks: { next: 0, leases: new Map() }, expiresAt: this.now() + retentionSeconds * 1000 })
  }

  async getRefreshJob (id: string): Promise<RefreshJob | null> {
    const held = this.refreshJobs.get(id)
    return held ? { ...held.job } : null
  }

  async activeRefreshJobs (): Promise<string[]> {
    return [...this.refreshJobs.values()].filter(j => j.job.status === 'running').map(j => j.job.id)
  }

  async claimRefreshNumbers (id: string, count: number, now: number, leaseUntil: number): Promise<ClaimedChunk | null> {
    const held = this.refreshJobs.get(id)
    if (!held || held.job.status !== 'running') return null
    return claimChunk(held.numbers, held.chunks, count, now, leaseUntil)
  }

  async renewRefreshChunk (id: string, lease: ChunkLease, until: number): Promise<boolean> {
    const held = this.refreshJobs.get(id)
    if (!held || !holds(held.chunks, lease)) return false
    held.chunks.leases.set(`${lease.start}:${lease.count}`, until)
    return true
  }

  async finishRefreshChunk (id: string, lease: ChunkLease, done: number, failed: number): Promise<boolean> {
    const held = this.refreshJobs.get(id)
    if (!held || !holds(held.chunks, lease)) return false
    held.chunks.leases.delete(`${lease.start}:${lease.count}`)
    held.job.done += done
    held.job.failed += failed
    return true
  }

  async completeRefreshJob (id: string, at: string): Promise<boolean> {
    const held = this.refreshJobs.get(id)
    if (!held) return false
    if (held.job.status === 'completed') return true
    if (held.chunks.next < held.numbers.length || held.chunks.leases.size > 0 || held.job.done + held.job.failed < held.job.total) return false
    Object.assign(held.job, { status: 'completed', completed_at: at })
    return true
  }

  /** Campaigns and fleet scans past their retention go, as their keys expire in Redis. */
  private sweepCampaignsAndScans (): void {
    const now = this.now()
    for (const [id, c] of this.campaigns) {
      if (c.expiresAt > now) continue
      this.campaigns.delete(id)
      this.campaignsActive.delete(id)
    }
    for (const [id, j] of this.refreshJobs) if (j.expiresAt <= now) this.refreshJobs.delete(id)
  }

  async createCampaign (doc: CampaignDoc, retentionSeconds: number): Promise<void> {
    const now = this.now()
    this.sweepCampaignsAndScans()
    this.campaigns.set(doc.id, {
      doc: structuredClone(doc), status: 'accepted', counters: new Map(), recipients: [], numbers: new Set(), failures: new Map(), counted: new Map(), handled: new Set(), run: null,
      chunks: { next: 0, leases: new Map() },
      completedAt: null, expiresAt: now + retentionSeconds * 1000,
    })
  }

  async appendCampaignRecipients (id: string, recipients: { to: string, payload: string }[]): Promise<boolean[]> {
    const c = this.campaign(id)
    if (!c) throw new Error('no such campaign')
    return recipients.map(r => {
      if (c.numbers.has(r.to)) return false
      c.numbers.add(r.to)
      c.recipients.push(r.payload)
      return true
    })
  }

  async claimCampaignRecipients (id: string, count: number, now: number, leaseUntil: number): Promise<ClaimedChunk | null> {
    const c = this.campaign(id)
    if (!c || c.status !== 'running') return null
    return claimChunk(c.recipients, c.chunks, count, now, leaseUntil)
  }

  async renewCampaignChunk (id: string, lease: ChunkLease, until: number): Promise<boolean> {
    const c = this.campaign(id)
    if (!c || !holds(c.chunks, lease)) return false
    c.chunks.leases.set(`${lease.start}:${lease.count}`, until)
    return true
  }

  async countCampaignRecipients (id: string, lease: ChunkLease, handled: HandledRecipient[], { at, finish = false }: { at: number, finish?: boolean }): Promise<number | null> {
    const c = this.campaign(id)
    if (!c || !holds(c.chunks, lease)) return null
    if (finish) c.chunks.leases.delete(`${lease.start}:${lease.count}`)
    let n = 0
    for (const h of handled) {
      if (c.handled.has(h.index)) continue
      c.handled.add(h.index)
      n++
      if (h.lookup) bump(c, `lookups:${h.lookup}`)
      if ('notification' in h) {
        bump(c, `channel:${h.notification.channel}`)
        countMade(c, h.notification.id)
        if (h.notification.final) countFinal(c, h.notification.id, h.notification.final)
      } else {
        bump(c, 'recipients_failed')
        if (!c.failures.has(h.index)) c.failures.set(h.index, { ...h.failure })
      }
    }
    if (n === 0) return 0
    bump(c, 'processed', n)
    bump(c, `minute:${Math.floor(at / 60_000)}`, n)
    if (c.failures.size > CAMPAIGN_FAILURES_KEPT) {
      for (const index of [...c.failures.keys()].sort((a, b) => a - b).slice(CAMPAIGN_FAILURES_KEPT)) c.failures.delete(index)
    }
    return n
  }

  async countCampaign (id: string, counts: Record<string, number>): Promise<void> {
    const c = this.campaign(id)
    if (!c) return
    for (const [field, n] of Object.entries(counts)) if (n !== 0) c.counters.set(field, (c.counters.get(field) ?? 0) + n)
  }

  async countCampaignFinal (id: string, notificationId: string, status: NotificationStatus): Promise<boolean> {
    const c = this.campaign(id)
    return c ? countFinal(c, notificationId, status) : false
  }

  async reopenCampaignFinal (id: string, notificationId: string, status: NotificationStatus): Promise<boolean> {
    const c = this.campaign(id)
    const was = c?.counted.get(notificationId)
    if (!c || was?.status !== status) return false
    if (was.made) {
      c.counted.set(notificationId, { made: true, status: null })
      bump(c, `status:${status}`, -1)
    } else {
      c.counted.delete(notificationId)
    }
    return true
  }

  async campaignFailures (id: string): Promise<CampaignFailure[]> {
    const c = this.campaign(id)
    return c ? [...c.failures.values()].map(f => ({ ...f })).sort((a, b) => a.index - b.index) : []
  }

  async setCampaignStatus (id: string, to: CampaignStatus, from: readonly CampaignStatus[], at: string): Promise<{ changed: boolean, status: CampaignStatus | null }> {
    const c = this.campaign(id)
    if (!c) return { changed: false, status: null }
    if (!from.includes(c.status)) return { changed: false, status: c.status }
    c.status = to
    if (to === 'running') c.run = { since: at, processed: c.counters.get('processed') ?? 0 }
    return { changed: true, status: to }
  }

  async completeCampaign (id: string, at: string): Promise<boolean> {
    const c = this.campaign(id)
    if (!c) return false
    if (c.status === 'completed') return true
    if (c.status !== 'running' || c.chunks.next < c.recipients.length || c.chunks.leases.size > 0) return false
    if ((c.counters.get('processed') ?? 0) < (c.counters.get('recipients_accepted') ?? 0)) return false
    c.status = 'completed'
    c.completedAt = at
    // As in Redis: the recipients go, the record and counts stay for the retention.
    dropRecipients(c)
    return true
  }

  async releaseCancelledCampaign (id: string, now: number): Promise<boolean> {
    const c = this.campaign(id)
    if (!c || c.status !== 'cancelled') return false
    if ([...c.chunks.leases.values()].some(until => until > now)) return false
    dropRecipients(c)
    c.chunks.leases.clear()
    return true
  }

  async getCampaign (id: string): Promise<CampaignRecord | null> {
    const c = this.campaign(id)
    if (!c) return null
    return { doc: structuredClone(c.doc), status: c.status, counters: Object.fromEntries(c.counters), completed_at: c.completedAt, run: c.run && { ...c.run } }
  }

  async listCampaigns (after: Position | undefined, limit: number): Promise<ListedCampaign[]> {
    const now = this.now()
    const listed = new Map([...this.campaigns.values()].filter(c => c.expiresAt > now).map(c => [c.doc.id, Date.parse(c.doc.created_at)]))
    return rangeAfter(listed, -Infinity, Infinity, after, limit).map(([id, createdMs]) => ({ id, createdMs }))
  }

  async activeCampaigns (): Promise<string[]> {
    return [...this.campaignsActive]
  }

  async setCampaignActive (id: string, active: boolean): Promise<void> {
    if (active) this.campaignsActive.add(id)
    else this.campaignsActive.delete(id)
  }

  async finishIdempotency (ref: IdempotencyRef, token: string, requestHash: string, response: string, ttlSeconds: number): Promise<boolean> {
    const key = `${ref.shard}:${ref.key}`
    if (this.idempotency.get(key)?.token !== token) return false
    this.idempotency.set(key, { state: 'done', requestHash, response }, ttlSeconds * 1000)
    return true
  }

  async wakeFallback (shard: number, notificationIds: string[], now: number): Promise<number> {
    const queue = this.sorted(this.fallbacks, shard)
    const leased = this.sorted(this.leased, shard)
    let woken = 0
    for (const id of notificationIds) {
      if (queue.has(id)) {
        if (queue.get(id) === now) continue
        queue.set(id, now)
      } else if (leased.has(id)) {
        this.sorted(this.woken, shard).set(id, now)
      } else {
        continue
      }
      woken++
    }
    return woken
  }

  async watchNumber (phoneNumber: string, notificationId: string, untilMs: number): Promise<void> {
    const set = this.watching.get(phoneNumber) ?? new Set()
    set.add(notificationId)
    this.watching.set(phoneNumber, set, Math.max(untilMs - this.now(), this.watching.ttl(phoneNumber)))
  }

  async unwatchNumber (phoneNumber: string, notificationId: string): Promise<number> {
    const set = this.watching.get(phoneNumber)
    set?.delete(notificationId)
    return set?.size ?? 0
  }

  async watchers (phoneNumber: string): Promise<string[]> {
    return [...(this.watching.get(phoneNumber) ?? [])]
  }

  async watchedUntil (phoneNumber: string): Promise<number | null> {
    return (this.watching.get(phoneNumber)?.size ?? 0) > 0 ? this.now() + this.watching.ttl(phoneNumber) : null
  }

  async getSubscriptions (phoneNumber: string): Promise<Record<string, string>> {
    const subs = this.subscriptions.get(phoneNumber) ?? new Map<string, SubscriptionSlot>()
    return Object.fromEntries([...subs].flatMap(([type, slot]) => slot.id === undefined ? [] : [[type, slot.id]]))
  }

  async claimSubscription (phoneNumber: string, type: string, untilMs: number): Promise<string | null> {
    const subs = this.subscriptions.get(phoneNumber) ?? new Map<string, SubscriptionSlot>()
    const slot = subs.get(type) ?? {}
    if ((slot.id !== undefined && slot.untilMs! >= untilMs) || (slot.claim && slot.claim.untilMs >= untilMs)) return null
    const token = randomUUID()
    subs.set(type, { ...slot, claim: { token, untilMs } })
    this.keepSubscriptions(phoneNumber, subs, untilMs)
    return token
  }

  async releaseSubscriptionClaim (phoneNumber: string, type: string, claim: string): Promise<void> {
    const slot = this.subscriptions.get(phoneNumber)?.get(type)
    if (slot?.claim?.token === claim) delete slot.claim
  }

  async setSubscription (phoneNumber: string, type: string, claim: string, subscriptionId: string, untilMs: number): Promise<{ stored: boolean, replaced: string | null }> {
    const subs = this.subscriptions.get(phoneNumber)
    const slot = subs?.get(type)
    if (!subs || slot?.claim?.token !== claim) return { stored: false, replaced: null }
    subs.set(type, { id: subscriptionId, untilMs })
    this.keepSubscriptions(phoneNumber, subs, untilMs)
    this.subscriptionNumbers.set(subscriptionId, phoneNumber, untilMs - this.now())
    const replaced = slot.id !== undefined && slot.id !== subscriptionId ? slot.id : null
    if (replaced !== null) this.subscriptionNumbers.delete(replaced)
    return { stored: true, replaced }
  }

  async dropSubscriptions (phoneNumber: string, subscriptionId?: string): Promise<Record<string, string>> {
    const subs = this.subscriptions.get(phoneNumber) ?? new Map<string, SubscriptionSlot>()
    const dropped: Record<string, string> = {}
    for (const [type, slot] of subs) {
      if (subscriptionId !== undefined && slot.id !== subscriptionId) continue
      if (slot.id !== undefined) {
        dropped[type] = slot.id
        this.subscriptionNumbers.delete(slot.id)
      }
      // One subscription dropped keeps the type's creation in flight; dropping them all ends it too.
      if (subscriptionId !== undefined && slot.claim) subs.set(type, { claim: slot.claim })
      else subs.delete(type)
    }
    return dropped
  }

  async subscriptionNumber (subscriptionId: string): Promise<string | null> {
    return this.subscriptionNumbers.get(subscriptionId) ?? null
  }

  async eventSeen (eventKey: string): Promise<boolean> {
    return this.sightings.get(eventKey) === true
  }

  async parkSubscriptionEvent (subscriptionId: string, event: string, ttlSeconds: number, most: number): Promise<boolean> {
    if (this.subscriptionNumbers.get(subscriptionId) !== undefined) return false
    const parked = this.earlyEvents.get(subscriptionId) ?? []
    if (parked.length < most) this.earlyEvents.set(subscriptionId, [...parked, event], ttlSeconds * 1000)
    return true
  }

  async takeSubscriptionEvents (subscriptionId: string): Promise<string[]> {
    const parked = this.earlyEvents.get(subscriptionId) ?? []
    this.earlyEvents.delete(subscriptionId)
    return parked
  }

  async markEventSeen (eventKey: string, ttlSeconds: number): Promise<void> {
    this.sightings.set(eventKey, true, ttlSeconds * 1000)
  }

  private keepSubscriptions (phoneNumber: string, subs: Map<string, SubscriptionSlot>, untilMs: number): void {
    this.subscriptions.set(phoneNumber, subs, Math.max(untilMs - this.now(), this.subscriptions.ttl(phoneNumber)))
  }

  async ping (): Promise<void> {}

  async close (): Promise<void> {
    clearInterval(this.sweeper)
  }

  private campaign (id: string): CampaignEntry | undefined {
    const c = this.campaigns.get(id)
    return c && c.expiresAt > this.now() ? c : undefined
  }

  private shardOf (id: string): number {
    return shardOfId(id, this.shards) ?? 0
  }

  private stream (shard: number, lane: Lane): Map<string, StreamEntry> {
    const key = `${shard}:${lane}`
    let stream = this.streams.get(key)
    if (!stream) this.streams.set(key, stream = new Map())
    return stream
  }

  private append (shard: number, lane: Lane, notificationId: string): void {
    this.stream(shard, lane).set(`${this.now()}-${this.sequence++}`, { notificationId, consumer: null, deliveredAt: 0, deliveries: 0 })
  }

  /** One shard's sorted set, as a map of member to score. */
  private sorted (sets: Map<number, Map<string, number>>, shard: number): Map<string, number> {
    let set = sets.get(shard)
    if (!set) sets.set(shard, set = new Map())
    return set
  }

  private schedule (shard: number, id: string, next: JobTarget, at: number): void {
    switch (next.kind) {
      case 'outbox': return this.append(shard, next.lane, id)
      case 'retry': this.sorted(this.retries, shard).set(`${next.lane}|${id}`, next.dueAt); return
      case 'fallback': {
        this.sorted(this.fallbacks, shard).set(id, next.dueAt)
        const since = this.sorted(this.fallbackSince, shard)
        if (!since.has(id)) since.set(id, at)
        return
      }
      case 'none': return
    }
  }
}

/** A page of a sorted set (member → score) by score, ties by member, between min and max, after `after`, as Redis's RANGE_AFTER. */
function rangeAfter (set: Map<string, number>, min: number, max: number, after: Position | undefined, limit: number): [string, number][] {
  return [...set]
    .filter(([member, score]) => score >= min && score <= max &&
      (!after || score > after.score || (score === after.score && member > after.member)))
    .sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : 1))
    .slice(0, limit)
}
