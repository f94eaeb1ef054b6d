// bench/notify-layers: where the notify path's time goes. Bare Fastify, then the stack of POST /v1/notifications
// built up one layer at a time (bench/layers-server.mjs), then reachroute itself, measured side by side in
// alternating rounds: requests/s, the ratio to bare Fastify in the same round, and the CPU per request of the server
// and of Redis: together with wrk they share the machine's cores, so their sum bounds the rate.
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { randomUUID } from 'node:crypto'
import { Redis } from 'ioredis'
import { build, dropPrefix, freePort, median, REDIS_URL, requireTools, root, startProcess, stopProcess, wrk } from './lib/harness.mjs'
import { NOTIFY_BODY as body, notifyToken, serverEnv, warmCache } from './lib/notify-request.mjs'

const SECONDS = Number(process.env.BENCH_SECONDS ?? 4)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3)
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 64)
const prefix = `rrbench:${randomUUID().slice(0, 8)}:`
const TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }))
// BENCH_LAYERS=0,6,7 measures only those servers (0 bare Fastify, 1-6 the layers, 7 reachroute); default all.
const ONLY = process.env.BENCH_LAYERS ? new Set(process.env.BENCH_LAYERS.split(',').map(Number)) : undefined

const LAYERS = [
  'bare Fastify: a constant JSON',
  '1. + one Lua round trip (cache GET, SET NX, XADD)',
  '2. + the service\'s headers, request id, the 202 answer through its schema',
  '3. + zod body validation (type provider)',
  '4. + the service\'s logger (pino, warn level)',
  '5. + @fastify/rate-limit on the Redis counter',
  '6. + HTTP metrics (prom-client)',
  'reachroute (auth, routing, the accept script)',
]

requireTools('wrk')
await build()
const servers = []
let redis
try {
  for (let i = 0; i < LAYERS.length; i++) {
    if (ONLY && i > 0 && !ONLY.has(i)) continue
    const port = await freePort()
    const url = `http://127.0.0.1:${port}`
    const child = i === 0
      ? await startProcess(['bench/bare-server.mjs'], { PORT: String(port) }, `${url}/healthz`)
      : i < LAYERS.length - 1
        ? await startProcess(['bench/layers-server.mjs'], { PORT: String(port), LAYER: String(i), PREFIX: prefix, REDIS_URL }, `${url}/healthz`)
        : await startProcess(['dist/src/server.js'], serverEnv({ port, redisUrl: REDIS_URL, prefix }), `${url}/readyz`)
    servers.push({ name: LAYERS[i], url, child, rounds: [] })
  }
  const token = await notifyToken()
  const reachroute = servers.find(s => s.name === LAYERS.at(-1))
  if (reachroute) await warmCache(reachroute.url, token)
  const env = { BENCH_TOKEN: token, BENCH_BODY: body }
  const script = `${root}/bench/notify.lua`
  const cpuSeconds = pid => {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
    return (Number(fields[11]) + Number(fields[12])) / TICKS // utime + stime
  }
  // Redis's own CPU (INFO cpu): the accept's script and the replies are work too, on the same two cores. It counts
  // every client's commands: run the bench on a Redis nothing else is using.
  redis = new Redis(REDIS_URL)
  const redisCpuSeconds = async () => {
    const info = await redis.info('cpu')
    return ['used_cpu_sys', 'used_cpu_user'].reduce((sum, field) => sum + Number(new RegExp(`${field}:([\\d.]+)`).exec(info)?.[1]), 0)
  }
  for (const s of servers) wrk({ url: `${s.url}/v1/notifications`, script, seconds: 2, connections: CONNECTIONS, env })

  for (let round = 0; round < ROUNDS; round++) {
    for (const s of servers) {
      const [before, redisBefore] = [cpuSeconds(s.child.pid), await redisCpuSeconds()]
      const r = wrk({ url: `${s.url}/v1/notifications`, script, seconds: SECONDS, connections: CONNECTIONS, env })
      if (r.non2xx > 0) throw new Error(`${s.name} answered ${r.non2xx} non-2xx responses:\n${r.raw}`)
      const requests = Number(/(\d+) requests in/.exec(r.raw)?.[1])
      s.rounds.push({
        rps: r.rps,
        cpuUs: (cpuSeconds(s.child.pid) - before) * 1e6 / requests,
        redisCpuUs: (await redisCpuSeconds() - redisBefore) * 1e6 / requests,
      })
    }
    const bare = servers[0].rounds[round].rps
    for (const s of servers) s.rounds[round].ratio = s.rounds[round].rps / bare
    console.log(`round ${round + 1}: ${servers.map(s => `${s.rounds[round].rps.toFixed(0)}`).join(' / ')} req/s`)
  }
  const rows = servers.map(s => ({
    layer: s.name,
    'req/s': Math.round(median(s.rounds.map(r => r.rps))),
    ratio: Number(median(s.rounds.map(r => r.ratio)).toFixed(2)),
    'cpu µs/req': Math.round(median(s.rounds.map(r => r.cpuUs))),
    'redis cpu µs/req': Math.round(median(s.rounds.map(r => r.redisCpuUs))),
  }))
  console.log(`\nbench/notify-layers (wrk -t1 -c${CONNECTIONS}, ${ROUNDS} rounds of ${SECONDS} s, every server once per round; medians; ratio to bare Fastify in the same round; CPU per request of the server from /proc, of Redis from INFO cpu)`)
  console.table(rows)
  console.log(JSON.stringify({ layers: rows }))
} finally {
  redis?.disconnect()
  await Promise.all(servers.map(s => stopProcess(s.child)))
  await dropPrefix(prefix)
}
