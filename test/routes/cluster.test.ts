import t from 'tap'
import { Cluster } from 'ioredis'
import { SandboxPushChannel, SandboxSmsChannel } from '../../src/channels/sandbox.js'
import { SandboxUpstream } from '../../src/reachability/upstreams/sandbox.js'
import { buildTestApp } from '../helpers/app.js'
import { clusterAvailable, clusterNodes, dropClusterPrefix, REDIS_CLUSTER_NODES, uniquePrefix } from '../helpers/redis.js'
import { waitFor } from '../helpers/wait.js'

// The notify flow end to end on Redis Cluster: accept (one script per shard), route, deliver, status.

const haveCluster = await clusterAvailable()
const both = { sms: { text: 'Your code is 123456' }, push: { title: 'Code', body: 'Your code is 123456' } }

t.test('end to end on Redis Cluster', { skip: !haveCluster && 'no Redis Cluster answers (.ci/redis-cluster starts one; CI=true makes this a failure)' }, async t => {
  const prefix = uniquePrefix()
  const sms = new SandboxSmsChannel({ log: () => {} })
  const push = new SandboxPushChannel({ log: () => {} })
  const { app, bearer } = await buildTestApp({
    REDIS_CLUSTER_NODES, REDIS_KEY_PREFIX: prefix, QUEUE_SHARDS: '8', WORKERS: 'on', WORKER_IDLE_POLL_MS: '20',
  }, { upstream: new SandboxUpstream({ comebackSeconds: 20 }), channels: { sms, push } })
  const cluster = new Cluster(clusterNodes(), { lazyConnect: true })
  cluster.on('error', () => {})
  await cluster.connect()
  t.teardown(async () => {
    await app.close()
    cluster.disconnect()
    await dropClusterPrefix(prefix)
  })
  t.equal(app.store.kind, 'redis')
  const auth = await bearer()
  const notify = (payload: object, headers: Record<string, string> = {}) =>
    app.inject({ method: 'POST', url: '/v1/notifications', headers: { authorization: auth, ...headers }, payload })
  const status = async (id: string) => (await app.inject({ url: `/v1/notifications/${id}`, headers: { authorization: auth } })).json()
  const until = (id: string, wanted: string) => waitFor(async () => {
    const n = await status(id)
    return n.status === wanted ? n : undefined
  }, 10_000, `${id} to be ${wanted}`)

  t.test('ready: every master answers', async t => {
    const res = await app.inject({ url: '/readyz' })
    t.equal(res.statusCode, 200)
    t.same(res.json(), { status: 'ready', store: 'redis' })
  })

  t.test('push, SMS, failover and the fallback queue, across every shard', async t => {
    const sent: { id: string, channel: string }[] = []
    // 40 notifications spread over the 8 shards, so every master gets some: with an Idempotency-Key the shard
    // is a hash of the key (without one it is the number's, and these are four numbers).
    for (let i = 0; i < 10; i++) {
      const a = await notify({ to: '+990123400', message: both, push_token: `tok-${i}` }, { 'idempotency-key': `a-${i}` })
      const b = await notify({ to: '+990123411', message: both, push_token: 'tok' }, { 'idempotency-key': `b-${i}` })
      const c = await notify({ to: '+990123400', message: both, push_token: 'invalid-token' }, { 'idempotency-key': `c-${i}` })
      for (const res of [a, b, c]) t.equal(res.statusCode, 202)
      sent.push({ id: a.json().id, channel: 'push' }, { id: b.json().id, channel: 'sms' }, { id: c.json().id, channel: 'sms' })
      const queued = await notify({ to: '+990123433', message: both, push_token: 'tok' })
      t.match(queued.json(), { status: 'queued', channel: 'fallback_queue' })
    }
    for (const { id, channel } of sent) {
      const done = await until(id, 'sent')
      t.equal(done.channel, channel, `${id} over ${channel}`)
      t.equal(done.events.filter((e: { type: string, outcome?: string }) => e.type === 'provider_answer' && e.outcome === 'sent').length, 1)
    }
    t.equal(push.deliveries().length, 10)
    t.equal(sms.deliveries().length, 20)

    const shards = new Set(sent.map(s => Number(s.id.slice(4, 6))))
    t.ok(shards.size > 3, `notifications went to ${shards.size} shards`)
    const owners = new Set<string>()
    for (const shard of shards) {
      const slot = Number(await cluster.cluster('KEYSLOT', `${prefix}{s${shard}}:outbox:sms`))
      owners.add(cluster.slots[slot]![0]!)
    }
    t.ok(owners.size > 1, `the shards live on ${owners.size} masters: ${[...owners].join(', ')}`)
  })

  t.test('idempotent replay on the cluster: one notification, one delivery', async t => {
    const before = sms.deliveries().length
    const first = await notify({ to: '+990123411', message: both }, { 'idempotency-key': 'cluster-order-1' })
    const again = await notify({ to: '+990123411', message: both }, { 'idempotency-key': 'cluster-order-1' })
    t.equal(first.statusCode, 202)
    t.equal(again.headers['idempotent-replayed'], 'true')
    t.same(again.json(), first.json())
    await until(first.json().id, 'sent')
    t.equal(sms.deliveries().length, before + 1)
  })

  t.test('the keys of one notification share its shard\'s slot', async t => {
    const { id } = (await notify({ to: '+990123411', message: both })).json()
    await until(id, 'sent')
    const shard = Number(id.slice(4, 6))
    const slots = await Promise.all([`{s${shard}}:n:${id}`, `{s${shard}}:ev:${id}`, `{s${shard}}:outbox:sms`, `{s${shard}}:retry`, `{s${shard}}:dead`]
      .map(k => cluster.cluster('KEYSLOT', prefix + k)))
    t.equal(new Set(slots).size, 1)
    t.equal(await cluster.hget(`${prefix}{s${shard}}:n:${id}`, 'status'), 'sent')
  })
})
