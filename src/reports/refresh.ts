import { randomUUID } from 'node:crypto'
import pLimit from 'p-limit'
import { PollingLoop } from '../queue/polling-loop.js'
import { type FieldError, NotFoundError, ValidationError } from '../domain/errors.js'
import { normalizePhoneNumber } from '../domain/phone.js'
import type { UpstreamRateLimiter } from '../reachability/rate-limit.js'
import type { ReachabilityService } from '../reachability/service.js'
import type { RefreshJob, Store } from '../store/store.js'

const JOB_RETENTION_SECONDS = 7 * 86_400

/** Starts a fleet scan: every number re-checked in the background through the rate-limited upstream. */
export async function startRefresh (store: Store, owner: string, phoneNumbers: string[], now = Date.now()): Promise<RefreshJob> {
  const errors: FieldError[] = []
  const normalized = phoneNumbers.map((input, i) => {
    try {
      return normalizePhoneNumber(input)
    } catch (err) {
      errors.push({ path: `body.phone_numbers.${i}`, message: (err as Error).message })
      return ''
    }
  })
  if (errors.length > 0) throw new ValidationError(errors.map(e => `${e.path}: ${e.message}`).join('; '), errors)
  const unique = [...new Set(normalized)]
  const job: RefreshJob = {
    id: `rfr_${randomUUID().replaceAll('-', '')}`, owner, status: 'running', total: unique.length, done: 0, failed: 0,
    created_at: new Date(now).toISOString(), completed_at: null,
  }
  await store.createRefreshJob(job, unique, JOB_RETENTION_SECONDS)
  return job
}

export async function getRefresh (store: Store, id: string): Promise<RefreshJob> {
  const job = /^rfr_[0-9a-f]{32}$/.test(id) ? await store.getRefreshJob(id) : null
  if (!job) throw new NotFoundError(`no refresh job ${id}`)
  return job
}

export interface RefreshRunnerOptions {
  store: Store
  reachability: ReachabilityService
  limiter: UpstreamRateLimiter
  concurrency: number
  pollMs: number
  log?: { warn: (obj: object, msg: string) => void }
}

/**
 * Works through the numbers of running refresh jobs: each one a fresh upstream lookup (which updates
 * the cache and the number's report), each lookup waiting for a token of the shared upstream budget.
 * Numbers taken by a process that dies before counting them are not re-checked (the job then stays
 * running with fewer counted than its total).
 */
export class RefreshRunner {
  private readonly loop: PollingLoop
  private readonly limit: ReturnType<typeof pLimit>

  constructor (private readonly options: RefreshRunnerOptions) {
    this.limit = pLimit(options.concurrency)
    this.loop = new PollingLoop(() => this.tick(), options.pollMs,
      err => this.options.log?.warn({ err }, 'refresh runner: the store failed; trying again'))
  }

  get lastLoopAt (): number {
    return this.loop.lastTurnAt
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

  /** One batch of each running job; resolves whether there was anything to do. */
  async tick (): Promise<boolean> {
    const { store, reachability, limiter } = this.options
    let worked = false
    for (const id of await store.activeRefreshJobs()) {
      const numbers = await store.takeRefreshNumbers(id, this.options.concurrency)
      worked ||= numbers.length > 0
      const outcomes = await Promise.all(numbers.map(phone => this.limit(async () => {
        await limiter.acquire()
        try {
          await reachability.lookup(phone, { maxAgeSeconds: 0 })
          return true
        } catch {
          return false
        }
      })))
      const done = outcomes.filter(Boolean).length
      if (numbers.length > 0) await store.countRefresh(id, done, numbers.length - done)
      await store.completeRefreshJob(id, new Date().toISOString())
    }
    return worked
  }
}
