import t from 'tap'
import type { Reachability } from '../../src/domain/reachability.js'
import { Reports } from '../../src/reports/reports.js'
import type { Store } from '../../src/store/store.js'
import { redisAvailable } from '../helpers/redis.js'
import { openMemoryStore, openRedisStore } from '../helpers/store.js'

// A listing's pages are bounded by the time of its first page: an item whose time moves past it between pages
// leaves the listing instead of coming round again after the cursor.

const haveRedis = await redisAvailable()
const DAY = 86_400_000
const T0 = Date.parse('2026-11-25T12:00:00.000Z')

/** A number found without connectivity at `checkedAt`, quiet since `latest`. */
const offline = (phone: string, checkedAt: number, latest = checkedAt - DAY): Reachability => ({
  phone_number: phone, is_reachable: false, connectivity: [], latest_status_at: new Date(latest).toISOString(),
  status: { code: 'OK', message: 'Success' }, checked_at: new Date(checkedAt).toISOString(),
})

/** Every page of a listing; `afterFirst` is told the first page's numbers before the next page is read. */
async function listAll (
  page: (cursor: string | undefined) => Promise<{ items: { phone_number: string }[], next_cursor: string | null }>,
  afterFirst: (given: string[]) => Promise<void> = async () => {},
) {
  const seen: string[] = []
  let cursor: string | undefined
  do {
    const got = await page(cursor)
    seen.push(...got.items.map(i => i.phone_number))
    if (cursor === undefined) await afterFirst(seen.slice())
    cursor = got.next_cursor ?? undefined
  } while (cursor)
  return seen
}

for (const kind of ['memory', 'redis'] as const) {
  for (const shards of [1, 3]) {
    t.test(`${kind} store, ${shards} shard(s)`, { skip: kind === 'redis' && !haveRedis && 'Redis is not running' }, async t => {
      const opened = kind === 'memory' ? await openMemoryStore(shards) : await openRedisStore(shards)
      t.teardown(opened.cleanup)
      const store: Store = opened.store
      let now = T0
      const reports = new Reports(store, () => now)

      t.test('offline devices: one checked again between pages is not given twice; the next listing has the news', async t => {
        const devices = ['+447911300001', '+447911300002', '+447911300003', '+447911300004', '+447911300005']
        for (const [i, d] of devices.entries()) await store.recordReport(offline(d, T0 - 60_000 + i * 1000), false)
        let firstPage: string[] = []
        const seen = await listAll(c => reports.offlineDevices(-Infinity, c, 2), async given => {
          firstPage = given
          // After the first page: the devices given are checked again (still offline), as is one not yet given,
          // and a new device is found offline.
          now = T0 + 5000
          const notYet = devices.filter(d => !firstPage.includes(d))
          for (const d of [...firstPage, notYet[0]!]) await store.recordReport(offline(d, T0 + 1000), false)
          await store.recordReport(offline('+447911300009', T0 + 1000), false)
        })
        t.equal(seen.length, new Set(seen).size, `no device given twice: ${seen.join(' ')}`)
        const notYet = devices.filter(d => !firstPage.includes(d))
        t.same([...seen].sort(), [...firstPage, ...notYet.slice(1)].sort(), 'the first page, then those not checked since')
        t.same((await listAll(c => reports.offlineDevices(-Infinity, c, 2))).sort(), [...devices, '+447911300009'].sort(), 'a new listing has every device')
      })

      t.test('stale contacts: every page keeps the first page\'s cut-off', async t => {
        now = T0
        const numbers = { old: '+447911310001', older: '+447911310002', nearly: '+447911310003', back: '+447911310004' }
        await store.recordReport(offline(numbers.old, T0 - 1000, T0 - 70 * DAY), false)
        await store.recordReport(offline(numbers.older, T0 - 1000, T0 - 80 * DAY), false)
        await store.recordReport(offline(numbers.back, T0 - 1000, T0 - 90 * DAY), false)
        // Quiet for 60 days but for half a second at the first page: in the listing only if its time is taken anew.
        await store.recordReport(offline(numbers.nearly, T0 - 1000, T0 - 60 * DAY + 500), false)
        let firstPage: string[] = []
        const seen = await listAll(c => reports.staleContacts(60, c, 1), async given => {
          firstPage = given
          now = T0 + 1000
          // A number not yet given comes back with a status time newer than the cut-off: it leaves the listing.
          if (!firstPage.includes(numbers.back)) await store.recordReport(offline(numbers.back, T0 + 1000, T0 + 900), false)
        })
        t.equal(seen.length, new Set(seen).size, 'none given twice')
        t.notOk(seen.includes(numbers.nearly), 'the number that turned 60 days quiet after the first page is not in it')
        t.ok(seen.includes(numbers.old) && seen.includes(numbers.older), 'the numbers quiet throughout are')
        t.equal(seen.includes(numbers.back), firstPage.includes(numbers.back), 'the one whose status turned newer is not, unless given before')
        t.ok((await listAll(c => reports.staleContacts(60, c, 1))).includes(numbers.nearly), 'a new listing has it')
      })
    })
  }
}
