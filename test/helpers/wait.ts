import { setTimeout as sleep } from 'node:timers/promises'

/** Polls `probe` until it returns a value other than undefined, or fails after timeoutMs. */
export async function waitFor<T> (probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 5000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await probe()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(20)
  }
}
