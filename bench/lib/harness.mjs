// Shared pieces of the benchmarks: build, start processes, run wrk, read its figures.
import { execFile, execFileSync, spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { Redis } from 'ioredis'

export const root = fileURLToPath(new URL('../..', import.meta.url))
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'

/**
 * Compiles the project with tsc into `outDir` (incremental). Type errors still emit JavaScript, and the build goes
 * on with it: it resolves to the first line of tsc's error report. Any other failure, or no server or worker, throws. The compiler
 * runs without NODE_V8_COVERAGE (set when the soak runs under the test suite's coverage): it is a tool.
 * `onChild` is told of the compiler's process (the soak kills what is left on any exit).
 */
export async function build (outDir = join(root, 'dist'), { onChild } = {}) {
  const args = ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.json']
  if (outDir !== join(root, 'dist')) args.push('--outDir', outDir, '--tsBuildInfoFile', join(outDir, '.tsbuildinfo'))
  const building = promisify(execFile)(process.execPath, args, { cwd: root, env: { ...process.env, NODE_V8_COVERAGE: undefined } })
  onChild?.(building.child)
  try {
    await building
  } catch (err) {
    // Exit code 2 is tsc's "errors found, output written"; anything else (a crash, no compiler) ran nothing new.
    if (err.code !== 2 || !existsSync(join(outDir, 'src', 'server.js')) || !existsSync(join(outDir, 'src', 'worker.js'))) throw err
    const note = (err.stdout ?? '').split('\n')[0]
    console.error(`tsc reported type errors (the JavaScript was emitted all the same): ${note}`)
    return note
  }
  return undefined
}

export async function freePort () {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address()
  server.close()
  return port
}

/**
 * The V8 flags the service's processes run with (npm start, npm run worker, NODE_OPTIONS in the Dockerfile):
 * a young generation of 2 x 8 MB instead of 2 x 16 MB bounds the memory of bulk read-ins (see the README).
 */
export const SERVICE_NODE_FLAGS = ['--max-semi-space-size=8']

/** Starts a node process (the service's own with SERVICE_NODE_FLAGS) and resolves once `url` answers 200. */
export async function startProcess (args, env, url, { quiet = true } = {}) {
  if (args[0]?.startsWith('dist/src/')) args = [...SERVICE_NODE_FLAGS, ...args]
  const child = spawn(process.execPath, args, { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', quiet ? 'ignore' : 'inherit', 'inherit'] })
  const deadline = Date.now() + 20_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${args.join(' ')} exited with ${child.exitCode}`)
    try {
      const res = await fetch(url)
      if (res.ok) return child
    } catch {
      // Not listening yet: try again until the deadline.
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error(`${url} did not answer within 20 s`)
    }
    await sleep(100)
  }
}

export async function stopProcess (child) {
  if (child.exitCode !== null) return
  child.kill('SIGTERM')
  await Promise.race([once(child, 'exit'), sleep(15_000).then(() => child.kill('SIGKILL'))])
}

/** Runs wrk and returns requests/s, latency percentiles (ms) and non-2xx count. */
export function wrk ({ url, script, seconds = 10, connections = 64, env = {} }) {
  const args = ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', ...(script ? ['-s', script] : []), url]
  const out = execFileSync('wrk', args, { env: { ...process.env, ...env }, encoding: 'utf8' })
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1])
  const pct = (p) => toMs(new RegExp(`\\s${p}%\\s+([\\d.]+\\w+)`).exec(out)?.[1])
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0)
  const errors = /Socket errors: (.*)/.exec(out)?.[1] ?? ''
  return { rps, p50: pct(50), p90: pct(90), p99: pct(99), non2xx, errors, raw: out }
}

function toMs (value) {
  if (!value) return NaN
  const n = parseFloat(value)
  if (value.endsWith('us')) return n / 1000
  if (value.endsWith('ms')) return n
  if (value.endsWith('s')) return n * 1000
  return n
}

/** Deletes every key under the prefix. */
export async function dropPrefix (prefix) {
  const redis = new Redis(REDIS_URL)
  let cursor = '0'
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
    cursor = next
    if (keys.length) await redis.unlink(...keys)
  } while (cursor !== '0')
  redis.disconnect()
}

/**
 * Runs hey at a steady rate (each of `workers` connections paced by its own ticker, no bursts)
 * and returns achieved requests/s and latency percentiles (ms).
 */
export function hey ({ url, rate, seconds = 10, workers = 8, method = 'POST', body, headers = {} }) {
  const args = ['-z', `${seconds}s`, '-c', String(workers), '-q', String(Math.max(1, Math.round(rate / workers))), '-m', method, '-T', 'application/json']
  for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}: ${v}`)
  if (body) args.push('-d', body)
  const out = execFileSync('hey', [...args, url], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 })
  // hey prints seconds to 4 decimals: whole 0.1 ms.
  const pct = (p) => Math.round(Number(new RegExp(`${p}% in ([\\d.]+) secs`).exec(out)?.[1]) * 10_000) / 10
  const codes = [...out.matchAll(/\[(\d{3})\]\s+(\d+) responses/g)].map(m => [Number(m[1]), Number(m[2])])
  return { rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]), p50: pct(50), p99: pct(99), codes, raw: out }
}

export function requireTools (...tools) {
  const missing = tools.filter(tool => {
    try {
      execFileSync('which', [tool], { stdio: 'ignore' })
      return false
    } catch {
      return true
    }
  })
  if (missing.length > 0) {
    console.error(`the benchmarks need ${missing.join(' and ')}: apt-get install -y ${missing.join(' ')}`)
    process.exit(2)
  }
}

export function median (values) {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor(sorted.length / 2)]
}
