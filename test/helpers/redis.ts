import { randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'

export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'

/**
 * Resolves to false when Redis is not there and the tests may be skipped;
 * with CI=true a missing Redis is a failure, never a skip.
 */
export async function redisAvailable (): Promise<boolean> {
  const probe = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 1000, retryStrategy: () => null })
  probe.on('error', () => {})
  try {
    await probe.connect()
    await probe.ping()
    return true
  } catch (err) {
    if (process.env.CI === 'true') throw new Error(`CI=true and Redis does not answer at ${REDIS_URL}: ${(err as Error).message}`)
    return false
  } finally {
    probe.disconnect()
  }
}

/** A key prefix of this test's own, so test files running in parallel never see each other's keys. */
export function uniquePrefix (): string {
  return `rrtest:${randomUUID().slice(0, 8)}:`
}

/** Deletes every key under the prefix. */
export async function dropPrefix (prefix: string): Promise<void> {
  const redis = new Redis(REDIS_URL)
  try {
    let cursor = '0'
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
      cursor = next
      if (keys.length > 0) await redis.unlink(...keys)
    } while (cursor !== '0')
  } finally {
    redis.disconnect()
  }
}
