import type { ChunkLease } from '../store/store.js'

/**
 * Runs the work of a leased chunk and keeps the lease while it runs, renewed every third of the lease time:
 * a runner that is only slow keeps its chunk, one that died loses it to the next runner. Resolves the work's
 * result and the lease as last renewed (what finishing the chunk must show).
 */
export async function underLease<T> (
  lease: ChunkLease,
  leaseMs: number,
  renew: (lease: ChunkLease, until: number) => Promise<boolean>,
  work: () => Promise<T>,
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
    result = await work()
  } finally {
    clearInterval(timer)
    // Whether the work ended or threw, no renewal is left running after this returns (a renewal never rejects).
    await renewing
  }
  return { result, lease: held }
}
