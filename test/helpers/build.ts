import { join } from 'node:path'
import { build } from '../../bench/lib/harness.mjs'

export const ROOT = join(import.meta.dirname, '..', '..')

/**
 * Compiles the project with tsc into `outDir` (incremental across runs), for the tests that run the built server:
 * the benchmarks' build (bench/lib/harness.mjs). The compiler runs without NODE_V8_COVERAGE: under tap's coverage
 * it took half as long again and wrote a 3 MB report of the compiler's own code for tap to read. Type errors still
 * emit JavaScript; only a build that gave no server or worker fails (type checking is tsconfig.check.json's job).
 * Resolves to the first line of tsc's error report, if any.
 */
export function buildProject (outDir = join(ROOT, 'dist')): Promise<string | undefined> {
  return build(outDir)
}
