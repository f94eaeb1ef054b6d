import fp from 'fastify-plugin'
import { MemoryStore } from '../src/store/memory/memory-store.js'
import { RedisStore } from '../src/store/redis/redis-store.js'
import type { Store } from '../src/store/store.js'

declare module 'fastify' {
  interface FastifyInstance {
    store: Store
  }
}

export default fp<{ store?: Store }>(async (app, options) => {
  let store = options.store
  if (!store) {
    const { url, clusterNodes, keyPrefix, commandTimeoutMs } = app.config.redis
    if (clusterNodes) {
      store = await RedisStore.connect({ clusterNodes, keyPrefix, commandTimeoutMs, shards: app.config.shards })
      app.log.info({ store: 'redis', cluster: clusterNodes.map(n => `${n.host}:${n.port}`), keyPrefix }, 'store: Redis Cluster')
    } else if (url) {
      store = await RedisStore.connect({ url, keyPrefix, commandTimeoutMs, shards: app.config.shards })
      app.log.info({ store: 'redis', keyPrefix }, 'store: Redis')
    } else {
      store = new MemoryStore({ shards: app.config.shards })
      app.log.warn({ store: 'memory' }, 'store: in-memory (neither REDIS_URL nor REDIS_CLUSTER_NODES is set); nothing survives a restart')
    }
    const opened = store
    app.addHook('onClose', async () => opened.close())
  }
  app.decorate('store', store)
}, { name: 'store', fastify: '5.x', dependencies: ['config'] })
