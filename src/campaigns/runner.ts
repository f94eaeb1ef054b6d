import { setTimeout as sleep } from 'node:timers/promises'
import pLimit from 'p-limit'
import { PollingLoop } from '../queue/polling-loop.js'
import { AppError, UpstreamUnavailableError } from '../domain/errors.js'
import type { ReachabilityResult } from '../domain/reachability.js'
import type { NotificationService } from '../notifications/service.js'
import { isFinal } from '../notifications/types.js'
import type { UpstreamRateLimiter } from '../reachability/rate-limit.js'
import type { ReachabilityService } from '../reachability/service.js'
import type { CampaignDoc, Store } from '../store/store.js'
import { fillMessage } from './placeholders.js'
import type { Recipient } from './service.js'

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
  pollMs: number
  now?: () => number
  /** Told how many recipients a chunk handled (progress metrics). */
  onProcessed?: (n: number) => void
  log?: { warn: (obj: object, msg: string) => void }
}

/**
 * Turns the recipients of running campaigns into notifications, a chunk of each campaign in turn: the
 * cache first, on a miss a token of the shared upstream budget and then an upstream lookup, then the
 * notification accepted into the bulk lanes. Completes a campaign once every recipient is processed.
 * Recipients claimed by a process that dies before processing them are not taken again (the campaign
 * then stays running with fewer processed than accepted).
 */
export class CampaignRunner {
  private readonly loop: PollingLoop
  private readonly limit: ReturnType<typeof pLimit>
  private readonly now: () => number

  constructor (private readonly options: CampaignRunnerOptions) {
    this.limit = pLimit(options.concurrency)
    this.now = options.now ?? Date.now
    this.loop = new PollingLoop(() => this.tick(), options.pollMs,
      err => this.options.log?.warn({ err }, 'campaign runner: the store failed; trying again'), this.now)
  }

  get lastLoopAt (): number {
    return this.loop.lastTurnAt
  }

  private get running (): boolean {
    return this.loop.running
  }

  start (): void {
    this.loop.start()
  }

  async stop (): Promise<void> {
    await this.loop.stop()
  }

  poke (): void {
    this.loop.poke()
  }

  /** One chunk of each running campaign; resolves whether there was anything to do. */
  async tick (): Promise<boolean> {
    const { store } = this.options
    let worked = false
    for (const id of await store.activeCampaigns()) {
      if (!this.running) break
      const campaign = await store.getCampaign(id)
      if (!campaign || campaign.status === 'completed' || campaign.status === 'cancelled') {
        await store.setCampaignActive(id, false)
        continue
      }
      if (campaign.status !== 'running') continue
      const payloads = await store.claimCampaignRecipients(id, this.options.chunkSize)
      if (payloads.length > 0) {
        worked = true
        const counts: Record<string, number> = {}
        const add = (key: string) => { counts[key] = (counts[key] ?? 0) + 1 }
        await Promise.all(payloads.map(p => this.limit(() => this.processOrFail(campaign.doc, JSON.parse(p) as Recipient, add))))
        counts.processed = payloads.length
        counts[`minute:${Math.floor(this.now() / 60_000)}`] = payloads.length
        // The claimed chunk is this process's alone: its counts must land, or the campaign never completes.
        await this.retrying(() => store.countCampaign(id, counts))
        this.options.onProcessed?.(payloads.length)
      }
      if (await store.completeCampaign(id, new Date(this.now()).toISOString())) await store.setCampaignActive(id, false)
    }
    return worked
  }

  /** A recipient that still fails after a few tries (the store or a lookup away) is counted as failed: the campaign goes on. */
  private async processOrFail (doc: CampaignDoc, recipient: Recipient, add: (key: string) => void): Promise<void> {
    try {
      await this.retrying(() => this.process(doc, recipient, add), 3)
    } catch (err) {
      this.options.log?.warn({ err, campaign: doc.id }, 'campaign runner: a recipient failed')
      add('recipients_failed')
    }
  }

  private async retrying<T> (work: () => Promise<T>, tries = 20): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await work()
      } catch (err) {
        if (attempt >= tries) throw err
        await sleep(Math.min(1000, 50 * 2 ** attempt))
      }
    }
  }

  private async process (doc: CampaignDoc, recipient: Recipient, add: (key: string) => void): Promise<void> {
    const filled = fillMessage(doc.message, recipient.vars)
    if ('missing' in filled) {
      add('recipients_failed')
      return
    }
    const reachability = await this.lookup(recipient.to, doc.routing.max_age, add)
    try {
      const { answer } = await this.options.notifications.accept(doc.owner, {
        to: recipient.to,
        message: filled.message,
        routing: doc.routing,
        ...(recipient.push_token !== undefined ? { push_token: recipient.push_token } : {}),
      }, undefined, { campaignId: doc.id, bulk: true, reachability })
      add(`channel:${answer.channel}`)
      if (isFinal(answer.status)) add(`status:${answer.status}`)
    } catch (err) {
      // No channel can carry this recipient's message (e.g. push only, and no push token): it fails, the campaign goes on.
      if (!(err instanceof AppError) || err.status !== 422) throw err
      add('recipients_failed')
    }
  }

  /** The cache first; on a miss, a token of the shared budget, then the upstream (null: it gave no answer). */
  private async lookup (phone: string, maxAgeSeconds: number | undefined, add: (key: string) => void): Promise<ReachabilityResult | null> {
    const { store, reachability, limiter } = this.options
    const cached = await store.getReachability(phone)
    const now = this.now()
    const fresh = cached !== null && now < cached.freshUntil &&
      (maxAgeSeconds === undefined || now - Date.parse(cached.record.checked_at) <= maxAgeSeconds * 1000)
    if (!fresh) {
      await limiter.acquire()
      add('lookups:upstream')
    }
    try {
      const result = await reachability.lookup(phone, { maxAgeSeconds, purpose: 'campaign' })
      if (fresh) add(result.source === 'cache' ? 'lookups:cache' : 'lookups:upstream')
      return result
    } catch (err) {
      if (!(err instanceof UpstreamUnavailableError)) throw err
      return null
    }
  }
}
