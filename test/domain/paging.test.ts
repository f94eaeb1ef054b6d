import t from 'tap'
import { pageAcrossShards, type Position } from '../../src/domain/paging.js'

// The merge of shards into one list, against shards held as plain sorted arrays.

function shardsOf (items: Position[], shards: number, shardOf: (p: Position) => number) {
  const held: Position[][] = Array.from({ length: shards }, () => [])
  for (const p of items) held[shardOf(p)]!.push(p)
  for (const h of held) h.sort((a, b) => a.score - b.score || (a.member < b.member ? -1 : a.member > b.member ? 1 : 0))
  let read = 0
  const reader = async (shard: number, after: Position | undefined, limit: number) => {
    const got = held[shard]!.filter(p => !after || p.score > after.score || (p.score === after.score && p.member > after.member)).slice(0, limit)
    read += got.length
    return got.map(at => ({ at, item: at.member }))
  }
  return { reader, read: () => read }
}

async function all (shards: number, limit: number, reader: Parameters<typeof pageAcrossShards<string>>[3]) {
  const pages: string[][] = []
  let cursor: string | null | undefined
  do {
    const page = await pageAcrossShards(shards, cursor ?? undefined, limit, reader)
    pages.push(page.items)
    cursor = page.next_cursor
  } while (cursor !== null)
  return pages
}

t.test('one list in (score, member) order over the shards, ties broken by member, whatever the page size', async t => {
  // 200 items over 16 shards, many sharing a score, all of one shard's at the start.
  const items = Array.from({ length: 200 }, (_, i) => ({ score: i < 40 ? 1 : Math.floor(i / 3), member: `m${String((i * 37) % 200).padStart(3, '0')}` }))
  const expected = [...items].sort((a, b) => a.score - b.score || (a.member < b.member ? -1 : 1)).map(p => p.member)
  for (const limit of [1, 3, 16, 50, 100, 200, 500]) {
    const { reader } = shardsOf(items, 16, p => (p.score === 1 ? 5 : Number(p.member.slice(1)) % 16))
    const pages = await all(16, limit, reader)
    t.same(pages.flat(), expected, `limit ${limit}: every item once, in order`)
    t.equal(pages.length, Math.max(1, Math.ceil(200 / limit)), `limit ${limit}: no empty last page`)
    t.ok(pages.slice(0, -1).every(p => p.length === limit) && pages.at(-1)!.length >= 1, `limit ${limit}: every page full but the last, which is not empty`)
  }
})

t.test('a page reads about its own size from the shards, not its size from each', async t => {
  const items = Array.from({ length: 1600 }, (_, i) => ({ score: i, member: `m${i}` }))
  const { reader, read } = shardsOf(items, 16, p => p.score % 16)
  const page = await pageAcrossShards(16, undefined, 100, reader)
  t.equal(page.items.length, 100)
  t.ok(read() <= 100 + 16 * 12, `${read()} items read for a page of 100`)
})

t.test('no items: an empty page and no cursor; one shard: the same as a plain list', async t => {
  const empty = shardsOf([], 4, () => 0)
  t.same(await pageAcrossShards(4, undefined, 10, empty.reader), { items: [], next_cursor: null })
  const one = shardsOf(Array.from({ length: 5 }, (_, i) => ({ score: i, member: `c${i}` })), 1, () => 0)
  t.same((await all(1, 2, one.reader)), [['c0', 'c1'], ['c2', 'c3'], ['c4']])
  t.same((await all(1, 5, one.reader)), [['c0', 'c1', 'c2', 'c3', 'c4']], 'exactly a page: no cursor to an empty one')
})
