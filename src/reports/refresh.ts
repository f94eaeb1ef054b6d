import { randomUUID } from 'node:crypto'
import pLimit from 'p-limit'
import { type RenewLease, workChunk } from '../queue/chunk-lease.js'
import { StoppablePollingLoop } from '../queue/polling-loop.js'
import { type FieldError, NotFoundError, ValidationError } from '../domain/errors.js'
import { normalizePhoneNumber } from '../domain/phone.js'
import { isInvalidNumberCode, isSuccessCode, type ReachabilityResult } from '../domain/reachability.js'
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
  /** How long a claimed batch stays this runner's without a renewal (renewed while it is worked on); past it, another runner takes it. */
  leaseMs?: number
  /** How long stop() lets the batch under way finish before it lets go and gives the batch back (STOP_GRACE_MS, 5 s). */
  stopGraceMs?: number
  now?: () => number
  log?: { warn: (obj: object, msg: string) => void }
}

/** Codes that are news of the number's network, though not a reading of the device (cached as such: cache-policy.ts). */
const NETWORK_CODES = new Set(['NO_COVERAGE', 'UNSUPPORTED_NETWORK_TYPE'])

/**
 * Whether a scan's lookup checked the number: the upstream answered with news of it (a reading, an invalid or
 * unknown number, a network not covered). A stale entry standing in for an upstream that failed, a "try again
 * later" code, or one about our own setup (UNAUTHORIZED, INVALID_PURPOSE, a code not known) checked nothing.
 */
function isFreshAnswer (result: ReachabilityResult): boolean {
  const code = result.status.code
  return result.source !== 'stale_cache' && (isSuccessCode(code) || isInvalidNumberCode(code) || NETWORK_CODES.has(code))
}

/**
 * Works through the numbers of running refresh jobs: each one a fresh upstream lookup (which updates
 * the cache and the number's report), each lookup waiting for a token of the shared upstream budget.
 * A number is counted done when its lookup brought news of it, failed otherwise (see isFreshAnswer).
 * A batch is held under a lease: one whose runner died is taken again by another (a number may then be
 * checked twice, never counted twice: only the runner holding the lease at the end counts the batch).
 * stop() lets the batch under way finish for up to stopGraceMs (5 s: within the API's 10 s of shutdown grace), so
 * its numbers are checked once. Past that, its numbers still waiting for the upstream budget stop waiting (a lookup
 * already asked ends within its deadline), and the batch, unless every number of it was checked by then, is given
 * back uncounted (its lease ended): another runner takes it at once, and checks again the numbers this one had checked.
 */
export class RefreshRunner extends StoppablePollingLoop {
  private readonly limit: ReturnType<typeof pLimit>

  constructor (private readonly options: RefreshRunnerOptions) {
    super(options.pollMs, err => options.log?.warn({ err }, 'refresh runner: the store failed; trying again'), options.now,
      options.concurrency + 10, options.stopGraceMs)
    this.limit = pLimit(options.concurrency)
  }

  /** One batch of each running job; resolves whether there was anything to do. */
  protected async tick (): Promise<boolean> {
    const { store, reachability, limiter } = this.options
    let worked = false
    const leaseMs = this.options.leaseMs ?? 60_000
    for (const id of await store.activeRefreshJobs()) {
      if (!this.running) break
      const now = this.now()
      const batch = await store.claimRefreshNumbers(id, this.options.concurrency, now, now + leaseMs)
      if (batch) {
        worked = true
        const renew: RenewLease = (l, until) => store.renewRefreshChunk(id, l, until)
        const { signal } = this.stopping
        const outcome = await workChunk(batch.items, { lease: batch.lease, leaseMs, renew, limit: this.limit, lettingGo: () => this.lettingGo, now: this.now },
          async phone => {
            try {
              await limiter.acquire(signal)
            } catch (err) {
              // Let go while waiting for the budget: not checked, and not failed either.
              if (this.lettingGo) throw err
              return false
            }
            try {
              return isFreshAnswer(await reachability.lookup(phone, { maxAgeSeconds: 0 }))
            } catch {
              return false
            }
          })
        // Only a runner letting go leaves numbers unchecked (each number's failure is caught above).
        if (!outcome.done) {
          this.options.log?.warn({ err: outcome.reason, job: id, start: batch.lease.start, count: batch.lease.count, givenBack: outcome.givenBack },
            'refresh runner stopped during a batch: left uncounted for another runner')
          return true
        }
        const { results: outcomes, lease } = outcome
        const done = outcomes.filter(Boolean).length
        if (!(await store.finishRefreshChunk(id, lease, done, outcomes.length - done))) {
          this.options.log?.warn({ job: id, start: lease.start, count: lease.count }, 'refresh runner: the batch\'s lease ran out and another runner took it; that runner counts it')
        }
      }
      await store.completeRefreshJob(id, new Date(this.now()).toISOString())
    }
    return worked
  }
}
