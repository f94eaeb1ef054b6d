import type { LimitFunction } from 'p-limit'
import type { ChunkLease } from '../store/store.js'

/** Moves a chunk's lease to end at `until`, if it is still this holder's; resolves false when it was lost. */
export type RenewLease = (lease: ChunkLease, until: number) => Promise<boolean>

/**
 * Runs the work of a leased chunk and keeps the lease while it runs, renewed every third of the lease time:
 * a runner that is only slow keeps its chunk, one that died loses it to the next runner. The work is given the lease
 * as last renewed, and so is the result (what finishing the chunk must show).
 */
export async function underLease<T> (
  lease: ChunkLease,
  leaseMs: number,
  renew: RenewLease,
  work: (held: () => ChunkLease) => Promise<T>,
  now: () => number = Date.now,
): Promise<{ result: T, lease: ChunkLease }> {
  let held = lease
  let renewing: Promise<void> | undefined
  const timer = setInterval(() => {
    if (renewing) return
    const until = now() + leaseMs
    renewing = renew(held, until)
      .then(ok => { if (ok) held = { ...held, until } })
      // A renewal the store missed is tried again at the next beat; the lease may lapse meanwhile.
      .catch(() => {})
      .finally(() => { renewing = undefined })
  }, Math.max(10, Math.floor(leaseMs / 3)))
  let result: T
  try {
    result = await work(() => held)
  } finally {
    clearInterval(timer)
    // Whether the work ended or threw, no renewal is left running after this returns (a renewal never rejects).
    await renewing
  }
  return { result, lease: held }
}

/**
 * Gives a chunk back uncounted: its lease ends now, so another runner takes it at once (a claim takes a lapsed
 * chunk first), not when the lease would have run out. Resolves whether it was given back: false when the lease
 * was lost already, or the store did not answer (the lease then runs out by itself).
 */
export function giveBack (lease: ChunkLease, renew: RenewLease, now: () => number = Date.now): Promise<boolean> {
  return renew(lease, now() - 1).catch(() => false)
}

export interface ChunkWork {
  lease: ChunkLease
  leaseMs: number
  renew: RenewLease
  /** How many items are worked on at once. */
  limit: LimitFunction
  /** Whether the runner lets go of its work (its stop grace is over): items not yet started are then not started. */
  lettingGo: () => boolean
  now?: () => number
}

/** A chunk worked through (each item's result, and the lease to finish it with), or let go of and given back. */
export type ChunkOutcome<R> =
  | { done: true, results: R[], lease: ChunkLease }
  | { done: false, reason: unknown, givenBack: boolean }

/**
 * Works through a leased chunk's items under its lease (underLease), `limit` at a time, for a runner that may be
 * told to stop. The chunk is done only if every item was: once the runner lets go (`lettingGo`), or once an item
 * throws (an item throws only when it lets go, or on a fault), no further item starts; the chunk then ends, once
 * nothing of it is running, given back uncounted (giveBack) for the next runner to work through again whole. Each item
 * is given the lease as last renewed.
 */
export async function workChunk<I, R> (items: I[], work: ChunkWork, each: (item: I, i: number, lease: () => ChunkLease) => Promise<R>): Promise<ChunkOutcome<R>> {
  const now = work.now ?? Date.now
  let letGo: { reason: unknown } | undefined
  const { result, lease } = await underLease(work.lease, work.leaseMs, work.renew,
    held => Promise.all(items.map((item, i) => work.limit(async () => {
      if (!letGo && work.lettingGo()) letGo = { reason: new Error('the runner stopped before every item of the chunk was started') }
      if (letGo) return undefined
      try {
        return await each(item, i, held)
      } catch (err) {
        letGo ??= { reason: err }
        return undefined
      }
    }))), now)
  if (letGo) return { done: false, reason: letGo.reason, givenBack: await giveBack(lease, work.renew, now) }
  return { done: true, results: result as R[], lease }
}
