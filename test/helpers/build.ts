import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'

export const ROOT = join(import.meta.dirname, '..', '..')

/**
 * Compiles the project with tsc into `outDir` (incremental across runs), for the tests that run the built server.
 * The compiler runs without NODE_V8_COVERAGE: under tap's coverage it took half as long again and wrote a 3 MB
 * report of the compiler's own code for tap to read. Type errors still emit JavaScript; only a build that gave no
 * server fails (type checking is tsconfig.check.json's job). Resolves to the first line of tsc's error report, if any.
 */
export async function buildProject (outDir = join(ROOT, 'dist')): Promise<string | undefined> {
  const args = ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.json']
  if (outDir !== join(ROOT, 'dist')) args.push('--outDir', outDir, '--tsBuildInfoFile', join(outDir, '.tsbuildinfo'))
  try {
    await promisify(execFile)(process.execPath, args, { cwd: ROOT, env: withoutCoverage() })
    return undefined
  } catch (err) {
    // Exit code 2 is tsc's "errors found, output written"; anything else (a crash, no compiler) ran nothing new.
    if ((err as { code?: unknown }).code !== 2 || !existsSync(join(outDir, 'src', 'server.js'))) throw err
    return (err as { stdout?: string }).stdout?.split('\n')[0] ?? ''
  }
}

/** This process's environment without NODE_V8_COVERAGE, for child processes that are tools, not the product. */
export function withoutCoverage (): NodeJS.ProcessEnv {
  const { NODE_V8_COVERAGE: _coverage, ...env } = process.env
  return env
}
