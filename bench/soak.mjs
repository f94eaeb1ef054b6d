// npm run soak: reachroute under load while parts of it fail. Every 202 must reach exactly one final status, and
// no message may reach a provider twice (except a job its worker held at a SIGKILL, which at-least-once delivery
// may repeat once: counted apart). See README "npm run soak".
//
//   node bench/soak.mjs [--duration 60] [--rate 40] [--api-port N] [--redis-port N] [--out-dir DIR] [--prebuilt] [--keep] [--json]
//   (or SOAK_DURATION, SOAK_RATE, SOAK_API_PORT, SOAK_REDIS_PORT, SOAK_OUT_DIR)
//
// The last line printed is `SOAK_RESULT <json>`. Exit code: 0 clean, 1 something lost or doubled (or a fault
// that could not be injected), 2 the harness itself failed or ran out of time.
import { generateKeyPairSync, randomUUID } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { parseArgs } from 'node:util'
import { Redis } from 'ioredis'
import { SignJWT } from 'jose'
import { freePort, root } from './lib/harness.mjs'
import { apiStatuses, heldBy, storedNotifications, verdict } from './soak/check.mjs'
import { newLedger, startPushGateway, startSmsProvider, startUpstream } from './soak/fakes.mjs'
import { createLoad, ukNumbers } from './soak/load.mjs'
import { buildInto, keepLogsIn, killAll, startApi, startRedis, startWorker, stop } from './soak/processes.mjs'

const { values: flags } = parseArgs({
  options: {
    duration: { type: 'string' },
    rate: { type: 'string' },
    'api-port': { type: 'string' },
    'redis-port': { type: 'string' },
    'out-dir': { type: 'string' },
    'drain-seconds': { type: 'string' },
    // Runs the build already in --out-dir instead of building it (the test suite's, made by test/before.ts).
    prebuilt: { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
  },
})
const env = process.env
const DURATION_S = Number(flags.duration ?? env.SOAK_DURATION ?? 60)
const RATE = Number(flags.rate ?? env.SOAK_RATE ?? 40)
const DRAIN_S = Number(flags['drain-seconds'] ?? env.SOAK_DRAIN_SECONDS ?? 60)
const OUT_DIR = flags['out-dir'] ?? env.SOAK_OUT_DIR ?? join(root, 'dist')
const SHARDS = 4
const LANES = ['push', 'sms', 'callback', 'push_bulk', 'sms_bulk']
const SECRET = `soak-${randomUUID()}`
const PUSH_SECRET = `soak-push-${randomUUID()}`
const APP_ID = randomUUID()
const HARD_TIMEOUT_MS = (DURATION_S + DRAIN_S + 180) * 1000

if (!(DURATION_S >= 5 && DURATION_S <= 3600) || !(RATE > 0 && RATE <= 1000)) {
  console.error('--duration must be 5 to 3600 seconds and --rate 1 to 1000 per second')
  process.exit(2)
}

const log = (...args) => console.error(`[soak ${new Date().toISOString().slice(11, 23)}]`, ...args)
const tmp = mkdtempSync(join(tmpdir(), 'reachroute-soak-'))
const closers = []
if (flags.keep) keepLogsIn(tmp)
let finished = false

async function cleanup () {
  killAll()
  for (const close of closers.reverse()) await close().catch(() => {})
  if (!flags.keep) rmSync(tmp, { recursive: true, force: true })
  else log(`kept ${tmp}`)
}

const hardTimer = setTimeout(() => {
  log(`hard timeout of ${HARD_TIMEOUT_MS / 1000} s reached: stopping`)
  finish(2, { error: 'hard timeout' })
}, HARD_TIMEOUT_MS)
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => finish(130, { error: signal }))

async function finish (code, result) {
  if (finished) return
  finished = true
  clearTimeout(hardTimer)
  await cleanup()
  console.log(`SOAK_RESULT ${JSON.stringify(result)}`)
  process.exit(code)
}

try {
  const result = await main()
  await finish(result.ok ? 0 : 1, result)
} catch (err) {
  log(`the harness failed: ${err.stack ?? err}`)
  await finish(2, { error: String(err.message ?? err) })
}

async function main () {
  const started = Date.now()
  if (flags.prebuilt) {
    log(`running the build in ${OUT_DIR}`)
  } else {
    log(`building into ${OUT_DIR}`)
    await buildInto(OUT_DIR)
  }

  const redisPort = Number(flags['redis-port'] ?? env.SOAK_REDIS_PORT ?? await freePort())
  const apiPort = Number(flags['api-port'] ?? env.SOAK_API_PORT ?? await freePort())
  let redisProc = await startRedis({ port: redisPort, dir: tmp })
  const deliveries = newLedger()
  const upstream = await startUpstream()
  const sms = await startSmsProvider(deliveries)
  const push = await startPushGateway(PUSH_SECRET, deliveries)
  closers.push(upstream.close, sms.close, push.close)

  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs8', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } })
  // Every name here is a variable src/config.ts knows.
  const appEnv = {
    NODE_ENV: 'production',
    LOG_LEVEL: 'warn',
    AUTH_HS256_SECRET: SECRET,
    REDIS_URL: `redis://127.0.0.1:${redisPort}`,
    QUEUE_SHARDS: String(SHARDS),
    WORKER_CONCURRENCY: '16',
    WORKER_IDLE_POLL_MS: '50',
    WORKER_VISIBILITY_TIMEOUT_MS: '4000',
    DELIVERY_MAX_ATTEMPTS: '10',
    DELIVERY_RETRY_BASE_MS: '250',
    DELIVERY_RETRY_MAX_MS: '2000',
    CHANNEL_TIMEOUT_MS: '1500',
    FALLBACK_FIRST_CHECK_SECONDS: '2',
    FALLBACK_BACKOFF_FACTOR: '1.5',
    FALLBACK_MAX_INTERVAL_SECONDS: '4',
    FALLBACK_RECHECK_MAX_AGE_SECONDS: '1',
    FALLBACK_LEASE_SECONDS: '5',
    FALLBACK_POLL_MS: '200',
    REACHABILITY_PROVIDER: 'vonage',
    VONAGE_API_BASE_URL: upstream.url,
    VONAGE_APPLICATION_ID: APP_ID,
    VONAGE_PRIVATE_KEY: privateKey,
    REACHABILITY_TIMEOUT_MS: '600',
    REACHABILITY_RETRIES: '1',
    REACHABILITY_RETRY_BASE_MS: '50',
    REACHABILITY_RETRY_MAX_MS: '200',
    REACHABILITY_TTL_REACHABLE_SECONDS: '3',
    REACHABILITY_TTL_UNREACHABLE_SECONDS: '1',
    REACHABILITY_MAX_STALE_SECONDS: '30',
    REACHABILITY_UPSTREAM_RPS: '25',
    BREAKER_HALF_OPEN_AFTER_MS: '1000',
    SMS_PROVIDER: 'vonage',
    VONAGE_MESSAGES_BASE_URL: sms.url,
    PUSH_PROVIDER: 'webhook',
    PUSH_WEBHOOK_URL: push.url,
    PUSH_WEBHOOK_SECRET: PUSH_SECRET,
    RATE_LIMIT_NOTIFICATIONS_PER_MINUTE: '0',
    RATE_LIMIT_REACHABILITY_PER_MINUTE: '0',
    RATE_LIMIT_OPS_PER_MINUTE: '0',
    RATE_LIMIT_DEFAULT_PER_MINUTE: '0',
  }
  const workerEnv = { ...appEnv, LOG_LEVEL: 'info' }
  const spawnOpts = { outDir: OUT_DIR, root }

  let api = await startApi({ ...spawnOpts, env: appEnv, port: apiPort })
  let workerSeq = 0
  const workers = []
  const addWorker = async () => {
    const w = await startWorker({ ...spawnOpts, env: workerEnv, name: `worker-${++workerSeq}` })
    workers.push(w)
    return w
  }
  await addWorker()
  await addWorker()
  log(`redis :${redisPort}, api :${apiPort}, workers ${workers.map(w => w.consumer).join(', ')}; ${DURATION_S} s at ${RATE}/s`)

  const token = await new SignJWT({ scope: 'notifications:write notifications:read campaigns:write campaigns:read ops' })
    .setProtectedHeader({ alg: 'HS256' }).setSubject('soak').setIssuedAt().setExpirationTime('2h').sign(new TextEncoder().encode(SECRET))
  const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' }
  const redis = new Redis({ port: redisPort, host: '127.0.0.1', maxRetriesPerRequest: 1 })
  redis.on('error', () => {})
  closers.push(async () => redis.disconnect())

  const numbers = ukNumbers(600)
  const load = createLoad({ api: () => api.base, token, rate: RATE, randomNumbers: numbers.slice(0, 300), runId: randomUUID().slice(0, 8) })
  const loadStart = Date.now()
  const stopAt = loadStart + DURATION_S * 1000
  const at = fraction => sleep(Math.max(0, loadStart + fraction * DURATION_S * 1000 - Date.now()))
  const spell = Math.max(2500, DURATION_S * 1000 * 0.07)
  const faults = { worker_sigkill: 0, worker_restarts: 0, held_at_sigkill: 0, upstream_503_spell: 0, upstream_timeout_spell: 0, sms_429_spell: 0, sms_500_spell: 0, redis_restarts: 0, api_sigterm: 0, api_exit_code: null }
  const excused = []
  const timeline = []
  const mark = what => {
    timeline.push(`${((Date.now() - loadStart) / 1000).toFixed(1)} s ${what}`)
    log(what)
  }

  // The campaign: recipients never looked up, so the runner goes at the upstream budget (25/s) through the faults.
  const recipients = Math.max(100, Math.round(DURATION_S * 25 * 0.5))
  const campaignTask = (async () => {
    await at(0.05)
    const res = await fetch(`${api.base}/v1/campaigns`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({
        name: 'soak',
        message: { sms: { text: 'soak {{ref}}: campaign message' }, push: { title: 'soak', body: 'soak {{ref}}' } },
        routing: { ttl_seconds: 10 },
        recipients: numbers.slice(0, recipients).map((to, i) => ({ to, push_token: `ctok-${i}`, vars: { ref: `c${i}` } })),
      }),
    })
    const body = await res.json()
    if (res.status !== 202) throw new Error(`the campaign was refused: ${res.status} ${JSON.stringify(body)}`)
    mark(`campaign ${body.id}: ${body.recipients_accepted} recipients`)
    return { id: body.id, recipients: body.recipients_accepted }
  })()

  /** Puts a fake in `mode` for `ms`, marked on the timeline and counted as the fault injected. */
  const spellOf = async (fake, mode, fault, ms, what) => {
    mark(what)
    fake.state.mode = mode
    faults[fault] = 1
    await sleep(ms)
  }

  const faultTask = (async () => {
    await at(0.12)
    await spellOf(upstream, '503', 'upstream_503_spell', spell, 'upstream: 503 on every call')
    upstream.state.mode = 'ok'
    mark('upstream: answering again')

    await at(0.25)
    const victim = workers[0]
    victim.child.kill('SIGSTOP') // frozen: it takes no new job while its pending list is read
    const held = await heldBy(redis, victim.consumer, SHARDS, LANES)
    victim.child.kill('SIGKILL')
    await victim.exited
    excused.push(...held)
    faults.worker_sigkill++
    faults.held_at_sigkill += held.length
    mark(`SIGKILL ${victim.name} (${victim.consumer}) holding ${held.length} jobs`)
    workers.shift()
    const fresh = await addWorker()
    faults.worker_restarts++
    mark(`started ${fresh.name} (${fresh.consumer})`)

    await at(0.38)
    await spellOf(sms, '429', 'sms_429_spell', spell / 2, 'SMS provider: 429 on every message')
    await spellOf(sms, '500', 'sms_500_spell', spell / 2, 'SMS provider: 500 on every message')
    sms.state.mode = 'ok'
    mark('SMS provider: taking messages again')

    await at(0.52)
    await spellOf(upstream, 'timeout', 'upstream_timeout_spell', spell, 'upstream: no answer (timeouts)')
    upstream.state.mode = 'ok'
    mark('upstream: answering again')

    await at(0.66)
    mark('redis: SIGKILL')
    redisProc.child.kill('SIGKILL')
    await redisProc.exited
    await sleep(1500)
    redisProc = await startRedis({ port: redisPort, dir: tmp })
    faults.redis_restarts++
    mark('redis: started again from its append-only file')

    await at(0.8)
    mark('api: SIGTERM')
    const ended = await stop(api)
    faults.api_sigterm++
    faults.api_exit_code = ended.code
    api = await startApi({ ...spawnOpts, env: appEnv, port: apiPort })
    mark(`api: started again (the first exited ${ended.code ?? ended.signal})`)
  })()

  // Handled where they are awaited, after the load; this keeps an early failure from crashing the harness uncleaned.
  campaignTask.catch(() => {})
  faultTask.catch(() => {})
  await load.run(stopAt)
  mark(`load stopped: ${load.requests.length} requests`)
  const [campaign] = await Promise.all([campaignTask, faultTask])

  // Drain: until the store holds nothing unfinished and the outboxes are empty.
  const drainUntil = Date.now() + DRAIN_S * 1000
  let stored
  let drained = false
  for (;;) {
    // The campaign first: once it is done, every notification it makes is in the store before the store is read.
    // (Read the other way round, a recipient accepted and counted between the two readings was missed: a runner
    // that waited out the idempotency claim of the worker killed mid-accept made it then, 30 s after the kill.)
    const view = await (await fetch(`${api.base}/v1/campaigns/${campaign.id}`, { headers: auth })).json()
    stored = await storedNotifications(redis)
    const open = [...stored.values()].filter(n => !['sent', 'delivered', 'failed', 'expired', 'dropped'].includes(n.status)).length
    const campaignDone = view.status === 'completed' || view.recipients.processed >= view.recipients.accepted
    drained = open === 0 && campaignDone
    if (drained || Date.now() > drainUntil) {
      mark(drained ? 'drained' : `drain timed out with ${open} unfinished, campaign ${view.status} (${view.recipients.processed}/${view.recipients.accepted} processed)`)
      break
    }
    await sleep(500)
  }
  // The workers stop (finishing what they hold) before the final reading, so nothing changes under it.
  await Promise.all(workers.map(w => stop(w)))
  stored = await storedNotifications(redis)
  const statuses = await apiStatuses(api.base, token, load.requests.filter(r => r.id).map(r => r.id))
  campaign.view = await (await fetch(`${api.base}/v1/campaigns/${campaign.id}`, { headers: auth })).json()

  const result = verdict({ requests: load.requests, statuses, stored, deliveries, excused, campaign })
  if (!drained) result.problems.push(`the queues did not drain within ${DRAIN_S} s of the end of the load`)
  const injected = faults.worker_sigkill > 0 && upstream.counters.served503 > 0 && upstream.counters.timedOut > 0 &&
    sms.counters.served429 > 0 && sms.counters.served500 > 0 && faults.redis_restarts > 0 && faults.api_sigterm > 0
  if (!injected) result.problems.push('a fault was not injected (see faults and the fakes\' counters)')
  if (faults.api_exit_code !== 0) result.problems.push(`the API exited ${faults.api_exit_code} on SIGTERM, not 0`)
  result.ok = result.lost.length === 0 && result.duplicates.length === 0 && result.problems.length === 0
  Object.assign(result, {
    duration_s: DURATION_S,
    rate: RATE,
    wall_s: Math.round((Date.now() - started) / 1000),
    faults,
    upstream: upstream.counters,
    sms_provider: sms.counters,
    push_gateway: push.counters,
    timeline,
  })
  // What happened to each lost notification (the first few), for whoever reads a failed run.
  result.lost_events = {}
  for (const line of result.lost.slice(0, 5)) {
    const id = /ntf_\d{2}_[0-9a-f]{32}/.exec(line)?.[0]
    if (!id) continue
    const res = await fetch(`${api.base}/v1/notifications/${id}`, { headers: auth }).catch(err => ({ ok: false, status: err.message }))
    result.lost_events[id] = res.ok
      ? (await res.json()).events.map(e => `${e.at.slice(11, 23)} ${e.type}: ${e.detail ?? ''}${e.outcome ? ` (${e.outcome})` : ''}`)
      : [`not readable: ${res.status}`]
  }
  await stop(api)
  printTable(result)
  return result
}

function printTable (r) {
  const rows = [
    ['requests', r.requests],
    ['accepted (202)', r.accepted],
    ['rejected', Object.entries(r.rejected).map(([k, v]) => `${v} ${k}`).join('; ') || '0'],
    ['idempotent retries (replayed / sent)', `${r.replayed_ok} / ${r.idempotent_retries}`],
    ['final statuses of the accepted', Object.entries(r.accepted_by_status).map(([k, v]) => `${v} ${k}`).join(', ')],
    ['campaign', r.campaign ? `${r.campaign.recipients} recipients, ${r.campaign.notifications} notifications, ${r.campaign.missing} missing, ${r.campaign.status}` : '-'],
    ['notifications stored (incl. campaign)', `${r.stored}: ${Object.entries(r.stored_by_status).map(([k, v]) => `${v} ${k}`).join(', ')}`],
    ['delivered: push / SMS', `${r.delivered.push} / ${r.delivered.sms} (${r.delivered.ids} ids)`],
    ['expired', r.stored_by_status.expired ?? 0],
    ['failed', r.stored_by_status.failed ?? 0],
    ['duplicates held at SIGKILL (allowed)', `${r.duplicates_excused} (of ${r.faults.held_at_sigkill} held)`],
    ['duplicates, other', r.duplicates.length],
    ['lost', r.lost.length],
    ['other problems', r.problems.length],
    ['stored though the caller saw no 202', r.stored_without_answer.length],
    ['accept latency p50 / p99', `${r.latency_ms.p50?.toFixed(1)} ms / ${r.latency_ms.p99?.toFixed(1)} ms`],
    ['faults', `SIGKILL x${r.faults.worker_sigkill}, upstream 503 x${r.upstream.served503} and ${r.upstream.timedOut} timeouts, SMS 429 x${r.sms_provider.served429} and 500 x${r.sms_provider.served500}, Redis restart x${r.faults.redis_restarts}, API SIGTERM x${r.faults.api_sigterm}`],
  ]
  console.log('\n| figure | value |\n|---|---|')
  for (const [k, v] of rows) console.log(`| ${k} | ${v} |`)
  console.log('\ntimeline:\n  ' + r.timeline.join('\n  '))
  for (const [title, list] of [['DUPLICATES', r.duplicates], ['LOST', r.lost], ['PROBLEMS', r.problems]]) {
    if (list.length) console.log(`\n${title} (${list.length}):\n  ${list.slice(0, 30).join('\n  ')}`)
  }
  for (const [id, events] of Object.entries(r.lost_events ?? {})) console.log(`\n${id} events:\n  ${events.join('\n  ')}`)
  console.log(r.ok ? '\nOK: nothing lost, nothing doubled' : '\nFAILED')
}
