import { ValidationError } from './errors.js'

// Lists split over shards (sorted sets by time) are read shard after shard, each in (score, member) order. The
// cursor names the last item given out: its shard, score and member, so items that move, leave or arrive between
// two pages never shift the next page (an offset would skip or repeat them). An item that itself moves from behind
// the cursor to past it comes round again, unless the list is read up to the time of its first page (pageAsOf).

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
  /** For lists read up to a time: the first page's time, kept by every later page (see pageAsOf). */
  asOf?: number
}

const CURSOR = /^[A-Za-z0-9_-]{1,400}$/

function invalid (): ValidationError {
  return new ValidationError('the cursor is not one this service gave out', [{ path: 'querystring.cursor', message: 'not a cursor from a previous page' }])
}

// [shard], [shard, score, member]; with the first page's time: [shard, asOf], [shard, asOf, score, member].
function encodeCursor ({ shard, after, asOf }: Cursor): string {
  const position = after ? [after.score, after.member] : []
  return Buffer.from(JSON.stringify(asOf === undefined ? [shard, ...position] : [shard, asOf, ...position])).toString('base64url')
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
  if (!Array.isArray(value) || value.length < 1 || value.length > 4 || !Number.isInteger(value[0]) || value[0] < 0 || value[0] >= shards) throw invalid()
  const shard = value[0] as number
  const timed = value.length % 2 === 0
  const asOf: unknown = timed ? value[1] : undefined
  if (timed && (typeof asOf !== 'number' || !Number.isFinite(asOf))) throw invalid()
  const parsed: Cursor = timed ? { shard, asOf: asOf as number } : { shard }
  const position = value.slice(timed ? 2 : 1) as unknown[]
  if (position.length === 0) return parsed
  const [score, member] = position
  if (typeof score !== 'number' || !Number.isFinite(score) || typeof member !== 'string' || member.length > 200) throw invalid()
  return { ...parsed, after: { score, member } }
}

type Read<T> = (shard: number, after: Position | undefined, limit: number) => Promise<{ at: Position, item: T }[]>

/** Reads up to `limit` items from the shards in order, starting after the cursor's item. */
export async function pageAcrossShards<T> (shards: number, cursor: string | undefined, limit: number, read: Read<T>): Promise<Page<T>> {
  const { shard, after } = parseCursor(cursor, shards)
  return readPage(shards, { shard, after }, limit, read)
}

/**
 * As pageAcrossShards, for a list of items up to a time: `read` is given the time of the listing's first page
 * (`now` on it), carried in the cursor to every later page. An item whose time moves past it between pages (a
 * device checked again) leaves the listing rather than come round again after the cursor.
 */
export async function pageAsOf<T> (
  shards: number,
  cursor: string | undefined,
  limit: number,
  now: number,
  read: (shard: number, after: Position | undefined, limit: number, asOf: number) => Promise<{ at: Position, item: T }[]>,
): Promise<Page<T>> {
  const start = parseCursor(cursor, shards)
  // A cursor given out before cursors carried the time starts the time at its page.
  const asOf = start.asOf ?? now
  return readPage(shards, { ...start, asOf }, limit, (shard, after, count) => read(shard, after, count, asOf))
}

async function readPage<T> (shards: number, start: Cursor, limit: number, read: Read<T>): Promise<Page<T>> {
  let { shard, after } = start
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
  return { items, next_cursor: shard < shards ? encodeCursor({ shard, after, asOf: start.asOf }) : null }
}
