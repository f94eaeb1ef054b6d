import { randomUUID } from 'node:crypto'
import { Cluster, Redis } from 'ioredis'

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

/** Deletes every key under the prefix (of the shared Redis, or of the one at `url`). */
export async function dropPrefix (prefix: string, url = REDIS_URL): Promise<void> {
  const redis = new Redis(url)
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

/** The seed nodes of the test Redis Cluster (.ci/redis-cluster starts one on 7001-7003). */
export const REDIS_CLUSTER_NODES = process.env.REDIS_CLUSTER_NODES ?? '127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003'

export function clusterNodes (): { host: string, port: number }[] {
  return REDIS_CLUSTER_NODES.split(',').map(item => {
    const at = item.trim().lastIndexOf(':')
    return { host: item.trim().slice(0, at), port: Number(item.trim().slice(at + 1)) }
  })
}

/**
 * Resolves to false when no Redis Cluster answers and the cluster tests may be skipped;
 * with CI=true a missing cluster is a failure, never a skip (like redisAvailable).
 */
export async function clusterAvailable (): Promise<boolean> {
  const probe = new Cluster(clusterNodes(), {
    lazyConnect: true, clusterRetryStrategy: () => null, enableOfflineQueue: false,
    redisOptions: { connectTimeout: 1000, maxRetriesPerRequest: 0 },
  })
  probe.on('error', () => {})
  probe.on('node error', () => {})
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([
      probe.connect(),
      new Promise((_resolve, reject) => { timer = setTimeout(() => reject(new Error('no answer within 3 s')), 3000) }),
    ])
    const info = await probe.cluster('INFO')
    if (!info.includes('cluster_state:ok')) throw new Error('cluster_state is not ok')
    return true
  } catch (err) {
    if (process.env.CI === 'true') throw new Error(`CI=true and no Redis Cluster answers at ${REDIS_CLUSTER_NODES}: ${(err as Error).message}`)
    return false
  } finally {
    clearTimeout(timer)
    probe.disconnect()
  }
}

/** Deletes every key under the prefix on every master of the cluster (one key per command: keys of several slots cannot go together). */
export async function dropClusterPrefix (prefix: string): Promise<void> {
  const cluster = new Cluster(clusterNodes(), { lazyConnect: true })
  cluster.on('error', () => {})
  try {
    await cluster.connect()
    await Promise.all(cluster.nodes('master').map(async node => {
      let cursor = '0'
      do {
        const [next, keys] = await node.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
        cursor = next
        await Promise.all(keys.map(key => node.unlink(key)))
      } while (cursor !== '0')
    }))
  } finally {
    cluster.disconnect()
  }
}
