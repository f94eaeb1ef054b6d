import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Channels, DeliveryOutcome } from '../channels/channel.js'
import { StoreUnavailableError } from '../domain/errors.js'
import type { CallbackSender } from '../notifications/callbacks.js'
import { ChannelBudget } from './channel-budget.js'
import { eventsSinceFinal, type Notification, type NotificationEvent, type NotificationStatus, isFinal, timeAllowed } from '../notifications/types.js'
import { usableChannels } from '../routing/decide.js'
import { type JobTarget, type Lane, type NotificationPatch, type OutboxJob, type Store, type Transition, channelOfLane, laneFor } from '../store/store.js'

/**
 * What a provider call led to: `sent`; `retry` (a transient failure, another attempt follows); `failed` (the provider
 * refused it, or a transient failure with no attempt left); `expired` (a transient failure, the next attempt would
 * come after the ttl); `token_invalid` (the push token is dead: failed over to SMS, or failed).
 */
export type AttemptResult = 'sent' | 'retry' | 'failed' | 'expired' | 'token_invalid'

export interface DeliveryWorkerOptions {
  store: Store
  channels: Channels
  callbacks: CallbackSender
  /** Jobs handled at once by this worker. */
  concurrency: number
  /** Longest sleep when every outbox was empty. */
  idlePollMs: number
  /** A job taken but not acknowledged for this long is taken over by another consumer. */
  visibilityTimeoutMs: number
  maxAttempts: number
  retryBaseMs: number
  retryMaxMs: number
  /** How often due retries are released and silent jobs taken over (default: 1 s, or sooner for short timeouts). */
  maintenanceEveryMs?: number
  /** Attempts at POSTing a status callback. */
  callbackMaxAttempts?: number
  consumer?: string
  now?: () => number
  log?: { info: (obj: object, msg: string) => void, warn: (obj: object, msg: string) => void, error: (obj: object, msg: string) => void }
  /** Told of every attempt (a call made) and what it led to (metrics). Must not throw. */
  onAttempt?: (channel: 'sms' | 'push', provider: string, result: AttemptResult) => void
  /** Whether a notification's campaign was cancelled: its notifications not yet sent are dropped. */
  isCampaignCancelled?: (campaignId: string) => Promise<boolean>
  /** Told when this worker ends a notification, in its final status (metrics). Must not throw. */
  onFinal?: (status: NotificationStatus) => void
  /** Told when a campaign's notification reaches a final status here (counted once per notification id). Must not throw. */
  onCampaignFinal?: (campaignId: string, status: NotificationStatus, notificationId: string) => void
  /**
   * Provider calls per second per channel, shared by every process through the store (0 or unset: no limit).
   * A job waits for a token before its provider call; one that gets none in time goes back to its lane, not counted as an attempt.
   */
  providerRps?: { sms?: number, push?: number }
}

/** How long a worker keeps trying to record a provider's answer while the store does not answer (the worker's own shutdown grace). */
const RECORD_PATIENCE_MS = 30_000

const LANE_ORDER: readonly Lane[] = ['sms', 'push', 'callback']
/** Campaign traffic: read only with the capacity the transactional lanes left. */
const BULK_LANE_ORDER: readonly Lane[] = ['sms_bulk', 'push_bulk']
/** A job that got no provider token in time waits this long in the retry set before it is read again. */
const PUT_BACK_DELAY_MS = 1000
/**
 * Jobs waiting for a provider's circuit come back spread over up to this long after a probe may go; over as long
 * as the provider has been failing in a longer outage, so a backlog is not read and put back whole at every
 * probe. At most DELIVERY_RETRY_MAX_MS, and at most TRANSACTIONAL_WAIT_SPREAD_MAX_MS on the transactional lanes
 * (how late they may be after the provider is back); and at most half the time left before the ttl.
 */
const PROVIDER_WAIT_SPREAD_MS = 1000
const TRANSACTIONAL_WAIT_SPREAD_MAX_MS = 30_000

/**
 * Reads the outboxes of every shard through a consumer group, hands each job to its channel, and
 * records the outcome and the job's acknowledgement in one step. A job whose consumer died is taken
 * over after the visibility timeout: at-least-once, with the notification id sent to the provider.
 */
export class DeliveryWorker {
  readonly consumer: string
  private readonly now: () => number
  private running = false
  private loopDone: Promise<void> = Promise.resolve()
  private readonly inFlight = new Set<Promise<void>>()
  /** The jobs in this worker's hands, by shard, lane and entry id: kept from being taken over (see keepHeld). */
  private readonly held = new Map<string, OutboxJob>()
  private keeper: NodeJS.Timeout | undefined
  private keeping = false
  private wake: (() => void) | undefined
  private nextShard = 0
  private nextReclaimShard = 0
  private lastMaintenance = 0
  private readonly maintenanceEveryMs: number
  /** The rate-limited channels: their token budget, and how many of their jobs this process may hold before its token. */
  private readonly limited: Partial<Record<'sms' | 'push', { budget: ChannelBudget, cap: number, unserved: number }>> = {}
  /** How long a job waits for a provider token before it goes back to its lane: well within the visibility timeout. */
  private readonly tokenWaitMs: number
  /** Callback jobs in hand, and how many there may be: a slow or dead receiver never holds the slots of SMS and push. */
  private callbacksInHand = 0
  private readonly callbackCap: number
  /** Set when a loop iteration finished; readiness reads it to tell a stuck worker. */
  lastLoopAt = 0

  constructor (private readonly options: DeliveryWorkerOptions) {
    this.consumer = options.consumer ?? `worker-${randomUUID().slice(0, 8)}`
    this.maintenanceEveryMs = options.maintenanceEveryMs ??
      Math.max(10, Math.min(1000, options.visibilityTimeoutMs / 2, options.retryBaseMs / 2))
    this.now = options.now ?? Date.now
    this.tokenWaitMs = Math.max(50, Math.floor(options.visibilityTimeoutMs / 2))
    this.callbackCap = Math.max(1, Math.floor(options.concurrency / 4))
    for (const channel of ['sms', 'push'] as const) {
      const rps = options.providerRps?.[channel] ?? 0
      if (rps <= 0) continue
      // Enough jobs in hand to keep the rate, few enough to leave slots for the other lanes and to get their token in time.
      const cap = Math.max(2, Math.min(Math.floor(options.concurrency / 4), Math.ceil(rps * this.tokenWaitMs / 2000)))
      // A burst of a hundredth of a second's tokens (one below 100 per second), so the rate holds over any window.
      const budget = new ChannelBudget(options.store, `provider:${channel}`, rps, Math.max(1, Math.floor(rps / 100)), () => {
        if (this.limited[channel]!.unserved < cap / 2) this.wake?.()
      })
      this.limited[channel] = { budget, cap, unserved: 0 }
    }
  }

  start (): void {
    if (this.running) return
    this.running = true
    this.loopDone = this.loop()
    // A third of the visibility timeout: a job in hand is never idle long enough to be taken over, however long
    // its provider call or the recording of its outcome takes, and whether or not the loop is waiting for a slot.
    this.keeper ??= setInterval(() => { void this.keepHeld() }, Math.max(10, Math.floor(this.options.visibilityTimeoutMs / 3))).unref()
  }

  /** Stops taking jobs and waits for those in hand; what is not acknowledged is taken over by another worker. */
  async stop (): Promise<void> {
    this.running = false
    this.wake?.()
    await this.loopDone
    // Jobs still waiting for a provider token go back to their lane at once.
    for (const { budget } of Object.values(this.limited)) budget.close()
    await Promise.allSettled([...this.inFlight])
    clearInterval(this.keeper)
    this.keeper = undefined
  }

  /** Tells the store the jobs in hand are still being delivered, one call per shard and lane; never two rounds at once. */
  private async keepHeld (): Promise<void> {
    if (this.keeping) return
    this.keeping = true
    try {
      await this.keepHeldRound()
    } finally {
      this.keeping = false
    }
  }

  private async keepHeldRound (): Promise<void> {
    const byStream = new Map<string, OutboxJob[]>()
    for (const job of this.held.values()) {
      const key = `${job.shard}|${job.lane}`
      const jobs = byStream.get(key)
      if (jobs) jobs.push(job)
      else byStream.set(key, [job])
    }
    await Promise.all([...byStream.values()].map(async jobs => {
      const { shard, lane } = jobs[0]!
      try {
        await this.options.store.keepOutboxJobs(shard, lane, this.consumer, jobs.map(j => j.entryId))
      } catch (err) {
        this.options.log?.warn({ err, shard, lane }, 'delivery worker: could not renew its hold on the jobs in hand')
      }
    }))
  }

  /** Ends the idle sleep at once: new work was just enqueued in this process. */
  poke (): void {
    this.wake?.()
  }

  private async loop (): Promise<void> {
    let idleMs = 5
    while (this.running) {
      this.lastLoopAt = this.now()
      let taken = 0
      try {
        if (this.now() - this.lastMaintenance >= this.maintenanceEveryMs) await this.maintenance()
        taken = await this.takeJobs()
      } catch (err) {
        this.options.log?.warn({ err }, 'delivery worker: the store failed; trying again')
        idleMs = this.options.idlePollMs
      }
      if (taken > 0 || !this.running) {
        idleMs = 5
        continue
      }
      await this.sleep(idleMs)
      idleMs = Math.min(idleMs * 2, this.options.idlePollMs)
    }
  }

  private async sleep (ms: number): Promise<void> {
    if (this.inFlight.size >= this.options.concurrency) {
      await Promise.race(this.inFlight)
      return
    }
    await new Promise<void>(resolve => {
      const timer = setTimeout(resolve, ms)
      this.wake = () => { clearTimeout(timer); resolve() }
    })
    this.wake = undefined
  }

  /** Moves due retries into their outboxes and takes over jobs whose consumer went silent. */
  private async maintenance (): Promise<void> {
    this.lastMaintenance = this.now()
    const { store } = this.options
    // Every shard's due retries are released each round; the take-overs, which need free slots, start at another
    // shard each round, so a full worker does not leave the later shards' silent jobs for ever.
    const first = this.nextReclaimShard
    this.nextReclaimShard = (first + 1) % store.shards
    for (let i = 0; i < store.shards; i++) {
      const shard = (first + i) % store.shards
      // One shard whose Redis node is down must not hold up the others' retries and take-overs.
      try {
        await store.releaseDueRetries(shard, this.now(), 500)
        for (const lane of [...LANE_ORDER, ...BULK_LANE_ORDER]) {
          const free = this.options.concurrency - this.inFlight.size
          // Told to stop meanwhile: no job taken over now is one the shutdown must wait for.
          if (free <= 0 || !this.running) break
          const room = lane === 'callback' ? Math.min(free, this.callbackCap - this.callbacksInHand) : free
          if (room <= 0) continue
          const jobs = await store.reclaimOutbox(shard, lane, this.consumer, this.options.visibilityTimeoutMs, room)
          for (const job of jobs) {
            // Its idle time ran out while this worker still has it (the store answered the hold late): not a second copy.
            if (this.held.has(heldKey(job))) continue
            this.options.log?.warn({ notification: job.notificationId, lane }, 'taking over a job whose worker went silent')
            this.dispatch(job)
          }
        }
      } catch (err) {
        this.options.log?.warn({ err, shard }, 'delivery worker: a shard did not answer; the others go on')
      }
    }
  }

  private async takeJobs (): Promise<number> {
    const { store } = this.options
    let taken = 0
    for (let i = 0; i < store.shards; i++) {
      const free = this.options.concurrency - this.inFlight.size
      if (free <= 0) break
      const shard = this.nextShard
      this.nextShard = (this.nextShard + 1) % store.shards
      try {
        taken += await this.read(shard, LANE_ORDER)
        taken += await this.read(shard, BULK_LANE_ORDER, true)
      } catch (err) {
        this.options.log?.warn({ err, shard }, 'delivery worker: a shard did not answer; the others go on')
      }
    }
    return taken
  }

  /**
   * Reads new jobs of the lanes, in order, as far as there is room: the lanes of a rate-limited channel one by
   * one, no more jobs than may wait for that channel's tokens here (campaign lanes leave a quarter of that to
   * transactional jobs); the other message lanes together; callbacks last, at most a quarter of the slots in all.
   */
  private async read (shard: number, lanes: readonly Lane[], bulk = false): Promise<number> {
    let taken = 0
    const take = async (from: readonly Lane[], room: number) => {
      const count = Math.min(room, this.options.concurrency - this.inFlight.size)
      // Told to stop during this pass: the other shards' jobs stay for another worker.
      if (count <= 0 || from.length === 0 || !this.running) return
      const jobs = await this.options.store.readOutbox(shard, from, this.consumer, count)
      for (const job of jobs) this.dispatch(job)
      taken += jobs.length
    }
    const open: Lane[] = []
    let callbacks = false
    for (const lane of lanes) {
      const limited = this.limitOf(lane)
      if (limited) await take([lane], limited.cap - limited.unserved - (bulk ? Math.max(1, Math.floor(limited.cap / 4)) : 0))
      else if (lane === 'callback') callbacks = true
      else open.push(lane)
    }
    await take(open, Infinity)
    if (callbacks) await take(['callback'], this.callbackCap - this.callbacksInHand)
    return taken
  }

  private limitOf (lane: Lane): { budget: ChannelBudget, cap: number, unserved: number } | undefined {
    const channel = channelOfLane(lane)
    return channel === 'callback' ? undefined : this.limited[channel]
  }

  private dispatch (job: OutboxJob): void {
    // Counted from the read until the job has its provider token (or ends without one).
    const limited = this.limitOf(job.lane)
    let unserved = limited !== undefined
    if (limited) limited.unserved++
    const served = () => {
      if (!unserved) return
      unserved = false
      limited!.unserved--
    }
    const key = heldKey(job)
    this.held.set(key, job)
    const callback = job.lane === 'callback'
    if (callback) this.callbacksInHand++
    const work = this.deliver(job, served)
      .finally(served)
      .catch(err => this.options.log?.error({ err, notification: job.notificationId }, 'delivery job failed; it will be taken over after the visibility timeout'))
      .finally(() => {
        this.held.delete(key)
        this.inFlight.delete(work)
        if (!callback) return
        const wasAtCap = this.callbacksInHand === this.callbackCap
        this.callbacksInHand--
        // At the cap, the loop took no callbacks and may be asleep for its idle poll: more may be waiting.
        if (wasAtCap) this.wake?.()
      })
    this.inFlight.add(work)
  }

  /** Handles one job to its next state. Exposed for tests that drive a single job. */
  async handle (job: OutboxJob): Promise<void> {
    await this.deliver(job, () => {})
  }

  private async deliver (job: OutboxJob, served: () => void): Promise<void> {
    const stored = await this.options.store.getNotification(job.notificationId, job.shard)
    if (!stored) {
      await this.ackOnly(job)
      return
    }
    if (job.lane === 'callback') {
      await this.sendCallback(job, stored.notification, stored.events)
      return
    }
    const n = stored.notification
    if (isFinal(n.status) || (n.status !== 'queued' && n.status !== 'sending')) {
      await this.ackOnly(job)
      return
    }
    if (this.now() >= Date.parse(n.expires_at)) {
      await this.finish(job, n, 'expired', `${timeAllowed(n, stored.events).replace(/^the /, '')} passed before delivery`, [])
      return
    }
    if (n.campaign_id !== undefined && await this.options.isCampaignCancelled?.(n.campaign_id)) {
      await this.finish(job, n, 'dropped', 'campaign cancelled', [])
      return
    }

    const channel = channelOfLane(job.lane) as 'sms' | 'push'
    // A provider whose circuit is open gets no call: the job waits for it, and no attempt is counted.
    const blockedMs = durationMs(this.options.channels[channel].blockedForMs?.(), 0)
    if (blockedMs > 0) {
      const last = stored.events.at(-1)
      await this.waitForProvider(job, stored.notification, channel, blockedMs, { alreadyWaiting: last?.type === 'retry_scheduled' && last.circuit === 'open' })
      return
    }
    const limited = this.limited[channel]
    if (limited) {
      const token = await limited.budget.acquire(job.lane !== channel, this.tokenWaitMs)
      served()
      if (!token) {
        await this.putBack(job)
        return
      }
    }

    const attempt = n.attempts + 1
    const startedAt = this.isoNow()
    const marked = await this.options.store.transition({
      notificationId: n.id,
      shard: job.shard,
      patch: { status: 'sending', attempts: attempt, channel, updated_at: startedAt },
      events: [{ at: startedAt, type: 'attempt', detail: `attempt ${attempt} over ${channel}${job.deliveries > 1 ? ' (taken over from a silent worker)' : ''}`, attempt, channel }],
      onlyFrom: ['queued', 'sending'],
    })
    if (!marked) {
      await this.ackOnly(job)
      return
    }

    const outcome = await this.send(channel, n)
    let told = false
    // Once, however many times the store is asked to take the answer.
    const tell = (result: AttemptResult) => {
      if (told) return
      told = true
      this.options.onAttempt?.(channel, outcome.provider, result)
    }
    await this.recordOutcome(job, n, { attempt, base: attemptsBase(stored.events) }, outcome, tell)
  }

  /**
   * Records the provider's answer, trying again while the store does not answer: a message the provider took
   * must not be left unacknowledged, or it is taken over after the visibility timeout and sent a second time.
   * A repeat is harmless: every transition record() makes checks the status it moves from and that the attempt it
   * answers is still the latest (a failover or retry recorded again after a later attempt began would send twice).
   */
  private async recordOutcome (job: OutboxJob, n: Notification, attempt: Attempt, outcome: DeliveryOutcome, tell: (result: AttemptResult) => void): Promise<void> {
    const giveUpAt = this.now() + RECORD_PATIENCE_MS
    for (let wait = 50; ; wait = Math.min(wait * 2, 1000)) {
      try {
        await this.record(job, n, attempt, outcome, tell)
        return
      } catch (err) {
        if (!(err instanceof StoreUnavailableError) || this.now() >= giveUpAt) throw err
        this.options.log?.warn({ err, notification: n.id }, 'delivery worker: the store did not take the provider\'s answer; trying again')
        await sleep(wait)
      }
    }
  }

  private async send (channel: 'sms' | 'push', n: Notification): Promise<DeliveryOutcome> {
    const { request } = n
    const ttlSeconds = Math.max(1, Math.floor((Date.parse(n.expires_at) - this.now()) / 1000))
    try {
      if (channel === 'sms') {
        return await this.options.channels.sms.sendSms({ notificationId: n.id, to: request.to, text: request.message.sms!.text, ttlSeconds })
      }
      const push = request.message.push!
      return await this.options.channels.push.sendPush({
        notificationId: n.id, token: request.push_token!, title: push.title, body: push.body, data: push.data, ttlSeconds,
      })
    } catch (err) {
      // An adapter should classify every failure; one that throws is treated as transient.
      return { kind: 'retry', provider: channel, reason: (err as Error).message }
    }
  }

  /** Push cannot carry this message (`why`): failed over to SMS when the message allows it, else failed. */
  private async pushImpossible (job: OutboxJob, n: Notification, attempt: number, answer: NotificationEvent, why: string, detail: string): Promise<void> {
    const at = answer.at
    if (channelOfLane(job.lane) === 'push' && usableChannels(n.request).has('sms')) {
      await this.options.store.transition({
        notificationId: n.id,
        shard: job.shard,
        patch: { status: 'queued', channel: 'sms', reason: `${why}; failed over to SMS`, updated_at: at },
        // SMS gets DELIVERY_MAX_ATTEMPTS of its own: its attempts count from this one's (attempts_base).
        events: [answer, { at, type: 'failover', detail: `${detail}: failing over to SMS`, from: 'push', to: 'sms', attempts_base: attempt }],
        onlyFrom: ['sending'],
        onlyAtAttempt: attempt,
        ack: job,
        next: { kind: 'outbox', lane: laneFor('sms', job.lane === 'push_bulk') },
      })
      return
    }
    await this.finish(job, n, 'failed', `${why} and SMS is not possible for this message`, [answer], undefined, {}, attempt)
  }

  private async record (job: OutboxJob, n: Notification, { attempt, base }: Attempt, outcome: DeliveryOutcome, tell: (result: AttemptResult) => void): Promise<void> {
    const at = this.isoNow()
    const answer: NotificationEvent = { at, type: 'provider_answer', detail: describe(outcome), provider: outcome.provider, outcome: outcome.kind }
    switch (outcome.kind) {
      case 'blocked':
        // The circuit opened (or another job's call became the probe) between the check and the call: no call was
        // made, and the attempt marked for it is taken back.
        await this.waitForProvider(job, n, channelOfLane(job.lane) as 'sms' | 'push', outcome.blockedMs, { attempts: attempt - 1, answer })
        return
      case 'sent':
        tell('sent')
        await this.finish(job, n, 'sent', `sent over ${channelOfLane(job.lane)} by ${outcome.provider}`, [answer], outcome.providerMessageId, {}, attempt)
        return
      case 'failed':
        tell('failed')
        await this.finish(job, n, 'failed', `${outcome.provider} refused it: ${outcome.reason}`, [answer], undefined, {}, attempt)
        return
      case 'token_invalid':
        tell('token_invalid')
        await this.pushImpossible(job, n, attempt, answer, `push token refused (${outcome.reason})`, 'the push token is dead or invalid')
        return
      case 'too_large':
        tell('failed')
        await this.pushImpossible(job, n, attempt, answer, `too large for push (${outcome.reason})`, 'the push payload is too large for the provider')
        return
      case 'retry': {
        // This delivery's attempts: after a failover or a dead letter retried, counted anew (`attempts` is the total).
        const tries = attempt - base
        const delay = Math.max(this.backoff(tries), (outcome.retryAfterSeconds ?? 0) * 1000)
        if (tries >= this.options.maxAttempts) {
          tell('failed')
          await this.finish(job, n, 'failed', `gave up after ${tries} attempts: ${outcome.reason}`, [answer], undefined, {}, attempt)
          return
        }
        if (this.now() + delay >= Date.parse(n.expires_at)) {
          tell('expired')
          await this.finish(job, n, 'expired', `the next attempt would come after the ttl: ${outcome.reason}`, [answer], undefined, {}, attempt)
          return
        }
        tell('retry')
        const dueAt = this.now() + delay
        await this.options.store.transition({
          notificationId: n.id,
          shard: job.shard,
          patch: { status: 'queued', updated_at: at },
          events: [answer, { at, type: 'retry_scheduled', detail: `attempt ${attempt + 1} at ${new Date(dueAt).toISOString()}`, due_at: new Date(dueAt).toISOString() }],
          // A worker that stalled past its visibility timeout answers late: by then another worker owns the notification.
          onlyFrom: ['sending'],
          onlyAtAttempt: attempt,
          ack: job,
          next: { kind: 'retry', lane: job.lane, dueAt },
        })
        return
      }
      default: {
        const unknown: never = outcome
        throw new Error(`unknown delivery outcome ${JSON.stringify(unknown)}`)
      }
    }
  }

  /**
   * Puts the job back until the provider's circuit lets a call through (spread, so the waiting jobs do not all
   * come back at once), or expires it when that is past its ttl. No call was made, so no attempt is counted:
   * `wait.attempts` sets the count back when the job had been marked for one (the call met the open circuit), and
   * `wait.answer` records that call's answer. One event says so for each wait; a notification already waiting
   * (`wait.alreadyWaiting`) does not add another.
   */
  private async waitForProvider (job: OutboxJob, n: Notification, channel: 'sms' | 'push', blockedMs: number,
    wait: { alreadyWaiting?: boolean, attempts?: number, answer?: NotificationEvent }): Promise<void> {
    const { provider } = this.options.channels[channel]
    const answered = wait.answer ? [wait.answer] : []
    const attempts = wait.attempts !== undefined ? { attempts: wait.attempts } : {}
    // The attempt marked for the call that met the open circuit, which this record answers.
    const onlyAtAttempt = wait.attempts !== undefined ? wait.attempts + 1 : undefined
    // A wait the channel could not say (not a finite number) is the longest retry wait, not none: no busy loop.
    const probeAt = this.now() + durationMs(blockedMs, this.options.retryMaxMs)
    const expiresAt = Date.parse(n.expires_at)
    if (probeAt >= expiresAt) {
      await this.finish(job, n, 'expired', `the ${channel} provider (${provider}) was unavailable (circuit open after repeated failures) until the ttl passed`, answered, undefined, attempts, onlyAtAttempt)
      return
    }
    // Spread after the probe over as long as the outage has lasted (bounded), and back well before the ttl passes.
    const failingMs = durationMs(this.options.channels[channel].failingForMs?.(), 0)
    const cap = job.lane === channel ? Math.min(this.options.retryMaxMs, TRANSACTIONAL_WAIT_SPREAD_MAX_MS) : this.options.retryMaxMs
    const spread = Math.max(1, Math.min(Math.max(PROVIDER_WAIT_SPREAD_MS, failingMs), cap, (expiresAt - probeAt) / 2))
    const dueAt = probeAt + Math.floor(Math.random() * spread)
    const at = this.isoNow()
    await this.options.store.transition({
      notificationId: n.id,
      shard: job.shard,
      patch: { status: 'queued', updated_at: at, ...attempts },
      events: wait.alreadyWaiting
        ? []
        : [...answered, {
            at,
            type: 'retry_scheduled',
            detail: `no call made: the ${channel} provider (${provider}) failed repeatedly and its circuit is open; waiting until it lets calls through (not counted as an attempt)`,
            due_at: new Date(dueAt).toISOString(),
            circuit: 'open',
          }],
      // After a call was tried, only from sending: a repeat of this record (its answer lost) must not apply again.
      onlyFrom: wait.attempts !== undefined ? ['sending'] : ['queued', 'sending'],
      onlyAtAttempt,
      ack: job,
      next: { kind: 'retry', lane: job.lane, dueAt },
    })
  }

  /** Exponential backoff with jitter: between half and all of base * 2^(attempt-1), capped. */
  private backoff (attempt: number): number {
    const ceiling = Math.min(this.options.retryMaxMs, this.options.retryBaseMs * 2 ** (attempt - 1))
    return Math.floor(ceiling / 2 + Math.random() * ceiling / 2)
  }

  /**
   * Ends the notification in a final status, saying why in the final event. A notification that did not go out
   * (failed, expired, dropped) takes that as its `reason` too; a sent one keeps its routing reason. Its callback,
   * when it has one, is the next job.
   */
  private async finish (job: OutboxJob, n: Notification, status: 'sent' | 'failed' | 'expired' | 'dropped', reason: string, events: NotificationEvent[],
    providerMessageId?: string, patch: NotificationPatch = {}, onlyAtAttempt?: number): Promise<void> {
    const at = this.isoNow()
    const next: JobTarget = n.request.callback_url ? { kind: 'outbox', lane: 'callback' } : { kind: 'none' }
    const t: Transition = {
      notificationId: n.id,
      shard: job.shard,
      patch: {
        ...patch, status, updated_at: at, ...(status === 'sent' ? {} : { reason }), ...(providerMessageId ? { provider_message_id: providerMessageId } : {}),
      },
      events: [...events, { at, type: 'final', detail: `${status}: ${reason}`, status }],
      onlyFrom: ['queued', 'sending'],
      // The answer of an attempt (see recordOutcome): it applies only while that attempt is the latest.
      onlyAtAttempt,
      ack: job,
      next,
      dead: status === 'failed' || status === 'expired',
      at: this.now(),
      // Its campaign's count is noted in the same step, and made by the sweeper if onCampaignFinal's never is.
      campaignId: n.campaign_id,
    }
    const ended = await this.options.store.transition(t)
    if (ended) this.options.onFinal?.(status)
    if (n.campaign_id === undefined) return
    // Counted also when the status is there already: a transition whose answer was lost ran all the same, and
    // recordOutcome's retry of it does not apply. (A count twice is harmless: counts are kept per notification.)
    if (ended || await this.hasStatus(n.id, job.shard, status)) this.options.onCampaignFinal?.(n.campaign_id, status, n.id)
  }

  private async hasStatus (id: string, shard: number, status: NotificationStatus): Promise<boolean> {
    return (await this.options.store.getNotification(id, shard))?.notification.status === status
  }

  private async sendCallback (job: OutboxJob, n: Notification, events: NotificationEvent[]): Promise<void> {
    const url = n.request.callback_url
    if (!url) {
      await this.ackOnly(job)
      return
    }
    // A callback is about the latest final status: its tries are counted from it (a receipt's `delivered` after
    // `sent` has tries of its own), and it is not posted twice, nor for a notification on its way again.
    const sinceFinal = eventsSinceFinal(events).filter(e => e.type === 'callback')
    if (!isFinal(n.status)) {
      await this.options.store.transition({
        notificationId: n.id, shard: job.shard, patch: {}, ack: job, next: { kind: 'none' },
        events: [{ at: this.isoNow(), type: 'callback', detail: `not posted: the notification is ${n.status} again; its final status will be`, ok: false, status: n.status }],
      })
      return
    }
    if (sinceFinal.some(e => e.ok === true && e.status === n.status)) {
      await this.ackOnly(job)
      return
    }
    const outcome = await this.options.callbacks.send(url, {
      id: n.id, status: n.status, channel: n.channel, client_ref: n.request.client_ref ?? null, metadata: n.request.metadata ?? null, at: n.updated_at,
    })
    const at = this.isoNow()
    const tries = sinceFinal.length + 1
    const max = this.options.callbackMaxAttempts ?? 8
    const retry = !outcome.ok && outcome.retry && tries < max
    const detail = outcome.ok ? `status ${n.status} posted to the callback URL` : `${outcome.reason}${retry ? '; will retry' : '; giving up'}`
    const dueAt = this.now() + this.backoff(tries)
    await this.options.store.transition({
      notificationId: n.id,
      shard: job.shard,
      patch: {},
      events: [{ at, type: 'callback', detail, ok: outcome.ok, status: n.status }],
      ack: job,
      next: retry ? { kind: 'retry', lane: 'callback', dueAt } : { kind: 'none' },
    })
  }

  /** No provider token in time: the job goes back to its lane shortly, as it was (no attempt made). */
  private async putBack (job: OutboxJob): Promise<void> {
    await this.options.store.transition({
      notificationId: job.notificationId,
      shard: job.shard,
      patch: {},
      events: [],
      onlyFrom: ['queued', 'sending'],
      ack: job,
      next: { kind: 'retry', lane: job.lane, dueAt: this.now() + PUT_BACK_DELAY_MS },
    })
  }

  private async ackOnly (job: OutboxJob): Promise<void> {
    await this.options.store.transition({ notificationId: job.notificationId, shard: job.shard, patch: {}, events: [], ack: job, onlyFrom: ['__never__'] })
  }

  private isoNow (): string {
    return new Date(this.now()).toISOString()
  }
}

function describe (outcome: DeliveryOutcome): string {
  switch (outcome.kind) {
    case 'sent': return `${outcome.provider} accepted it${outcome.providerMessageId ? ` as ${outcome.providerMessageId}` : ''}`
    case 'retry': return `${outcome.provider}: ${outcome.reason}${outcome.retryAfterSeconds ? ` (retry after ${outcome.retryAfterSeconds} s)` : ''}`
    case 'failed': return `${outcome.provider} refused it: ${outcome.reason}`
    case 'token_invalid': return `${outcome.provider}: push token refused: ${outcome.reason}`
    case 'too_large': return `${outcome.provider}: too large for push: ${outcome.reason}`
    case 'blocked': return `no call made: ${outcome.reason}`
  }
}

function heldKey (job: OutboxJob): string {
  return `${job.shard}|${job.lane}|${job.entryId}`
}

/** A time a channel reports (blocked for, failing for): absent or negative is none; NaN or infinite is `otherwise`. */
function durationMs (ms: number | undefined, otherwise: number): number {
  if (ms === undefined || ms <= 0) return 0
  return Number.isFinite(ms) ? ms : otherwise
}

/** An attempt: its number among all the notification's, and the number its delivery started from. */
interface Attempt { attempt: number, base: number }

/** The attempt count the current delivery started from: the latest failover's or dead-letter retry's, else 0. */
function attemptsBase (events: readonly NotificationEvent[]): number {
  for (let i = events.length - 1; i >= 0; i--) {
    const base = events[i]!.attempts_base
    if (typeof base === 'number') return base
  }
  return 0
}
