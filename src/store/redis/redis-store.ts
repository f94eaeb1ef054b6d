import { Redis, type RedisOptions } from 'ioredis'
import { StoreUnavailableError } from '../../domain/errors.js'
import type { CachedReachability, Store } from '../store.js'
import { RedisKeys } from './keys.js'

export interface RedisStoreOptions {
  url: string
  keyPrefix: string
  commandTimeoutMs: number
}

export function redisClientOptions (commandTimeoutMs: number): RedisOptions {
  return {
    lazyConnect: true,
    enableAutoPipelining: true,
    // Fail fast while Redis is away: the caller gets a 503, never a hanging request.
    maxRetriesPerRequest: 1,
    enableOfflineQueue: false,
    commandTimeout: commandTimeoutMs,
    connectTimeout: 5000,
    retryStrategy: (attempt) => Math.min(attempt * 100, 2000),
  }
}

/** Runs a Redis call, turning connection and timeout failures into StoreUnavailableError. */
async function guard<T> (work: Promise<T>): Promise<T> {
  try {
    return await work
  } catch (err) {
    throw new StoreUnavailableError(`the store did not answer: ${(err as Error).message}`, { cause: err })
  }
}

export class RedisStore implements Store {
  readonly kind = 'redis' as const
  readonly keys: RedisKeys

  private constructor (readonly redis: Redis, keyPrefix: string) {
    this.keys = new RedisKeys(keyPrefix)
  }

  static async connect (options: RedisStoreOptions): Promise<RedisStore> {
    const redis = new Redis(options.url, redisClientOptions(options.commandTimeoutMs))
    // Without a listener ioredis prints every reconnect failure as an unhandled error.
    redis.on('error', () => {})
    await redis.connect()
    return new RedisStore(redis, options.keyPrefix)
  }

  async getReachability (phoneNumber: string): Promise<CachedReachability | null> {
    const raw = await guard(this.redis.get(this.keys.reachability(phoneNumber)))
    return raw === null ? null : JSON.parse(raw) as CachedReachability
  }

  async putReachability (entry: CachedReachability, keepSeconds: number): Promise<void> {
    if (keepSeconds <= 0) return
    await guard(this.redis.set(this.keys.reachability(entry.record.phone_number), JSON.stringify(entry), 'EX', keepSeconds))
  }

  async ping (): Promise<void> {
    await guard(this.redis.ping())
  }

  async close (): Promise<void> {
    await this.redis.quit().catch(() => this.redis.disconnect())
  }
}
