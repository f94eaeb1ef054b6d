import { setTimeout as sleep } from 'node:timers/promises'
import pLimit from 'p-limit'
import { type RenewLease, workChunk } from '../queue/chunk-lease.js'
import { StoppablePollingLoop } from '../queue/polling-loop.js'
import { AppError, ConflictError, StoreUnavailableError, UpstreamUnavailableError } from '../domain/errors.js'
import type { ReachabilityResult } from '../domain/reachability.js'
import type { AcceptOptions, NotificationService } from '../notifications/service.js'
import { isFinal, type NotificationStatus } from '../notifications/types.js'
import type { UpstreamRateLimiter } from '../reachability/rate-limit.js'
import type { ReachabilityService } from '../reachability/service.js'
import type { CampaignDoc, ClaimedChunk, HandledRecipient, RecipientNotification, Store } from '../store/store.js'
import { ChunkTally } from './chunk-tally.js'
import { fillMessage } from './placeholders.js'
import type { Recipient } from './service.js'

/** How long a recipient waits for a store that does not answer before it is counted as failed. */
const STORE_PATIENCE_MS = 30_000

export interface CampaignRunnerOptions {
  store: Store
  notifications: NotificationService
  reachability: ReachabilityService
  /** The upstream budget shared with every process: each upstream lookup waits for one of its tokens. */
  limiter: UpstreamRateLimiter
  /** Recipients handled at once. */
  concurrency: number
  /** Recipients claimed at once from a campaign; pause and cancel are seen between chunks. */
  chunkSize: number
  /** How long a claimed chunk stays this runner's without a renewal (renewed while it is worked on); past it, another runner takes it. */
  leaseMs?: number
  /** How long stop() lets the chunk under way finish before it lets go and gives the chunk back (STOP_GRACE_MS, 5 s). */
  stopGraceMs?: number
  pollMs: number
  /**
   * How often, at most, a chunk's recipients handled so far are counted while it is worked on (PROGRESS_MS, 250 ms):
   * progress moves on as its recipients are handled, not a chunk at a time, for one store call per this much time.
   */
  progressMs?: number
  now?: () => number
  /** Told how many recipients this runner counted (progress metrics). */
  onProcessed?: (n: number) => void
  /**
   * Told of a notification this runner made that was final at once (failed for an invalid number, dropped when
   * unreachable with on_unreachable drop), not of one answered again from its idempotency record (metrics).
   */
  onFinalAtAccept?: (status: NotificationStatus) => void
  log?: { warn: (obj: object, msg: string) => void }
  /**
   * How long a recipient's idempotency record is kept once its chunk is counted (default: as the notification
   * service keeps any). Only a runner that lost the chunk's lease and woke up after that could still need it.
   */
  countedKeysTtlSeconds?: number
  /**
   * How long a campaign is kept (NOTIFICATION_RETENTION_SECONDS). A recipient's idempotency record is kept as long
   * until its chunk is counted: a chunk whose runner died is taken again whenever the campaign runs again (resumed
   * the next day, say), and its recipients notified before must be answered, not notified twice. Default: as the
   * notification service keeps any record.
   */
  retentionSeconds?: number
  /**
   * How long a recipient's Idempotency-Key claim holds while its notification is accepted (default
   * CAMPAIGN_CLAIM_SECONDS). A runner that dies mid-accept holds that recipient, and so its chunk, this long. A
   * claim that runs out under a slow accept costs no duplicate: the accept checks its claim is still its own.
   */
  claimSeconds?: number
}

/** An accept takes milliseconds: a few seconds covers a slow store, and a runner that died holds its recipient no longer. */
const CAMPAIGN_CLAIM_SECONDS = 5

/** How often, at most, the recipients of a chunk handled so far are counted while the chunk is worked on. */
const PROGRESS_MS = 250

/** A chunk a stopping runner let go of before it was done: left unfinished, given back (or left to its lease to run out). */
class ChunkLetGo extends Error {
  constructor (cause: unknown, readonly givenBack: boolean) {
    super('the runner let go of the chunk before every recipient was handled', { cause })
  }
}

/** The Idempotency-Key a campaign's recipient is accepted under (with a NUL, which no caller's header can hold). */
export function recipientKey (campaignId: string, index: number): string {
  return `\u0000campaign ${campaignId} ${index}`
}

/**
 * Turns the recipients of running campaigns into notifications, a chunk of each campaign in turn: the
 * cache first, on a miss a token of the shared upstream budget and then an upstream lookup, then the
 * notification accepted into the bulk lanes. A chunk is held under a lease: one whose runner died is taken
 * again by another, and each recipient's notification is accepted under a key made of the campaign and the
 * recipient's place in it, so a recipient handled twice still has one notification. Its recipients are counted as
 * they are handled (a few times a second, see ChunkTally), each once, only by the runner holding the chunk's lease;
 * the last count ends the lease. Completes a campaign once every chunk is finished.
 * stop() lets the chunk under way finish for up to stopGraceMs (5 s: within the API's 10 s of shutdown grace), so it
 * is counted by this runner. Past that, the runner starts no more of its recipients, those under way stop waiting
 * (for the upstream budget, a failing store, a claim held elsewhere), and the chunk is given back unfinished (its
 * lease ended): another runner takes it at once and works it through whole, its recipients already accepted answered
 * by their keys (the notification made here, not a second one); those counted here already are not counted again.
 */
export class CampaignRunner extends StoppablePollingLoop {
  private readonly limit: ReturnType<typeof pLimit>

  constructor (private readonly options: CampaignRunnerOptions) {
    // Each recipient under way listens to the stop signal while it waits (one wait at a time).
    super(options.pollMs, err => options.log?.warn({ err }, 'campaign runner: the store failed; trying again'), options.now,
      options.concurrency + 10, options.stopGraceMs)
    this.limit = pLimit(options.concurrency)
  }

  /** One chunk of each running campaign; resolves whether there was anything to do. */
  protected async tick (): Promise<boolean> {
    const { store } = this.options
    let worked = false
    for (const id of await store.activeCampaigns()) {
      if (!this.running) break
      const campaign = await store.getCampaign(id)
      // A cancelled one leaves the active set once its recipients are released (no chunk still in hand).
      if (campaign?.status === 'cancelled' && !(await store.releaseCancelledCampaign(id, this.now()))) continue
      if (!campaign || campaign.status === 'completed' || campaign.status === 'cancelled') {
        await store.setCampaignActive(id, false)
        continue
      }
      if (campaign.status !== 'running') continue
      const now = this.now()
      const leaseMs = this.options.leaseMs ?? 60_000
      const chunk = await store.claimCampaignRecipients(id, this.options.chunkSize, now, now + leaseMs)
      if (chunk) {
        worked = true
        try {
          await this.work(campaign.doc, chunk, leaseMs)
        } catch (err) {
          if (this.running) throw err
          // Stopping, and let go of the chunk (see work), or could not count it within the grace (the store failing:
          // its lease runs out). Its recipients already accepted are answered by their keys to the runner that takes it.
          this.options.log?.warn({ err, campaign: id, start: chunk.lease.start, count: chunk.lease.count, givenBack: err instanceof ChunkLetGo && err.givenBack },
            'campaign runner: stopped before the chunk in hand could be finished; it is left for another runner')
          break
        }
      }
      if (await store.completeCampaign(id, new Date(this.now()).toISOString())) await store.setCampaignActive(id, false)
    }
    return worked
  }

  /**
   * Processes a claimed chunk under its lease, counting its recipients as they are handled, and finishes it with the
   * last count, if this runner still holds the lease. A chunk let go of (the runner stopping) is given back unfinished
   * (its recipients counted so far stay counted, once), and this throws a ChunkLetGo.
   */
  private async work (doc: CampaignDoc, chunk: ClaimedChunk, leaseMs: number): Promise<void> {
    const { store } = this.options
    const id = doc.id
    const { start } = chunk.lease
    const renew: RenewLease = (l, until) => store.renewCampaignChunk(id, l, until)
    const tally = new ChunkTally({
      count: (handled, lease, finish) => store.countCampaignRecipients(id, lease, handled, { at: this.now(), finish }),
      everyMs: this.options.progressMs ?? PROGRESS_MS,
      now: this.now,
      onCounted: n => this.options.onProcessed?.(n),
    })
    // A recipient throws only when the runner lets go (see processOrFail).
    const outcome = await workChunk(chunk.items, { lease: chunk.lease, leaseMs, renew, limit: this.limit, lettingGo: () => this.lettingGo, now: this.now },
      async (payload, i, lease) => {
        tally.add(await this.processOrFail(doc, start + i, JSON.parse(payload) as Recipient), lease())
      })
    // Not stopping, a recipient threw on a fault: given back all the same, for the next turn.
    if (!outcome.done) {
      await tally.settled()
      throw this.running ? outcome.reason : new ChunkLetGo(outcome.reason, outcome.givenBack)
    }
    const n = chunk.items.length
    // Until the last count lands the chunk stays leased, and the campaign cannot complete. Only while this runner still
    // holds the lease: one that lost it leaves the recipients it did not count to the runner that took the chunk.
    if (await this.retrying(() => tally.finish(outcome.lease))) {
      // Counted: no runner takes this chunk again, so its recipients' idempotency records have all but done their
      // job (a stalled runner that lost the lease may still be at it). Left to the full TTL, every recipient of the
      // day's campaigns would keep one for a day.
      const ttl = this.options.countedKeysTtlSeconds
      if (ttl !== undefined) {
        await this.options.notifications.shortenIdempotencyKeys(doc.owner, chunk.items.map((_, i) => recipientKey(id, start + i)), ttl)
          .catch((err: unknown) => this.options.log?.warn({ err, campaign: id, start }, 'campaign runner: the chunk\'s idempotency records keep their full time'))
      }
    } else {
      this.options.log?.warn({ campaign: id, start, count: n }, 'campaign runner: the chunk\'s lease ran out and another runner took it; that runner counts the rest of it')
    }
  }

  /**
   * A recipient that still fails after a few tries is counted as failed: the campaign goes on. A store that does
   * not answer (Redis restarting) is waited for, up to STORE_PATIENCE_MS: a short outage must not drop recipients.
   * A runner letting go (its stop grace over) tries no more: the failure ends the chunk unfinished (see work).
   */
  private async processOrFail (doc: CampaignDoc, index: number, recipient: Recipient): Promise<HandledRecipient> {
    const giveUpAt = this.now() + STORE_PATIENCE_MS
    // Looked up once: a recipient tried again is routed on the same answer, and its lookup is counted once.
    let looked: { result: ReachabilityResult | null, source: 'cache' | 'upstream' } | undefined
    const lookup = async (): Promise<ReachabilityResult | null> => {
      looked ??= await this.lookup(recipient.to, doc.routing.max_age)
      return looked.result
    }
    // The recipient as counted: its place, and where its lookup came from when it got that far.
    const handled = () => ({ index, ...(looked ? { lookup: looked.source } : {}) })
    const fail = (reason: string): HandledRecipient => ({ ...handled(), failure: { index, to: recipient.to, reason } })
    for (let attempt = 1; ; attempt++) {
      try {
        const outcome = await this.process(doc, index, recipient, lookup)
        if ('failed' in outcome) return fail(outcome.failed)
        return { ...handled(), notification: outcome.notification }
      } catch (err) {
        if (this.lettingGo) throw err
        const storeAway = err instanceof StoreUnavailableError && this.now() < giveUpAt
        if (!storeAway && attempt >= 3) {
          this.options.log?.warn({ err, campaign: doc.id }, 'campaign runner: a recipient failed')
          return fail(`not accepted after ${attempt} tries: ${(err as Error).message}`)
        }
        await sleep(Math.min(1000, 50 * 2 ** attempt), undefined, { signal: this.stopping.signal })
      }
    }
  }

  /** Tries `work` again after a failure, up to `tries` times; a runner letting go does not try again. */
  private async retrying<T> (work: () => Promise<T>, tries = 20): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await work()
      } catch (err) {
        if (attempt >= tries || this.lettingGo) throw err
        await sleep(Math.min(1000, 50 * 2 ** attempt), undefined, { signal: this.stopping.signal })
      }
    }
  }

  /** The recipient's notification, or why it gets none (a fault throws). */
  private async process (doc: CampaignDoc, index: number, recipient: Recipient, lookup: () => Promise<ReachabilityResult | null>):
    Promise<{ notification: RecipientNotification } | { failed: string }> {
    const filled = fillMessage(doc.message, recipient.vars)
    if ('failed' in filled) return filled
    const reachability = await lookup()
    try {
      const { answer, replayed } = await this.accept(doc, index, {
        to: recipient.to,
        message: filled.message,
        routing: doc.routing,
        ...(recipient.push_token !== undefined ? { push_token: recipient.push_token } : {}),
      }, reachability)
      if (isFinal(answer.status) && !replayed) this.options.onFinalAtAccept?.(answer.status)
      return { notification: { id: answer.id, channel: answer.channel, ...(isFinal(answer.status) ? { final: answer.status } : {}) } }
    } catch (err) {
      // No channel can carry this recipient's message (e.g. push only, and no push token): it fails, the campaign goes on.
      if (!(err instanceof AppError) || err.status !== 422) throw err
      return { failed: err.message }
    }
  }

  /**
   * Accepts the recipient's notification under an idempotency key of the campaign and the recipient's place
   * (recipientKey): done a second time, it answers the first notification. A claim still held by a runner that
   * died or stalled is waited out.
   */
  private async accept (doc: CampaignDoc, index: number, request: Parameters<NotificationService['accept']>[1], reachability: ReachabilityResult | null): ReturnType<NotificationService['accept']> {
    const key = recipientKey(doc.id, index)
    const { retentionSeconds } = this.options
    const options: AcceptOptions = {
      campaignId: doc.id, bulk: true, reachability, claimSeconds: this.options.claimSeconds ?? CAMPAIGN_CLAIM_SECONDS,
      ...(retentionSeconds !== undefined ? { idempotencyTtlSeconds: retentionSeconds } : {}),
    }
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.options.notifications.accept(doc.owner, request, key, options)
      } catch (err) {
        if (!(err instanceof ConflictError) || attempt >= 10 || this.lettingGo) throw err
        await sleep(Math.max(1, Number(err.headers['retry-after'] ?? 1)) * 1000, undefined, { signal: this.stopping.signal })
      }
    }
  }

  /** The cache first; on a miss, a token of the shared budget, then the upstream (null: it gave no answer), and where it came from. */
  private async lookup (phone: string, maxAgeSeconds: number | undefined): Promise<{ result: ReachabilityResult | null, source: 'cache' | 'upstream' }> {
    const { reachability, limiter } = this.options
    try {
      const result = await reachability.lookup(phone, { maxAgeSeconds, beforeUpstream: () => limiter.acquire(this.stopping.signal) })
      return { result, source: result.source === 'cache' ? 'cache' : 'upstream' }
    } catch (err) {
      if (!(err instanceof UpstreamUnavailableError)) throw err
      return { result: null, source: 'upstream' }
    }
  }
}
