// bench/notify: POST /v1/notifications on the cache-hit path against Redis, auth and validation on,
// measured side by side with a bare Fastify route in the same run; then p99 latency at half that load.
import { randomUUID } from 'node:crypto'
import { build, dropPrefix, freePort, hey, median, REDIS_URL, requireTools, root, startProcess, stopProcess, wrk } from './lib/harness.mjs'
import { NOTIFY_BODY as body, minorGcs, notifyToken, opsToken, serverEnv, warmCache } from './lib/notify-request.mjs'

// These machines are small and shared: the two servers are measured in alternating short rounds and
// the ratio of each pair is kept, so a slow spell of the machine hits both sides alike.
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5)
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 6)
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 64)
const HALF_LOAD_SECONDS = 10
const prefix = `rrbench:${randomUUID().slice(0, 8)}:`

requireTools('wrk', 'hey')
await build()
const [barePort, appPort] = [await freePort(), await freePort()]
const bare = await startProcess(['bench/bare-server.mjs'], { PORT: String(barePort) }, `http://127.0.0.1:${barePort}/healthz`)
const app = await startProcess(['dist/src/server.js'], serverEnv({ port: appPort, redisUrl: REDIS_URL, prefix }), `http://127.0.0.1:${appPort}/readyz`)

try {
  const token = await notifyToken()
  await warmCache(`http://127.0.0.1:${appPort}`, token)
  const env = { BENCH_TOKEN: token, BENCH_BODY: body }
  const script = `${root}/bench/notify.lua`
  wrk({ url: `http://127.0.0.1:${appPort}/v1/notifications`, script, seconds: 3, connections: CONNECTIONS, env })
  wrk({ url: `http://127.0.0.1:${barePort}/v1/notifications`, script, seconds: 3, connections: CONNECTIONS, env })

  const rounds = []
  for (let i = 0; i < ROUNDS; i++) {
    const b = wrk({ url: `http://127.0.0.1:${barePort}/v1/notifications`, script, seconds: SECONDS, connections: CONNECTIONS, env })
    const n = wrk({ url: `http://127.0.0.1:${appPort}/v1/notifications`, script, seconds: SECONDS, connections: CONNECTIONS, env })
    if (n.non2xx > 0) throw new Error(`reachroute answered ${n.non2xx} non-2xx responses:\n${n.raw}`)
    rounds.push({ bare: b.rps, notify: n.rps, ratio: n.rps / b.rps })
    console.log(`round ${i + 1}: bare ${b.rps.toFixed(0)} req/s, notify ${n.rps.toFixed(0)} req/s, ratio ${(n.rps / b.rps).toFixed(2)}`)
  }
  const notifyRps = median(rounds.map(r => r.notify))
  const ops = await opsToken()
  const gcBefore = await minorGcs(`http://127.0.0.1:${appPort}`, ops)
  const h = hey({
    url: `http://127.0.0.1:${appPort}/v1/notifications`, rate: notifyRps / 2, seconds: HALF_LOAD_SECONDS, body, headers: { authorization: `Bearer ${token}` },
  })
  // The young-generation GCs (scavenges) during the half-load run: each pauses every request in flight.
  const gcAfter = await minorGcs(`http://127.0.0.1:${appPort}`, ops)
  const scavenges = gcAfter.count - gcBefore.count
  if (h.codes.some(([code]) => code !== 202)) throw new Error(`half-load run answered ${JSON.stringify(h.codes)}`)
  // The same paced load on bare Fastify: what this machine and the load generator alone give at that rate.
  const hb = hey({ url: `http://127.0.0.1:${barePort}/v1/notifications`, rate: notifyRps / 2, seconds: HALF_LOAD_SECONDS, body })

  const result = {
    bare_rps: Math.round(median(rounds.map(r => r.bare))),
    notify_rps: Math.round(notifyRps),
    ratio: Number(median(rounds.map(r => r.ratio)).toFixed(2)),
    half_load_rps: Math.round(h.rps),
    half_load_p50_ms: h.p50,
    half_load_p99_ms: h.p99,
    half_load_scavenges_per_s: Number((scavenges / HALF_LOAD_SECONDS).toFixed(1)),
    half_load_scavenge_mean_ms: scavenges > 0 ? Number(((gcAfter.seconds - gcBefore.seconds) * 1000 / scavenges).toFixed(2)) : 0,
    bare_same_rate_p50_ms: hb.p50,
    bare_same_rate_p99_ms: hb.p99,
    target: 'ratio >= 0.50; p99 at half load < 5 ms',
  }
  console.log('\nbench/notify (cache-hit path, Redis store, auth + validation on; wrk -t1 -c' + CONNECTIONS + `, ${ROUNDS} x ${SECONDS} s alternating, median of the per-round ratios; latency with hey at half the notify rate, 8 paced connections)`)
  console.table([result])
  console.log(JSON.stringify({ notify: result }))
  process.exitCode = result.ratio >= 0.5 && result.half_load_p99_ms < 5 ? 0 : 1
} finally {
  await Promise.all([stopProcess(app), stopProcess(bare)])
  await dropPrefix(prefix)
}
