import { ValidationError } from './errors.js'

// Lists split over shards (sorted sets by time) are read shard after shard, each in (score, member) order. The
// cursor names the last item given out: its shard, score and member, so items that move, leave or arrive between
// two pages never shift the next page (an offset would skip or repeat them).

export interface Page<T> {
  items: T[]
  next_cursor: string | null
}

/** Where an item stands in its shard's sorted set. */
export interface Position {
  score: number
  member: string
}

interface Cursor {
  shard: number
  after?: Position
}

const CURSOR = /^[A-Za-z0-9_-]{1,400}$/

function invalid (): ValidationError {
  return new ValidationError('the cursor is not one this service gave out', [{ path: 'querystring.cursor', message: 'not a cursor from a previous page' }])
}

function encodeCursor (shard: number, after?: Position): string {
  return Buffer.from(JSON.stringify(after ? [shard, after.score, after.member] : [shard])).toString('base64url')
}

function parseCursor (cursor: string | undefined, shards: number): Cursor {
  if (cursor === undefined || cursor === '') return { shard: 0 }
  if (!CURSOR.test(cursor)) throw invalid()
  let value: unknown
  try {
    value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
  } catch {
    throw invalid()
  }
  if (!Array.isArray(value) || !Number.isInteger(value[0]) || value[0] < 0 || value[0] >= shards) throw invalid()
  if (value.length === 1) return { shard: value[0] }
  const [shard, score, member] = value as unknown[]
  if (value.length !== 3 || typeof score !== 'number' || !Number.isFinite(score) || typeof member !== 'string' || member.length > 200) throw invalid()
  return { shard: shard as number, after: { score, member } }
}

/** Reads up to `limit` items from the shards in order, starting after the cursor's item. */
export async function pageAcrossShards<T> (
  shards: number,
  cursor: string | undefined,
  limit: number,
  read: (shard: number, after: Position | undefined, limit: number) => Promise<{ at: Position, item: T }[]>,
): Promise<Page<T>> {
  let { shard, after } = parseCursor(cursor, shards)
  const items: T[] = []
  while (shard < shards && items.length < limit) {
    const wanted = limit - items.length
    const got = await read(shard, after, wanted)
    items.push(...got.map(g => g.item))
    after = got.at(-1)?.at ?? after
    if (got.length < wanted) {
      shard++
      after = undefined
    }
  }
  return { items, next_cursor: shard < shards ? encodeCursor(shard, after) : null }
}
