import { LRUCache } from 'lru-cache'
import pLimit from 'p-limit'
import { UpstreamUnavailableError, ValidationError } from '../domain/errors.js'
import { normalizePhoneNumber } from '../domain/phone.js'
import { hasData, hasSms, isInvalidNumberCode, isSuccessCode, isTransientCode, type Reachability, type ReachabilityResult, toRecord, type UpstreamAnswer } from '../domain/reachability.js'
import type { CachedReachability, Store } from '../store/store.js'
import { type CachePolicy, freshSeconds } from './cache-policy.js'
import { type ReachabilityUpstream, UpstreamFailure } from './upstreams/upstream.js'

export interface LookupOptions {
  /** Accept a cached answer only if it is at most this many seconds old. */
  maxAgeSeconds?: number
  /**
   * Vonage's purpose of the caller's own. One other than the upstream's default (defaultPurpose) is asked of the
   * upstream itself (it may refuse the purpose), never answered from the cache, a stale entry or another caller's
   * lookup, so an answer given under one purpose is not handed out under another; a valid reading it gives is cached
   * for everyone. The default itself, or any purpose when the upstream has none, is an ordinary lookup.
   */
  purpose?: string
  /**
   * Awaited when the cache has no fresh answer, before the upstream is asked (background work waits here for
   * a token of the shared upstream budget). The cache is read again after it: another caller may have answered.
   */
  beforeUpstream?: () => Promise<void>
}

export interface ReachabilityServiceOptions {
  store: Store
  upstream: ReachabilityUpstream
  policy: CachePolicy
  maxStaleSeconds: number
  /** The whole budget of one upstream lookup, its retries included. */
  deadlineMs: number
  now?: () => number
  /** The purpose the upstream asks under unless told otherwise (Vonage); unset when the upstream has no purposes. */
  defaultPurpose?: string
  /** Told of every result, whatever its source (reports, metrics). */
  onResult?: (result: ReachabilityResult) => void
  /** How many numbers' latest cache reads this process remembers as guesses (see recentlyCached); default 10,000. */
  recentEntries?: number
}

/** A cache entry this process read, as a guess to check (see ReachabilityService.recentlyCached). */
export interface CachedGuess {
  /** Shared by every accept routed on this guess: never to be changed. */
  readonly result: ReachabilityResult
  version: string
}

/**
 * Answers from the cache while it is fresh; otherwise asks the upstream once per number
 * however many callers ask at the same time (single-flight), caches the answer for as long
 * as its outcome deserves, and falls back to a stale entry when the upstream has no answer.
 */
export class ReachabilityService {
  private readonly inFlight = new Map<string, Promise<ReachabilityResult>>()
  private readonly now: () => number
  private readonly recent: LRUCache<string, CachedGuess & { cached: CachedReachability }>

  constructor (private readonly options: ReachabilityServiceOptions) {
    this.now = options.now ?? Date.now
    this.recent = new LRUCache({ max: options.recentEntries ?? 10_000 })
  }

  async lookup (phoneNumber: string, options: LookupOptions = {}): Promise<ReachabilityResult> {
    const { purpose } = options
    if (purpose !== undefined && this.options.defaultPurpose !== undefined && purpose !== this.options.defaultPurpose) {
      return this.single(`${phoneNumber}\0${purpose}`, () => this.fetch(phoneNumber, null, purpose))
    }
    let cached = await this.readCache(phoneNumber)
    if (cached && this.isFresh(cached, options.maxAgeSeconds)) return this.emit({ ...cached.record, source: 'cache' })
    if (options.beforeUpstream) {
      await options.beforeUpstream()
      cached = await this.readCache(phoneNumber)
      if (cached && this.isFresh(cached, options.maxAgeSeconds)) return this.emit({ ...cached.record, source: 'cache' })
    }

    return this.single(phoneNumber, () => this.fetch(phoneNumber, cached, undefined))
  }

  /** One upstream lookup per key at a time: a caller asking meanwhile joins it. */
  private single (key: string, fetch: () => Promise<ReachabilityResult>): Promise<ReachabilityResult> {
    const joined = this.inFlight.get(key)
    if (joined) return joined
    const lookup = fetch().finally(() => this.inFlight.delete(key))
    this.inFlight.set(key, lookup)
    return lookup
  }

  /** The number's cache entry, remembered as this process's latest read of it (see recentlyCached). */
  private async readCache (phoneNumber: string): Promise<CachedReachability | null> {
    const cached = await this.options.store.getReachability(phoneNumber)
    // The guess is built once per read, not per accept: every accept routed on it shares its result (never changed).
    if (cached?.version !== undefined) this.recent.set(phoneNumber, { cached, result: { ...cached.record, source: 'cache' }, version: cached.version })
    return cached
  }

  /**
   * The cache entry this process last read for the number, if it would still answer a lookup now (fresh,
   * and within maxAgeSeconds): a guess, to be checked by the store in the same step as the write that
   * relies on it (AcceptCommand.basedOn), so a decision never rests on an entry that has since changed.
   */
  recentlyCached (phoneNumber: string, maxAgeSeconds?: number): CachedGuess | undefined {
    const entry = this.recent.get(phoneNumber)
    return entry && this.isFresh(entry.cached, maxAgeSeconds) ? entry : undefined
  }

  /** Counts a guess the store confirmed as a lookup answered from the cache. */
  confirmed (guess: CachedGuess): void {
    this.emit(guess.result)
  }

  /** The guess turned out wrong: the number's entry changed since this process read it. */
  forget (phoneNumber: string): void {
    this.recent.delete(phoneNumber)
  }

  /**
   * Caches an answer that came by other means (an operator's event) as if the upstream had just given it, unless
   * it tells of an earlier moment than the number's report already knows (an event that came late, maybe after
   * the cache entry it was older than expired): then nothing is kept, and it resolves null.
   */
  async record (phoneNumber: string, answer: UpstreamAnswer): Promise<ReachabilityResult | null> {
    const record = toRecord(phoneNumber, answer, new Date(this.now()))
    this.recent.delete(phoneNumber)
    if (!(await this.report(record, true))) return null
    const { entry, keepSeconds } = this.cacheEntry(record)
    await this.options.store.putReachability(entry, keepSeconds)
    return this.emit({ ...record, source: 'upstream' })
  }

  /**
   * An upstream answer (asked at `askedAt`) goes into the cache for as long as its outcome deserves, and into the
   * number's report. News cached meanwhile (an operator's event: the device is back) is not overwritten by an answer
   * about an earlier moment: checked in the same step as the write, the newer entry stands and is resolved, and the
   * report is left as that news made it.
   */
  private async keep (record: Reachability, askedAt: number): Promise<Reachability | null> {
    this.recent.delete(record.phone_number)
    const { entry, keepSeconds } = this.cacheEntry(record)
    const newer = await this.options.store.putReachability(entry, keepSeconds, askedAt)
    if (!newer) await this.report(record, false)
    return newer
  }

  /** The cache entry of a new record, and how long it is kept (0: not at all; its freshness plus the stale window). */
  private cacheEntry (record: Reachability): { entry: CachedReachability, keepSeconds: number } {
    const fresh = freshSeconds(record, this.options.policy)
    return { entry: { record, freshUntil: this.now() + fresh * 1000 }, keepSeconds: fresh > 0 ? fresh + this.options.maxStaleSeconds : 0 }
  }

  /** Folds a new record into the number's report (see Store.recordReport); resolves whether it was. */
  private report (record: Reachability, unlessLater: boolean): Promise<boolean> {
    return this.options.store.recordReport(record, isSuccessCode(record.status.code) ? hasData(record) || hasSms(record) : null, unlessLater)
  }

  /** The cached entry as it is, fresh or not (null when there is none). */
  async cached (phoneNumber: string): Promise<Reachability | null> {
    return (await this.options.store.getReachability(phoneNumber))?.record ?? null
  }

  private isFresh (cached: CachedReachability, maxAgeSeconds: number | undefined): boolean {
    const now = this.now()
    if (now >= cached.freshUntil) return false
    if (maxAgeSeconds === undefined) return true
    // max_age=0 asks the upstream whatever the cache holds: an entry checked in this very millisecond is not taken.
    return maxAgeSeconds > 0 && now - Date.parse(cached.record.checked_at) <= maxAgeSeconds * 1000
  }

  private async fetch (phoneNumber: string, cached: CachedReachability | null, purpose: string | undefined): Promise<ReachabilityResult> {
    let record: Reachability
    const startedAt = this.now()
    try {
      const signal = AbortSignal.timeout(this.options.deadlineMs)
      const answer = await withDeadline(this.options.upstream.check(phoneNumber, { signal, ...(purpose ? { purpose } : {}) }), signal)
      record = toRecord(phoneNumber, answer, new Date(this.now()))
    } catch (err) {
      // A request under the caller's own purpose that the upstream calls bad (400): the caller's to mend, not an outage.
      if (purpose !== undefined && err instanceof UpstreamFailure && err.refused && err.statusCode === 400) {
        throw new ValidationError(`the upstream refused the lookup under purpose ${JSON.stringify(purpose)}: ${err.message}`, [{ path: 'body.purpose', message: 'refused by the upstream' }])
      }
      const stale = this.stale(cached)
      if (stale) return stale
      if (err instanceof UpstreamFailure) throw new UpstreamUnavailableError(err.message, err.retryAfterSeconds, { cause: err })
      if (isAbort(err)) throw new UpstreamUnavailableError(`no answer within ${this.options.deadlineMs} ms`, 5, { cause: err })
      throw err
    }

    if (isTransientCode(record.status.code)) return this.stale(cached) ?? this.emit({ ...record, source: 'upstream' })
    // Refused under a caller's own purpose (INVALID_PURPOSE, UNAUTHORIZED): an answer about the purpose, not the
    // device, so it is that caller's alone, neither kept nor replaced by news cached meanwhile.
    if (purpose !== undefined && !isSuccessCode(record.status.code) && !isInvalidNumberCode(record.status.code)) {
      return this.emit({ ...record, source: 'upstream' })
    }
    // News cached while the upstream was asked stands, and is the answer.
    const newer = await this.keep(record, startedAt)
    return this.emit(newer ? { ...newer, source: 'cache' } : { ...record, source: 'upstream' })
  }

  private stale (cached: CachedReachability | null): ReachabilityResult | undefined {
    if (!cached) return undefined
    if (this.now() - cached.freshUntil > this.options.maxStaleSeconds * 1000) return undefined
    return this.emit({ ...cached.record, source: 'stale_cache' })
  }

  private emit (result: ReachabilityResult): ReachabilityResult {
    this.options.onResult?.(result)
    return result
  }
}

/** Settles with the work, or rejects when the signal fires first, whether or not the work heeds it. */
function withDeadline<T> (work: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort))
  })
}

function isAbort (err: unknown): boolean {
  return err instanceof Error && (err.name === 'AbortError' || err.name === 'TimeoutError')
}

export type BatchItem = { ok: true, result: ReachabilityResult } | { ok: false, error: Error }

/** Looks up many numbers, at most `concurrency` at a time; an invalid number fails alone. */
export async function lookupMany (service: ReachabilityService, inputs: string[], concurrency: number, options: LookupOptions = {}): Promise<BatchItem[]> {
  const limit = pLimit(concurrency)
  return Promise.all(inputs.map(input => limit(async (): Promise<BatchItem> => {
    try {
      return { ok: true, result: await service.lookup(normalizePhoneNumber(input), options) }
    } catch (error) {
      return { ok: false, error: error as Error }
    }
  })))
}
