import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { buildApp } from '../src/app.js'
import { loadConfig, type Config } from '../src/config.js'

// Generates the OpenAPI document from the routes' zod schemas, writes it to openapi/openapi.json
// (`write`), or fails when the committed file is out of date (`check`).

/** The repository root: the nearest folder above this file holding package.json (works from scripts/ and dist/scripts/). */
function repositoryRoot (): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  while (!existsSync(join(dir, 'package.json'))) {
    const parent = dirname(dir)
    if (parent === dir) throw new Error('package.json not found above ' + fileURLToPath(import.meta.url))
    dir = parent
  }
  return dir
}

export const SPEC_PATH = join(repositoryRoot(), 'openapi', 'openapi.json')

/** A fixed config, never the environment's, so the spec is the same on every machine. */
export function specConfig (): Config {
  return loadConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    AUTH_HS256_SECRET: 'openapi-generation-secret-not-used-for-anything',
  })
}

/** The spec as committed: pretty JSON, two spaces, trailing newline. */
export async function generateSpec (): Promise<string> {
  const app = await buildApp({ config: specConfig(), logger: false })
  try {
    await app.ready()
    return JSON.stringify(app.swagger(), null, 2) + '\n'
  } finally {
    await app.close()
  }
}

/** Where two texts first differ, as a short hint; undefined when they are equal. */
export function firstDifference (committed: string, generated: string): string | undefined {
  if (committed === generated) return undefined
  const a = committed.split('\n')
  const b = generated.split('\n')
  let line = 0
  while (line < a.length && line < b.length && a[line] === b[line]) line++
  return [
    `first difference at line ${line + 1}:`,
    `  committed: ${a[line] ?? '(end of file)'}`,
    `  generated: ${b[line] ?? '(end of file)'}`,
  ].join('\n')
}

function committedSpec (): string {
  return existsSync(SPEC_PATH) ? readFileSync(SPEC_PATH, 'utf8') : ''
}

async function main (command: string | undefined): Promise<number> {
  const where = relative(process.cwd(), SPEC_PATH) || SPEC_PATH
  if (command === 'write') {
    writeFileSync(SPEC_PATH, await generateSpec())
    process.stdout.write(`wrote ${where}\n`)
    return 0
  }
  if (command === 'check') {
    const diff = firstDifference(committedSpec(), await generateSpec())
    if (!diff) {
      process.stdout.write(`${where} is up to date\n`)
      return 0
    }
    process.stderr.write(`${where} is out of date: run \`npm run openapi\` and commit the result.\n${diff}\n`)
    return 1
  }
  process.stderr.write('usage: openapi.js write|check\n')
  return 2
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await main(process.argv[2])
}
