import t, { type Test } from 'tap'
import { SandboxUpstream } from '../../../src/reachability/upstreams/sandbox.js'
import { MemoryStore } from '../../../src/store/memory/memory-store.js'
import { RedisStore } from '../../../src/store/redis/redis-store.js'
import { buildTestApp } from '../../helpers/app.js'
import { dropPrefix, REDIS_URL, redisAvailable, uniquePrefix } from '../../helpers/redis.js'
import { counted } from '../../helpers/store.js'
import { CountingUpstream } from '../../helpers/upstream.js'

// A number this process has read from the cache is routed on that entry and stored in one store call that
// checks the entry is unchanged; an entry another process has rewritten since is never the basis of a decision.

const haveRedis = await redisAvailable()
const SHARDS = 4


async function setup (t: Test, kind: 'memory' | 'redis') {
  const prefix = uniquePrefix()
  const inner = kind === 'memory'
    ? new MemoryStore({ shards: SHARDS })
    : await RedisStore.connect({ url: REDIS_URL, keyPrefix: prefix, commandTimeoutMs: 1000, shards: SHARDS })
  const { store, calls } = counted(inner)
  const upstream = new CountingUpstream(new SandboxUpstream({ comebackSeconds: 20 }))
  const { app, bearer } = await buildTestApp({ QUEUE_SHARDS: String(SHARDS), WORKERS: 'off' }, { store, upstream })
  t.teardown(async () => {
    await app.close()
    await inner.close()
    if (kind === 'redis') await dropPrefix(prefix)
  })
  const auth = await bearer()
  const notify = async (payload: object) => {
    calls.clear()
    const res = await app.inject({ method: 'POST', url: '/v1/notifications', headers: { authorization: auth }, payload })
    t.equal(res.statusCode, 202)
    return res.json()
  }
  return { inner, calls, upstream, notify }
}

const message = { sms: { text: 'Your code is 123456' }, push: { title: 'Code', body: 'Your code is 123456' } }

for (const kind of ['memory', 'redis'] as const) {
  t.test(`${kind} store`, { skip: kind === 'redis' && !haveRedis && 'Redis is not running' }, async t => {
    t.test('a number read from the cache before is accepted in one store call', async t => {
      const { calls, upstream, notify } = await setup(t, kind)
      const first = await notify({ to: '+990123400', message, push_token: 'tok' })
      t.equal(first.reachability.source, 'upstream')
      const second = await notify({ to: '+990123400', message, push_token: 'tok' })
      t.equal(second.reachability.source, 'cache')
      t.equal(calls.get('getReachability'), 1, 'a cache read, then the accept')
      t.equal(calls.get('acceptNotification'), 1)
      const third = await notify({ to: '+990123400', message, push_token: 'tok' })
      t.match(third, { channel: 'push', reachability: { source: 'cache', connectivity: ['DATA', 'SMS'] } })
      t.same([...calls.keys()], ['acceptNotification'], 'the third: no cache read, one accept that checks the entry')
      t.equal(upstream.calls.length, 1, 'one upstream lookup in all')
      t.equal(third.id.slice(4, 6), second.id.slice(4, 6), 'both in the number\'s shard')
    })

    t.test('an entry rewritten by another process since is not the basis of the decision', async t => {
      const { inner, calls, notify } = await setup(t, kind)
      await notify({ to: '+990123400', message, push_token: 'tok' })
      await notify({ to: '+990123400', message, push_token: 'tok' })
      // Another process learns that the device went off the network.
      const cached = (await inner.getReachability('+990123400'))!
      await inner.putReachability({
        record: { ...cached.record, is_reachable: false, connectivity: [], checked_at: new Date().toISOString() },
        freshUntil: Date.now() + 60_000,
      }, 120)
      const answer = await notify({ to: '+990123400', message, push_token: 'tok' })
      t.match(answer, { channel: 'fallback_queue', reachability: { is_reachable: false, source: 'cache' } }, 'routed on the entry as it is now')
      t.equal(calls.get('acceptNotification'), 2, 'the guess was refused by the store, then the lookup and the accept')
      t.equal(calls.get('getReachability'), 1)
      // The refused accept stored nothing: the number's shard holds the push jobs of the two notifications before the change.
      const jobs = await inner.readOutbox(Number(answer.id.slice(4, 6)), ['push'], 'check', 100)
      t.equal(jobs.length, 2, 'the two push notifications before the change, no third')
    })

    t.test('a guess older than max_age is not used', async t => {
      const { calls, upstream, notify } = await setup(t, kind)
      await notify({ to: '+990123400', message, push_token: 'tok' })
      await notify({ to: '+990123400', message, push_token: 'tok' })
      await new Promise(resolve => setTimeout(resolve, 1100))
      const answer = await notify({ to: '+990123400', message, push_token: 'tok', routing: { max_age: 1 } })
      t.equal(answer.reachability.source, 'upstream', 'older than a second: asked again')
      t.equal(calls.get('getReachability'), 1, 'one cache read, before the upstream (news that came meanwhile is checked by the write itself)')
      t.equal(upstream.calls.length, 2)
    })
  })
}
