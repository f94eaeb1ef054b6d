import { existsSync } from 'node:fs'
import { join } from 'node:path'

export const ROOT = join(import.meta.dirname, '..', '..')
export const DIST = join(ROOT, 'dist')

/**
 * The path of a built script (e.g. `src/server.js`) under dist/, for the tests that start the built server or worker.
 * `npm test` builds dist/ first (its pretest script), once, before any test file runs: one build per test file while
 * other files ran took both cores for seconds each, and a file rewritten under a starting server made those tests
 * flaky. Throws, saying so, when the build is missing.
 */
export function built (script: string): string {
  const path = join(DIST, script)
  if (!existsSync(path)) throw new Error(`${path} is missing: run the tests with npm test (it builds dist/ first), or npm run build`)
  return path
}
