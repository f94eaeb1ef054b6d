import { ValidationError } from './errors.js'

// Lists split over shards (sorted sets by time) are read as one list in (score, member) order: each page merges
// the shards' heads. The cursor names the last item given out, by its score and member, so items that move, leave or
// arrive between two pages never shift the next page (an offset would skip or repeat them), and it holds whatever
// the number of shards. An item that itself moves from behind the cursor to past it comes round again, unless the
// list is read up to the time of its first page (pageAsOf). A page is read one item past the limit: the last page
// says so (no cursor) rather than leave an empty page to find.

export interface Page<T> {
  items: T[]
  next_cursor: string | null
}

/** Where an item stands in its shard's sorted set, and so in the whole list. */
export interface Position {
  score: number
  member: string
}

interface Cursor {
  after?: Position
  /** For lists read up to a time: the first page's time, kept by every later page (see pageAsOf). */
  asOf?: number
}

/** The first element of a cursor: cursors of earlier releases began with a shard number. */
const VERSION = 'v2'
const CURSOR = /^[A-Za-z0-9_-]{1,400}$/

function invalid (): ValidationError {
  return new ValidationError('the cursor is not one this service gave out', [{ path: 'querystring.cursor', message: 'not a cursor from a previous page' }])
}

function earlier (): ValidationError {
  return new ValidationError('the cursor is from an earlier release of this service, which listed shard after shard: start the listing again without one',
    [{ path: 'querystring.cursor', message: 'a cursor from an earlier release: start again without one' }])
}

// ["v2", score, member]; with the first page's time: ["v2", asOf, score, member].
function encodeCursor ({ after, asOf }: Cursor): string {
  const position = after ? [after.score, after.member] : []
  return Buffer.from(JSON.stringify(asOf === undefined ? [VERSION, ...position] : [VERSION, asOf, ...position])).toString('base64url')
}

function parseCursor (cursor: string | undefined): Cursor {
  if (cursor === undefined || cursor === '') return {}
  if (!CURSOR.test(cursor)) throw invalid()
  let value: unknown
  try {
    value = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'))
  } catch {
    throw invalid()
  }
  if (!Array.isArray(value) || value.length < 1) throw invalid()
  // A page given out before the shards were merged (the list read shard after shard) cannot be carried on in order.
  if (Number.isInteger(value[0]) && value.length <= 4) throw earlier()
  if (value[0] !== VERSION || value.length > 4) throw invalid()
  const timed = value.length % 2 === 0
  const asOf: unknown = timed ? value[1] : undefined
  if (timed && (typeof asOf !== 'number' || !Number.isFinite(asOf))) throw invalid()
  const parsed: Cursor = timed ? { asOf: asOf as number } : {}
  const position = value.slice(timed ? 2 : 1) as unknown[]
  if (position.length === 0) return parsed
  const [score, member] = position
  if (typeof score !== 'number' || !Number.isFinite(score) || typeof member !== 'string' || member.length > 200) throw invalid()
  return { ...parsed, after: { score, member } }
}

/** A shard's items after a position (none: from its start), in (score, member) order, at most `limit`. */
type Read<T> = (shard: number, after: Position | undefined, limit: number) => Promise<{ at: Position, item: T }[]>

/** Up to `limit` items of the list, in (score, member) order over all the shards, after the cursor's item. */
export async function pageAcrossShards<T> (shards: number, cursor: string | undefined, limit: number, read: Read<T>): Promise<Page<T>> {
  const { after } = parseCursor(cursor)
  return readPage(shards, { after }, limit, read)
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
  const start = parseCursor(cursor)
  const asOf = start.asOf ?? now
  return readPage(shards, { ...start, asOf }, limit, (shard, after, count) => read(shard, after, count, asOf))
}

function before (a: Position, b: Position): boolean {
  return a.score < b.score || (a.score === b.score && a.member < b.member)
}

interface Head<T> {
  shard: number
  /** Read from the shard, not yet merged. */
  buffer: { at: Position, item: T }[]
  /** The last position read from the shard. */
  after: Position | undefined
  done: boolean
}

/**
 * Merges the shards' items after `start` into one page of `limit` (and reads one more, to know whether a next page
 * holds any). Each shard is read in batches of about its share of the page, and read again only when its batch
 * runs out before the page is full: a page costs about `limit` items read, not `limit` times the shards.
 */
async function readPage<T> (shards: number, start: Cursor, limit: number, read: Read<T>): Promise<Page<T>> {
  const wanted = limit + 1
  const batch = Math.min(wanted, Math.ceil(wanted / shards) + 4)
  const heads: Head<T>[] = Array.from({ length: shards }, (_, shard) => ({ shard, buffer: [], after: start.after, done: false }))
  const taken: { at: Position, item: T }[] = []
  while (taken.length < wanted) {
    await Promise.all(heads.filter(h => h.buffer.length === 0 && !h.done).map(async head => {
      const got = await read(head.shard, head.after, batch)
      head.buffer = got
      head.done = got.length < batch
      head.after = got.at(-1)?.at ?? head.after
    }))
    let next: Head<T> | undefined
    for (const head of heads) {
      if (head.buffer.length > 0 && (next === undefined || before(head.buffer[0]!.at, next.buffer[0]!.at))) next = head
    }
    if (next === undefined) break
    taken.push(next.buffer.shift()!)
  }
  const page = taken.slice(0, limit)
  return {
    items: page.map(t => t.item),
    next_cursor: taken.length > limit ? encodeCursor({ after: page.at(-1)!.at, asOf: start.asOf }) : null,
  }
}
