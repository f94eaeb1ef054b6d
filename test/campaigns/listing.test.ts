import t from 'tap'
import { CampaignService } from '../../src/campaigns/service.js'
import { MemoryStore } from '../../src/store/memory/memory-store.js'
import { message } from './app.js'

// GET /v1/campaigns paged by offset: campaigns past their retention left the head of the list, and the
// campaigns after them moved into places already read, so the next page skipped them.

const header = (name: string) => ({
  name, message,
  routing: { prefer: 'push' as const, channels: ['push' as const, 'sms' as const], on_unreachable: 'drop' as const, on_unknown: 'sms' as const, ttl_seconds: 3600 },
})

t.test('campaigns that leave the head of the list between two pages shift nothing: page 2 goes on after page 1', async t => {
  let now = Date.parse('2026-11-25T10:00:00.000Z')
  const store = new MemoryStore({ shards: 3, now: () => now })
  t.teardown(() => store.close())
  const campaigns = new CampaignService({ store, retentionSeconds: 60, idempotencyTtlSeconds: 60, now: () => now })
  const ids: string[] = []
  for (let i = 0; i < 6; i++) {
    const { answer } = await campaigns.create('svc', header(`c${i}`), [{ line: 2, recipient: { to: `+44791110000${i}` } }])
    ids.push(answer.id)
    now += 10_000
  }
  now = Date.parse('2026-11-25T10:00:55.000Z')
  const page1 = await campaigns.list(undefined, 2)
  t.same(page1.items.map(c => c.id), ids.slice(0, 2))
  t.type(page1.next_cursor, 'string')
  // The first three pass their retention (60 s) before page 2 is asked for.
  now = Date.parse('2026-11-25T10:01:25.000Z')
  const page2 = await campaigns.list(page1.next_cursor!, 2)
  t.same(page2.items.map(c => c.id), ids.slice(3, 5), 'the one that left is not shown; none after it is skipped')
  const page3 = await campaigns.list(page2.next_cursor!, 2)
  t.same(page3.items.map(c => c.id), ids.slice(5))
  t.equal(page3.next_cursor, null, 'the end')
})

t.test('a page is filled past campaigns not shown; a cursor this service did not give out is a 400', async t => {
  const store = new MemoryStore({ shards: 3 })
  t.teardown(() => store.close())
  const campaigns = new CampaignService({ store, retentionSeconds: 60, idempotencyTtlSeconds: 60 })
  async function * cutShort () {
    yield { line: 2, recipient: { to: '+447911100100' } }
    throw new Error('aborted')
  }
  const first = await campaigns.create('svc', header('first'), [{ line: 2, recipient: { to: '+447911100101' } }])
  await t.rejects(campaigns.create('svc', header('abandoned'), cutShort()), /aborted/)
  const last = await campaigns.create('svc', header('last'), [{ line: 2, recipient: { to: '+447911100102' } }])
  const page1 = await campaigns.list(undefined, 2)
  t.same(page1.items.map(c => c.id), [first.answer.id, last.answer.id], 'the abandoned campaign between them is passed over')
  t.equal(page1.next_cursor, null, 'the last page says so: no cursor to an empty page')
  const one = await campaigns.list(undefined, 1)
  t.same((await campaigns.list(one.next_cursor!, 1)).items.map(c => c.id), [last.answer.id], 'page 2 of 1 each goes on after page 1')
  for (const cursor of ['2', 'not a cursor', Buffer.from('["v2","5","cmp_x"]').toString('base64url'), Buffer.from('["v3",5,"cmp_x"]').toString('base64url')]) {
    await t.rejects(campaigns.list(cursor, 2), { status: 400, message: /cursor/ }, cursor)
  }
  await t.rejects(campaigns.list(Buffer.from('[0,5,"cmp_x"]').toString('base64url'), 2), { status: 400, message: /earlier release/ }, 'a cursor of an earlier release')
})
