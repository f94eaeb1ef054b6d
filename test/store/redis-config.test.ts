import t from 'tap'
import { ConfigError, loadConfig } from '../../src/config.js'

// REDIS_URL (one Redis) and REDIS_CLUSTER_NODES (Redis Cluster): how they are read and checked.

function problems (env: Record<string, string>): string[] {
  try {
    loadConfig(env)
  } catch (err) {
    if (err instanceof ConfigError) return err.problems
    throw err
  }
  return []
}

t.test('REDIS_CLUSTER_NODES is read as host:port pairs', async t => {
  const config = loadConfig({ REDIS_CLUSTER_NODES: '10.0.0.1:7001, redis-b:7002,[::1]:7003' })
  t.same(config.redis.clusterNodes, [{ host: '10.0.0.1', port: 7001 }, { host: 'redis-b', port: 7002 }, { host: '::1', port: 7003 }])
  t.equal(config.redis.url, undefined)
  t.equal(loadConfig({}).redis.clusterNodes, undefined, 'unset: no cluster')
  t.equal(loadConfig({ REDIS_CLUSTER_NODES: '' }).redis.clusterNodes, undefined, 'empty counts as unset')
})

t.test('REDIS_URL and REDIS_CLUSTER_NODES together are refused', async t => {
  t.match(problems({ REDIS_URL: 'redis://127.0.0.1:6379', REDIS_CLUSTER_NODES: '127.0.0.1:7001' }), [/^REDIS_CLUSTER_NODES: .*not both/])
})

t.test('malformed node lists are refused, naming the variable', async t => {
  for (const bad of ['127.0.0.1', '127.0.0.1:', ':7001', 'a:7001,,b:7002', 'a:7001;b:7002', 'redis://a:7001', 'a:70000', 'a:0']) {
    t.match(problems({ REDIS_CLUSTER_NODES: bad }), [/^REDIS_CLUSTER_NODES: /], bad)
  }
})
