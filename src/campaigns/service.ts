import { randomUUID } from 'node:crypto'
import { ConflictError, NoRecipientTakenError, NotFoundError, UnprocessableError } from '../domain/errors.js'
import { type Page, type Position, pageAcrossShards } from '../domain/paging.js'
import { idempotencyRef } from '../notifications/ids.js'
import { FINAL_STATUSES, type NotificationMessage, type NotificationStatus, type Routing } from '../notifications/types.js'
import { usableChannels } from '../routing/decide.js'
import { countAndSettle } from './count-sweeper.js'
import type { CampaignDoc, CampaignFailure, CampaignRecord, CampaignStatus, IdempotencyRef, Store } from '../store/store.js'

/** The first part of a campaign: what to send and how to route it. */
export interface CampaignHeader {
  name: string
  message: NotificationMessage
  routing: Routing
}

/** One recipient as stored: the number, its push token and the values of the message's placeholders. */
export interface Recipient {
  to: string
  push_token?: string | undefined
  vars?: Record<string, string> | undefined
}

/** A recipient line as the caller gave it: valid, or refused with the reason. */
export type RecipientLine = { line: number, recipient: Recipient } | { line: number, reason: string }

export interface RejectedLine {
  line: number
  reason: string
}

export interface CreateAnswer {
  id: string
  status: CampaignStatus
  recipients_accepted: number
  recipients_rejected: number
  rejected: RejectedLine[]
}

export interface CampaignView {
  id: string
  name: string
  status: CampaignStatus
  created_at: string
  completed_at: string | null
  recipients: { total: number, accepted: number, rejected: number, processed: number, failed: number }
  notifications: { created: number, by_status: Record<string, number>, by_channel: Record<string, number> }
  lookups: { cache: number, upstream: number }
  rate_per_minute: number
  estimated_seconds_left: number | null
}

export interface CampaignServiceOptions {
  store: Store
  retentionSeconds: number
  idempotencyTtlSeconds: number
  /** Recipients appended to the store at once while a campaign is read in. */
  chunkSize?: number
  /** How long a cancellation may go unseen by a delivery worker of this process. */
  cancelledCacheMs?: number
  now?: () => number
  /** Told when a campaign starts running (wakes this process's runner). */
  onStarted?: () => void
  /**
   * How long an Idempotency-Key is held while the campaign's recipients are read in (600 s by default): at least as
   * long as the request may take (REQUEST_TIMEOUT_MS), or a retry could take the key meanwhile and start the
   * campaign a second time.
   */
  idempotencyClaimSeconds?: number
  /** Told when a started campaign's answer could not be kept under its Idempotency-Key (logged). Must not throw. */
  onIdempotencyUnsaved?: (campaignId: string, err: unknown) => void
}

export const MAX_REJECTED_KEPT = 100
const ID = /^cmp_[0-9a-f]{32}$/
const COUNTED_FINALS = [...FINAL_STATUSES, 'sent'] as const
/** The counter that marks a campaign whose request failed while it was read in. */
const ABANDONED = 'abandoned'

/** Creates campaigns from a header and a stream of recipients, and reads, lists, pauses, resumes and cancels them. */
export class CampaignService {
  private readonly now: () => number
  private readonly cancelled = new Map<string, { cancelled: boolean, until: number }>()

  constructor (private readonly options: CampaignServiceOptions) {
    this.now = options.now ?? Date.now
  }

  /**
   * Reads the recipients in, chunk by chunk (never all in memory), and starts the campaign. A number listed
   * twice is taken once; refused lines are counted and the first MAX_REJECTED_KEPT kept with their reason.
   * With an Idempotency-Key the same key and request hash answer the first answer again. The hash is of the
   * whole request, known once its recipients are read to their end (`requestHash` reads what is left of them).
   * A campaign none of whose recipients can be taken is refused (NoRecipientTakenError): recipients given whole (an
   * array) before anything is stored or claimed; streamed ones once read, the campaign then abandoned as any upload
   * that fails.
   */
  async create (owner: string, header: CampaignHeader, recipients: AsyncIterable<RecipientLine> | Iterable<RecipientLine>,
    idempotency?: { key: string, requestHash: () => Promise<string> }): Promise<{ answer: CreateAnswer, replayed: boolean }> {
    // Push needs each recipient's token: a channel is usable here if some recipient could give what it needs.
    if (usableChannels({ to: '', message: header.message, routing: header.routing, push_token: 'given by a recipient' }).size === 0) {
      throw new UnprocessableError('no channel can carry this campaign\'s message: give SMS text, or push content (each recipient gives its push_token), on a channel that routing.channels allows')
    }
    if (Array.isArray(recipients)) refuseIfNoneValid(recipients as RecipientLine[])
    const { store } = this.options
    let idem: (IdempotencyRef & { token: string, requestHash: () => Promise<string> }) | undefined
    if (idempotency) {
      const scoped = `${owner}\u0000campaign\u0000${idempotency.key}`
      const ref = idempotencyRef(scoped, store.shards)
      // A million recipients take a while to read in: the claim lasts as long as the request may. Their hash is not
      // known yet: the claim holds none.
      const claim = await store.claimIdempotency(ref, '', this.options.idempotencyClaimSeconds ?? 600)
      if (claim.state === 'in_flight') throw new ConflictError('a request with this Idempotency-Key is still in flight', claim.retryAfterSeconds)
      if (claim.state === 'done') {
        if (claim.requestHash !== await idempotency.requestHash()) throw new UnprocessableError('this Idempotency-Key was used with another request')
        return { answer: JSON.parse(claim.response) as CreateAnswer, replayed: true }
      }
      idem = { ...ref, token: claim.token, requestHash: idempotency.requestHash }
    }
    let answer: CreateAnswer
    try {
      answer = await this.readIn(owner, header, recipients)
    } catch (err) {
      if (idem) await store.releaseIdempotency(idem, idem.token).catch(() => {})
      throw err
    }
    if (idem) {
      // The campaign is running: its 202 stands even if the answer cannot be stored now. Releasing the key would let
      // a retry start it a second time; the claim is kept instead (a retry is a 409 until the claim runs out).
      const saved = await store.finishIdempotency(idem, idem.token, await idem.requestHash(), JSON.stringify(answer), this.options.idempotencyTtlSeconds)
        .catch((err: unknown) => { this.options.onIdempotencyUnsaved?.(answer.id, err); return true })
      if (!saved) this.options.onIdempotencyUnsaved?.(answer.id, new Error('the Idempotency-Key\'s claim ran out while the recipients were read in, and another request may hold it'))
    }
    return { answer, replayed: false }
  }

  private async readIn (owner: string, header: CampaignHeader, recipients: AsyncIterable<RecipientLine> | Iterable<RecipientLine>): Promise<CreateAnswer> {
    const doc: CampaignDoc = {
      id: `cmp_${randomUUID().replaceAll('-', '')}`, owner, name: header.name, message: header.message, routing: header.routing,
      created_at: new Date(this.now()).toISOString(),
    }
    await this.options.store.createCampaign(doc, this.options.retentionSeconds)
    try {
      return await this.fill(doc, recipients)
    } catch (err) {
      await this.abandon(doc.id)
      throw err
    }
  }

  /**
   * A campaign whose request failed (its body cut short, a line too long, the store gone): the caller was told
   * it does not exist, so it is cancelled (nothing of it is sent) and no longer shown. A store that does not
   * answer leaves it as it is: never started, no runner takes it.
   */
  private async abandon (id: string): Promise<void> {
    const { store } = this.options
    try {
      const { status } = await store.setCampaignStatus(id, 'cancelled', ['accepted', 'running'], new Date(this.now()).toISOString())
      if (status !== 'cancelled') return
      this.cancelled.set(id, { cancelled: true, until: this.now() + (this.options.cancelledCacheMs ?? 1000) })
      await store.countCampaign(id, { [ABANDONED]: 1 })
      // Never run: what was read in of its recipients goes now, not at the end of the retention.
      await store.releaseCancelledCampaign(id, this.now())
    } catch {
      // The request's own error is the one to answer with.
    }
  }

  /** Reads the recipients into the campaign just created, and starts it. */
  private async fill (doc: CampaignDoc, recipients: AsyncIterable<RecipientLine> | Iterable<RecipientLine>): Promise<CreateAnswer> {
    const { store } = this.options
    const chunkSize = this.options.chunkSize ?? 1000
    const rejected: RejectedLine[] = []
    let accepted = 0
    let refused = 0
    // The first lines refused, by line: a duplicate is found only when its chunk is written, after later lines
    // refused on the spot, so a full list gives way for a lower line.
    const reject = (line: number, reason: string) => {
      refused++
      if (rejected.length < MAX_REJECTED_KEPT) {
        rejected.push({ line, reason })
        return
      }
      let highest = 0
      for (let i = 1; i < rejected.length; i++) if (rejected[i]!.line > rejected[highest]!.line) highest = i
      if (line < rejected[highest]!.line) rejected[highest] = { line, reason }
    }
    // Only the number and the stored form are kept until the chunk is written: the parsed recipient dies young.
    let chunk: { line: number, to: string, payload: string }[] = []
    // Lines refused on the spot since the last write: counted with the next one, not a store call each.
    let refusedSince = 0
    const flush = async () => {
      if (chunk.length === 0 && refusedSince === 0) return
      const added = chunk.length > 0 ? await store.appendCampaignRecipients(doc.id, chunk) : []
      let n = 0
      added.forEach((ok, i) => {
        if (ok) n++
        else reject(chunk[i]!.line, 'duplicate of an earlier recipient')
      })
      accepted += n
      await store.countCampaign(doc.id, { recipients_total: chunk.length + refusedSince, recipients_accepted: n, recipients_rejected: chunk.length - n + refusedSince })
      chunk = []
      refusedSince = 0
    }
    for await (const item of recipients) {
      if ('reason' in item) {
        reject(item.line, item.reason)
        if (++refusedSince >= chunkSize) await flush()
        continue
      }
      chunk.push({ line: item.line, to: item.recipient.to, payload: JSON.stringify(item.recipient) })
      if (chunk.length >= chunkSize) await flush()
    }
    await flush()
    // Every line refused: a campaign of nobody, refused as a JSON body's is (and, read in already, abandoned).
    if (accepted === 0 && refused > 0) throw new NoRecipientTakenError(rejected.sort((a, b) => a.line - b.line), refused)
    const at = new Date(this.now()).toISOString()
    await store.setCampaignActive(doc.id, true)
    const { status } = await store.setCampaignStatus(doc.id, 'running', ['accepted'], at)
    this.options.onStarted?.()
    return { id: doc.id, status: status ?? 'running', recipients_accepted: accepted, recipients_rejected: refused, rejected: rejected.sort((a, b) => a.line - b.line) }
  }

  /** The campaign's progress and the failed recipients kept with their reasons. */
  async get (id: string): Promise<CampaignView & { failures: CampaignFailure[] }> {
    const [record, failures] = await Promise.all([this.record(id), this.options.store.campaignFailures(id)])
    return { ...view(record, this.now()), failures }
  }

  /**
   * A page of campaigns, oldest first. The cursor names the last campaign given (its creation time and id), so
   * campaigns that leave the head of the list past their retention never shift the next page.
   */
  async list (cursor: string | undefined, limit: number): Promise<Page<CampaignView>> {
    const { store } = this.options
    // One list, read as a single shard; a page is filled past campaigns no longer shown (gone, or abandoned).
    return pageAcrossShards(1, cursor, limit, async (_shard, after, count) => {
      const shown: { at: Position, item: CampaignView }[] = []
      while (shown.length < count) {
        const wanted = count - shown.length
        const listed = await store.listCampaigns(after, wanted)
        const records = await Promise.all(listed.map(c => store.getCampaign(c.id)))
        const now = this.now()
        records.forEach((r, i) => {
          if (r && !abandoned(r)) shown.push({ at: { score: listed[i]!.createdMs, member: listed[i]!.id }, item: view(r, now) })
        })
        if (listed.length < wanted) break
        const last = listed.at(-1)!
        after = { score: last.createdMs, member: last.id }
      }
      return shown
    })
  }

  pause (id: string): Promise<CampaignView> {
    return this.move(id, 'paused', ['running'])
  }

  resume (id: string): Promise<CampaignView> {
    return this.move(id, 'running', ['paused'])
  }

  /** Cancels the campaign: no more recipients are taken, and its notifications not yet sent are dropped. */
  cancel (id: string): Promise<CampaignView> {
    return this.move(id, 'cancelled', ['accepted', 'running', 'paused'])
  }

  /**
   * Counts a campaign notification's final status (from the delivery worker or the fallback scheduler): once per
   * notification, in its latest final status (see countAndSettle). Resolves whether the status it is counted in changed.
   */
  async countFinal (campaignId: string, notificationId: string, status: NotificationStatus): Promise<boolean> {
    return countAndSettle(this.options.store, { campaignId, notificationId, status })
  }

  /** Whether the campaign was cancelled, as this process saw it at most cancelledCacheMs ago. */
  async isCancelled (campaignId: string): Promise<boolean> {
    const now = this.now()
    const held = this.cancelled.get(campaignId)
    if (held && held.until > now) return held.cancelled
    const record = await this.options.store.getCampaign(campaignId)
    const cancelled = record?.status === 'cancelled'
    if (this.cancelled.size > 10_000) this.cancelled.clear()
    this.cancelled.set(campaignId, { cancelled, until: now + (this.options.cancelledCacheMs ?? 1000) })
    return cancelled
  }

  private async move (id: string, to: CampaignStatus, from: readonly CampaignStatus[]): Promise<CampaignView> {
    await this.record(id)
    const result = await this.options.store.setCampaignStatus(id, to, from, new Date(this.now()).toISOString())
    if (result.status === null) throw new NotFoundError(`no campaign ${id}`)
    if (!result.changed) throw new ConflictError(`the campaign is ${result.status}: it cannot be ${to === 'running' ? 'resumed' : to} (only from ${from.join(' or ')})`)
    if (to === 'cancelled') this.cancelled.set(id, { cancelled: true, until: this.now() + (this.options.cancelledCacheMs ?? 1000) })
    if (to === 'running') this.options.onStarted?.()
    return this.get(id)
  }

  private async record (id: string): Promise<CampaignRecord> {
    const record = ID.test(id) ? await this.options.store.getCampaign(id) : null
    if (!record || abandoned(record)) throw new NotFoundError(`no campaign ${id} (ids look like cmp_…; campaigns are kept for a limited time)`)
    return record
  }
}

/** Recipients given whole: none valid is refused before anything is stored (the first MAX_REJECTED_KEPT named). */
function refuseIfNoneValid (recipients: RecipientLine[]): void {
  if (recipients.length === 0 || recipients.some(r => 'recipient' in r)) return
  const rejected = recipients.slice(0, MAX_REJECTED_KEPT).map(r => ({ line: r.line, reason: 'reason' in r ? r.reason : '' }))
  throw new NoRecipientTakenError(rejected, recipients.length)
}

/**
 * Whether the campaign is none of its caller's business: its request failed while it was read in (see abandon),
 * or it is still `accepted`, never started. Its caller has no id before the 202, which comes once it runs; one
 * left `accepted` is an upload cut off with the process or with the store (which then could not take the abandon).
 */
function abandoned (r: CampaignRecord): boolean {
  return r.status === 'accepted' || (r.counters[ABANDONED] ?? 0) > 0
}

/** A run's first minute is shown as a rate once it is this long: a rate of a few milliseconds would be noise. */
const MIN_RUN_MS = 1000

/**
 * Recipients processed a minute. Over the last minute: this minute's count and the part of the last minute's still
 * inside the window. But in a run's first minute (the campaign started or resumed less than a minute ago) those
 * minutes hold less than a minute of the run, and a few seconds' count read as a minute's made the estimate many
 * times too long: the rate is then the run's own, the recipients processed since it began over the time it has run.
 */
function ratePerMinute (r: CampaignRecord, now: number): number {
  const c = r.counters
  const ranMs = r.run && r.status === 'running' ? now - Date.parse(r.run.since) : Infinity
  if (ranMs < 60_000) return Math.round(Math.max(0, (c.processed ?? 0) - r.run!.processed) * 60_000 / Math.max(ranMs, MIN_RUN_MS))
  const minute = Math.floor(now / 60_000)
  const into = (now % 60_000) / 60_000
  return Math.round((c[`minute:${minute}`] ?? 0) + (c[`minute:${minute - 1}`] ?? 0) * (1 - into))
}

function view (r: CampaignRecord, now: number): CampaignView {
  const c = r.counters
  const n = (k: string) => c[k] ?? 0
  const byChannel = { push: n('channel:push'), sms: n('channel:sms'), fallback_queue: n('channel:fallback_queue'), none: n('channel:none') }
  const created = byChannel.push + byChannel.sms + byChannel.fallback_queue + byChannel.none
  const byStatus: Record<string, number> = Object.fromEntries(COUNTED_FINALS.map(s => [s, n(`status:${s}`)]))
  byStatus.in_progress = Math.max(0, created - Object.values(byStatus).reduce((a, b) => a + b, 0))
  const rate = ratePerMinute(r, now)
  const left = Math.max(0, n('recipients_accepted') - n('processed'))
  const running = r.status === 'running' || r.status === 'accepted'
  return {
    id: r.doc.id,
    name: r.doc.name,
    status: r.status,
    created_at: r.doc.created_at,
    completed_at: r.completed_at,
    recipients: { total: n('recipients_total'), accepted: n('recipients_accepted'), rejected: n('recipients_rejected'), processed: n('processed'), failed: n('recipients_failed') },
    notifications: { created, by_status: byStatus, by_channel: byChannel },
    lookups: { cache: n('lookups:cache'), upstream: n('lookups:upstream') },
    rate_per_minute: rate,
    estimated_seconds_left: left === 0 ? 0 : running && rate > 0 ? Math.ceil(left / (rate / 60)) : null,
  }
}
