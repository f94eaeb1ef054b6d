// Tells a background loop that stopped turning (blocked on a call that never settles, or dead) from one that is
// just idle: each loop stamps lastLoopAt on every turn, and an idle one still turns at least once per poll.

export interface WorkerLoop {
  /** How the loop is named to ops, e.g. "delivery worker". */
  name: string
  /** When the loop last began a turn (0: never). */
  lastLoopAt: () => number
  /** The longest the loop sleeps between turns when idle. */
  pollMs: number
}

export interface StuckLoop {
  name: string
  /** How long since its last turn. */
  silentMs: number
  /** How long it may stay silent. */
  limitMs: number
}

/** A loop may stay silent for 3 polls, and never less than 30 s (a turn may wait for a slow provider or store). */
export function stuckAfterMs (pollMs: number): number {
  return Math.max(30_000, 3 * pollMs)
}

export function stuckLoops (loops: readonly WorkerLoop[], now: number): StuckLoop[] {
  return loops
    .map(loop => ({ name: loop.name, silentMs: now - loop.lastLoopAt(), limitMs: stuckAfterMs(loop.pollMs) }))
    .filter(loop => loop.silentMs > loop.limitMs)
}
