import { StoreUnavailableError } from '../../src/domain/errors.js'
import { MemoryStore } from '../../src/store/memory/memory-store.js'
import { RedisStore } from '../../src/store/redis/redis-store.js'
import type { Store } from '../../src/store/store.js'
import { dropPrefix, REDIS_URL, uniquePrefix } from './redis.js'

/** A store of a test's own and how to be rid of it. */
export interface OpenedStore {
  store: Store
  cleanup: () => Promise<void>
}

export async function openMemoryStore (shards: number): Promise<OpenedStore> {
  const store = new MemoryStore({ shards })
  return { store, cleanup: () => store.close() }
}

/** A Redis store on the shared Redis under a key prefix of its own, deleted at cleanup. */
export async function openRedisStore (shards: number, commandTimeoutMs = 2000): Promise<OpenedStore> {
  const keyPrefix = uniquePrefix()
  const store = await RedisStore.connect({ url: REDIS_URL, keyPrefix, commandTimeoutMs, shards })
  return {
    store,
    cleanup: async () => {
      await store.close()
      await dropPrefix(keyPrefix)
    },
  }
}

/** The store with a switch: while `down`, every call fails as a Redis that does not answer does. */
export function withOutage (store: Store): { store: Store, state: { down: boolean } } {
  const state = { down: false }
  return { store: wrapCalls(store, call => state.down ? Promise.reject(new StoreUnavailableError('the store does not answer (test outage)')) : call()), state }
}

/** The store, failing the next `fail[method]` calls of each method named as a Redis that does not answer. */
export function failingCalls (store: Store): { store: Store, fail: Record<string, number> } {
  const fail: Record<string, number> = {}
  return {
    store: wrapCalls(store, (call, method) => {
      if ((fail[method] ?? 0) <= 0) return call()
      fail[method]!--
      return Promise.reject(new StoreUnavailableError(`${method} failed (test)`))
    }),
    fail,
  }
}

/** The store, with a count of the calls made to it by method. */
export function counted (store: Store): { store: Store, calls: Map<string, number> } {
  const calls = new Map<string, number>()
  return {
    store: wrapCalls(store, (call, method) => {
      calls.set(method, (calls.get(method) ?? 0) + 1)
      return call()
    }),
    calls,
  }
}

/** Every method call of the store goes through `around`, which decides whether and how it is made. */
function wrapCalls (store: Store, around: (call: () => unknown, method: string) => unknown): Store {
  return new Proxy(store, {
    get (target, property, receiver) {
      const value = Reflect.get(target, property, receiver) as unknown
      if (typeof value !== 'function') return value
      return (...args: unknown[]) => around(() => (value as (...a: unknown[]) => unknown).apply(target, args), String(property))
    },
  })
}
