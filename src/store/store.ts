import type { Reachability } from '../domain/reachability.js'

// The port every piece of state goes through. Two adapters: redis/ (production) and memory/ (embedded default).

export interface CachedReachability {
  record: Reachability
  /** Epoch ms until which the record is fresh; after it, it may only be served as stale. */
  freshUntil: number
}

export interface Store {
  readonly kind: 'redis' | 'memory'
  getReachability (phoneNumber: string): Promise<CachedReachability | null>
  /** Keeps the entry for keepSeconds (its freshness plus the stale window). */
  putReachability (entry: CachedReachability, keepSeconds: number): Promise<void>
  /** Resolves when the store answers; throws StoreUnavailableError when it does not. */
  ping (): Promise<void>
  close (): Promise<void>
}
