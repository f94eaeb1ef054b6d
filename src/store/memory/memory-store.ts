import type { CachedReachability, Store } from '../store.js'

interface Expiring<T> {
  value: T
  expiresAt: number
}

/** A map whose entries vanish after their time; a swept bound keeps it from growing forever. */
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

  sweep (): void {
    const now = this.now()
    for (const [key, entry] of this.entries) if (entry.expiresAt <= now) this.entries.delete(key)
  }
}

export interface MemoryStoreOptions {
  now?: () => number
  sweepIntervalMs?: number
}

/** The embedded store: everything in this process, nothing survives a restart. */
export class MemoryStore implements Store {
  readonly kind = 'memory' as const
  private readonly reachability: ExpiringMap<CachedReachability>
  private readonly sweeper: NodeJS.Timeout

  constructor (options: MemoryStoreOptions = {}) {
    const now = options.now ?? Date.now
    this.reachability = new ExpiringMap(now)
    this.sweeper = setInterval(() => this.reachability.sweep(), options.sweepIntervalMs ?? 60_000)
    this.sweeper.unref()
  }

  async getReachability (phoneNumber: string): Promise<CachedReachability | null> {
    return structuredClone(this.reachability.get(phoneNumber) ?? null)
  }

  async putReachability (entry: CachedReachability, keepSeconds: number): Promise<void> {
    this.reachability.set(entry.record.phone_number, structuredClone(entry), keepSeconds * 1000)
  }

  async ping (): Promise<void> {}

  async close (): Promise<void> {
    clearInterval(this.sweeper)
  }
}
