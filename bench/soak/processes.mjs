// The processes of a soak run: its own redis-server (AOF, fsync on every write), the API and the workers,
// all built from this checkout. Every child is tracked so that the harness can kill what is left on any exit.
import { spawn } from 'node:child_process'
import { createWriteStream } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import { build, SERVICE_NODE_FLAGS } from '../lib/harness.mjs'

const children = new Set()
let logDir

/** Keeps each child's output in `<dir>/<name>.log` too (with --keep). */
export function keepLogsIn (dir) {
  logDir = dir
}

/** SIGKILLs every child still running (exit paths, SIGINT). */
export function killAll () {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  }
}

/** Compiles the project into `outDir` (bench/lib/harness.mjs build), the compiler tracked as a child. */
export function buildInto (outDir) {
  return build(outDir, {
    onChild: child => {
      children.add(child)
      child.once('exit', () => children.delete(child))
    },
  })
}

function track (child, name, logLines) {
  children.add(child)
  const lines = []
  const exited = new Promise(resolve => child.once('exit', (code, signal) => {
    children.delete(child)
    resolve({ code, signal })
  }))
  let partial = ''
  const file = logDir ? createWriteStream(join(logDir, `${name}.log`), { flags: 'a' }) : undefined
  const onData = chunk => {
    file?.write(chunk)
    partial += chunk.toString()
    const parts = partial.split('\n')
    partial = parts.pop()
    for (const line of parts) {
      lines.push(line)
      if (lines.length > logLines) lines.shift()
      for (const listener of child.lineListeners ?? []) listener(line)
    }
  }
  child.stdout?.on('data', onData)
  child.stderr?.on('data', onData)
  return { child, name, exited, tail: () => lines.slice(-40).join('\n'), lines }
}

export async function startRedis ({ port, dir }) {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes',
    '--appendfsync', 'always', '--save', '', '--daemonize', 'no', '--logfile', ''], { stdio: ['ignore', 'pipe', 'pipe'] })
  const proc = track(child, 'redis', 200)
  const probe = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
  probe.on('error', () => {})
  const deadline = Date.now() + 10_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`redis-server exited at start:\n${proc.tail()}`)
    try {
      await probe.connect()
      await probe.ping()
      break
    } catch {
      probe.disconnect()
      if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not answer within 10 s:\n${proc.tail()}`)
      await sleep(50)
    }
  }
  probe.disconnect()
  return proc
}

/** The API (WORKERS=off); resolves once /readyz answers 200. */
export async function startApi ({ outDir, root, env, port }) {
  const child = spawn(process.execPath, [...SERVICE_NODE_FLAGS, join(outDir, 'src', 'server.js')], {
    cwd: root, env: { PATH: process.env.PATH, ...env, WORKERS: 'off', PORT: String(port), HOST: '127.0.0.1' }, stdio: ['ignore', 'pipe', 'pipe'],
  })
  const proc = track(child, 'api', 500)
  const base = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 20_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the API exited at start:\n${proc.tail()}`)
    try {
      if ((await fetch(`${base}/readyz`)).status === 200) return { ...proc, base }
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) throw new Error(`the API was not ready within 20 s:\n${proc.tail()}`)
    await sleep(100)
  }
}

/** A worker process; resolves once it logged its start, with the consumer name it reads the outboxes as. */
export async function startWorker ({ outDir, root, env, name }) {
  const child = spawn(process.execPath, [...SERVICE_NODE_FLAGS, join(outDir, 'src', 'worker.js')], {
    cwd: root, env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  })
  let consumer
  child.lineListeners = [line => {
    if (consumer || !line.includes('delivery worker and fallback scheduler started')) return
    try {
      consumer = JSON.parse(line).consumer
    } catch {
      // Not a JSON log line.
    }
  }]
  const proc = track(child, name, 2000)
  const deadline = Date.now() + 20_000
  while (!consumer) {
    if (child.exitCode !== null) throw new Error(`worker ${name} exited at start:\n${proc.tail()}`)
    if (Date.now() > deadline) throw new Error(`worker ${name} did not start within 20 s:\n${proc.tail()}`)
    await sleep(50)
  }
  return { ...proc, consumer }
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves with how it ended. */
export async function stop (proc, graceMs = 15_000) {
  if (proc.child.exitCode !== null || proc.child.signalCode !== null) return proc.exited
  proc.child.kill('SIGTERM')
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), graceMs)
  const ended = await proc.exited
  clearTimeout(timer)
  return ended
}
