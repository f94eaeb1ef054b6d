import type { Cluster, Redis, Result } from 'ioredis'

// Per-caller request counters for @fastify/rate-limit: a fixed window per key, shared by every route
// of a group (the plugin's own stores keep one bucket per route), in Redis or in this process.

declare module 'ioredis' {
  interface RedisCommander<Context> {
    rrRateLimit (key: string, windowMs: number, hits: number): Result<[number, number], Context>
  }
}

export type RateLimitGroup = 'notifications' | 'reachability' | 'ops' | 'default'

/**
 * The group a route's limit is counted in, by its path; null for routes never limited: provider
 * webhooks (a burst of receipts is not abuse, and the providers answer 429 with retries that only
 * delay them) and the health and metrics probes.
 */
export function rateLimitGroupOf (url: string): RateLimitGroup | null {
  if (url.startsWith('/v1/webhooks/') || url === '/healthz' || url === '/readyz' || url === '/metrics') return null
  if (url === '/v1/notifications' || url.startsWith('/v1/notifications/')) return 'notifications'
  if (url.startsWith('/v1/reachability/') || url.startsWith('/identity-insights/') || url === '/v0.1/identity-insights') return 'reachability'
  if (url === '/v1/queue' || url.startsWith('/v1/queue/')) return 'ops'
  return 'default'
}

export interface WindowCount {
  /** Requests counted in the current window, this one included. */
  current: number
  /** Milliseconds until the window ends. */
  ttl: number
}

/** The store shape @fastify/rate-limit calls: count one request under key (max is the route's limit). */
export interface WindowCounter {
  incr (key: string, done: (err: Error | null, result?: WindowCount) => void, windowMs: number, max: number): void
  /** The plugin asks each route for a child store; every route shares this one (the key names the group). */
  child (): WindowCounter
}

// INCRBY n, and PEXPIRE when the window starts (or when a key lost its expiry): answers [count, ms left].
const FIXED_WINDOW = `
local current = redis.call('INCRBY', KEYS[1], ARGV[2])
local ttl = redis.call('PTTL', KEYS[1])
if current == tonumber(ARGV[2]) or ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return { current, ttl }
`

/** The most hits one process reserves at once, and the share of a window's remaining hits it may reserve. */
const MAX_BLOCK = 100
const BLOCK_SHARE = 16

type Done = (err: Error | null, result?: WindowCount) => void

/** A window of one key as this process knows it: the block of counts it reserved, and the hits waiting for the next block. */
interface Window {
  endsAt: number
  /** The count the next hit gets, and the last count of the reserved block. */
  next: number
  last: number
  fetching: boolean
  waiting: Done[]
}

/**
 * Counters shared by every process on one Redis (or Redis Cluster: one key per script, under its own hash tag).
 *
 * A process does not ask Redis for every hit: it reserves a block of counts at once (INCRBY n) and gives them
 * to its hits in order, so each hit still gets its own place in the shared count and the limit is never
 * exceeded. A block is at most MAX_BLOCK hits and at most 1/BLOCK_SHARE of what the window has left, so small
 * limits are counted hit by hit and, near the limit, one hit at a time; what a block leaves unused when its
 * window ends is counted but never served (at most that share of the window, per process).
 */
export class RedisWindowCounter implements WindowCounter {
  private readonly windows = new Map<string, Window>()

  constructor (private readonly redis: Redis | Cluster, private readonly keyPrefix: string,
    private readonly maxKeys = 10_000, private readonly now: () => number = Date.now) {
    redis.defineCommand('rrRateLimit', { numberOfKeys: 1, lua: FIXED_WINDOW })
  }

  /** `<prefix>{rl:<group>:<caller>}:hits`. */
  key (key: string): string {
    return `${this.keyPrefix}{rl:${key}}:hits`
  }

  incr (key: string, done: Done, windowMs: number, max: number): void {
    const now = this.now()
    let window = this.windows.get(key)
    if (!window) {
      if (this.windows.size >= this.maxKeys) this.makeRoom(now)
      window = { endsAt: 0, next: 1, last: 0, fetching: false, waiting: [] }
      this.windows.set(key, window)
    }
    if (!window.fetching && window.endsAt > now) {
      if (window.next <= window.last) return done(null, { current: window.next++, ttl: window.endsAt - now })
      // Over the limit already: refused without asking Redis again (the count past the limit changes nothing).
      if (window.last >= max) return done(null, { current: window.last + 1, ttl: window.endsAt - now })
    }
    window.waiting.push(done)
    if (!window.fetching) this.reserve(key, window, windowMs, max)
  }

  private reserve (key: string, window: Window, windowMs: number, max: number): void {
    const known = window.endsAt > this.now() ? window.last : 0
    const size = Math.max(window.waiting.length, Math.min(MAX_BLOCK, Math.floor((max - known) / BLOCK_SHARE)), 1)
    window.fetching = true
    this.redis.rrRateLimit(this.key(key), windowMs, size).then(([total, ttl]) => {
      window.fetching = false
      window.endsAt = this.now() + ttl
      window.next = total - size + 1
      window.last = total
      const waiting = window.waiting.splice(0, size)
      for (const done of waiting) done(null, { current: window.next++, ttl })
      if (window.waiting.length > 0) this.reserve(key, window, windowMs, max)
    }, (err: Error) => {
      window.fetching = false
      for (const done of window.waiting.splice(0)) done(err)
    })
  }

  /** Forgets ended windows (never one whose block is being reserved), then the oldest. */
  private makeRoom (now: number): void {
    for (const [key, window] of this.windows) if (!window.fetching && window.endsAt <= now) this.windows.delete(key)
    for (const [key, window] of this.windows) {
      if (this.windows.size < this.maxKeys) break
      if (!window.fetching) this.windows.delete(key)
    }
  }

  child (): WindowCounter {
    return this
  }
}

/** Counters of this process alone (the in-memory store). At most maxKeys windows are kept: when full, ended ones go first, then the oldest. */
export class MemoryWindowCounter implements WindowCounter {
  private readonly windows = new Map<string, { count: number, endsAt: number }>()

  constructor (private readonly maxKeys = 10_000, private readonly now: () => number = Date.now) {}

  incr (key: string, done: (err: Error | null, result?: WindowCount) => void, windowMs: number): void {
    const now = this.now()
    let window = this.windows.get(key)
    if (!window || window.endsAt <= now) {
      this.windows.delete(key)
      if (this.windows.size >= this.maxKeys) this.makeRoom(now)
      window = { count: 0, endsAt: now + windowMs }
      this.windows.set(key, window)
    }
    window.count++
    done(null, { current: window.count, ttl: window.endsAt - now })
  }

  private makeRoom (now: number): void {
    for (const [key, window] of this.windows) if (window.endsAt <= now) this.windows.delete(key)
    for (const key of this.windows.keys()) {
      if (this.windows.size < this.maxKeys) break
      this.windows.delete(key)
    }
  }

  child (): WindowCounter {
    return this
  }
}
