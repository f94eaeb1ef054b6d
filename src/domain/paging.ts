import { ValidationError } from './errors.js'

// Lists that are split over shards are read shard after shard; the cursor is "<shard>.<offset>".

export interface Page<T> {
  items: T[]
  next_cursor: string | null
}

export function parseCursor (cursor: string | undefined, shards: number): [number, number] {
  if (cursor === undefined || cursor === '') return [0, 0]
  const match = /^(\d{1,3})\.(\d{1,9})$/.exec(cursor)
  if (!match || Number(match[1]) >= shards) {
    throw new ValidationError('the cursor is not one this service gave out', [{ path: 'querystring.cursor', message: 'not a cursor from a previous page' }])
  }
  return [Number(match[1]), Number(match[2])]
}

/** Reads up to `limit` items from the shards in order, starting at the cursor. */
export async function pageAcrossShards<T> (
  shards: number,
  cursor: string | undefined,
  limit: number,
  read: (shard: number, offset: number, limit: number) => Promise<T[]>,
): Promise<Page<T>> {
  let [shard, offset] = parseCursor(cursor, shards)
  const items: T[] = []
  while (shard < shards && items.length < limit) {
    const wanted = limit - items.length
    const got = await read(shard, offset, wanted)
    items.push(...got)
    offset += got.length
    if (got.length < wanted) {
      shard++
      offset = 0
    }
  }
  return { items, next_cursor: shard < shards ? `${shard}.${offset}` : null }
}
