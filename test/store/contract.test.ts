import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Reachability } from '../../src/domain/reachability.js'
import { MemoryStore } from '../../src/store/memory/memory-store.js'
import { RedisStore } from '../../src/store/redis/redis-store.js'
import type { Store } from '../../src/store/store.js'
import { dropPrefix, REDIS_URL, redisAvailable, uniquePrefix } from '../helpers/redis.js'

// One suite, every adapter of the store port.

const record = (phone: string): Reachability => ({
  phone_number: phone,
  is_reachable: true,
  connectivity: ['DATA', 'SMS'],
  latest_status_at: '2026-11-25T10:00:00.000Z',
  status: { code: 'OK', message: 'Success' },
  checked_at: '2026-11-25T10:00:01.000Z',
})

function contract (name: string, open: () => Promise<{ store: Store, cleanup: () => Promise<void> }>) {
  t.test(name, async t => {
    const { store, cleanup } = await open()
    t.teardown(cleanup)

    t.test('an unknown number has no cached reachability', async t => {
      t.equal(await store.getReachability('+990100000'), null)
    })

    t.test('a cached reachability reads back as written', async t => {
      const entry = { record: record('+990100001'), freshUntil: Date.now() + 60_000 }
      await store.putReachability(entry, 120)
      t.same(await store.getReachability('+990100001'), entry)
    })

    t.test('an entry is gone once its keep time has passed', async t => {
      await store.putReachability({ record: record('+990100002'), freshUntil: Date.now() }, 1)
      t.ok(await store.getReachability('+990100002'))
      await sleep(1100)
      t.equal(await store.getReachability('+990100002'), null)
    })

    t.test('a later write replaces the earlier one', async t => {
      await store.putReachability({ record: record('+990100003'), freshUntil: 1 }, 60)
      const second = { record: { ...record('+990100003'), is_reachable: false, connectivity: [] }, freshUntil: 2 }
      await store.putReachability(second, 60)
      t.same(await store.getReachability('+990100003'), second)
    })

    t.test('what is read back is a copy, not the stored object', async t => {
      await store.putReachability({ record: record('+990100004'), freshUntil: 1 }, 60)
      const first = await store.getReachability('+990100004')
      first!.record.connectivity.push('MUTATED')
      t.same((await store.getReachability('+990100004'))!.record.connectivity, ['DATA', 'SMS'])
    })

    t.test('ping answers', async t => {
      await t.resolves(store.ping())
    })
  })
}

contract('memory store', async () => {
  const store = new MemoryStore()
  return { store, cleanup: () => store.close() }
})

if (await redisAvailable()) {
  contract('redis store', async () => {
    const keyPrefix = uniquePrefix()
    const store = await RedisStore.connect({ url: REDIS_URL, keyPrefix, commandTimeoutMs: 1000 })
    return { store, cleanup: async () => { await store.close(); await dropPrefix(keyPrefix) } }
  })
} else {
  t.skip('redis store: Redis is not running (CI=true makes this a failure)')
}
