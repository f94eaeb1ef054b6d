// Types for the parts of harness.mjs that TypeScript code imports (test/helpers/build.ts).
import type { ChildProcess } from 'node:child_process'

/** The repository's root folder (with a trailing slash). */
export const root: string

/**
 * Compiles the project with tsc into `outDir` (dist/ by default). Resolves to the first line of tsc's error
 * report when there were type errors (the JavaScript is emitted all the same), else to undefined.
 */
export function build (outDir?: string, options?: { onChild?: (child: ChildProcess) => void }): Promise<string | undefined>
