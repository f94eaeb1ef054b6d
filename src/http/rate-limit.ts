import type { Cluster, Redis, Result } from 'ioredis'

// Per-caller request counters for @fastify/rate-limit: a fixed window per key, shared by every route
// of a group (the plugin's own stores keep one bucket per route), in Redis or in this process.

declare module 'ioredis' {
  interface RedisCommander<Context> {
    rrRateLimit (key: string, windowMs: number): Result<[number, number], Context>
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

/** The store shape @fastify/rate-limit calls: count one request under key. */
export interface WindowCounter {
  incr (key: string, done: (err: Error | null, result?: WindowCount) => void, windowMs: number): void
  /** The plugin asks each route for a child store; every route shares this one (the key names the group). */
  child (): WindowCounter
}

// INCR, and PEXPIRE when the window starts (or when a key lost its expiry): answers [count, ms left].
const FIXED_WINDOW = `
local current = redis.call('INCR', KEYS[1])
local ttl = redis.call('PTTL', KEYS[1])
if current == 1 or ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return { current, ttl }
`

/** Counters shared by every process on one Redis (or Redis Cluster: one key per script, under its own hash tag). */
export class RedisWindowCounter implements WindowCounter {
  constructor (private readonly redis: Redis | Cluster, private readonly keyPrefix: string) {
    redis.defineCommand('rrRateLimit', { numberOfKeys: 1, lua: FIXED_WINDOW })
  }

  /** `<prefix>{rl:<group>:<caller>}:hits`. */
  key (key: string): string {
    return `${this.keyPrefix}{rl:${key}}:hits`
  }

  incr (key: string, done: (err: Error | null, result?: WindowCount) => void, windowMs: number): void {
    this.redis.rrRateLimit(this.key(key), windowMs).then(
      ([current, ttl]) => done(null, { current, ttl }),
      (err: Error) => done(err))
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
