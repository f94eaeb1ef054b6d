import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import { SandboxPushChannel, SandboxSmsChannel } from '../../src/channels/sandbox.js'
import { SandboxUpstream } from '../../src/reachability/upstreams/sandbox.js'
import { shardOfId } from '../../src/notifications/ids.js'
import { RedisKeys } from '../../src/store/redis/keys.js'
import { freePort, startLossyProxy } from '../helpers/net.js'
import { buildTestApp } from '../helpers/app.js'
import { redisAvailable } from '../helpers/redis.js'
import { waitFor } from '../helpers/wait.js'

// Redis goes away under a running app (SIGKILL of a redis-server of this test's own) and comes back on the
// same port: requests that need the store answer 503 with Retry-After at once, /readyz says so, and the
// app (its requests and its delivery worker) works again by itself.

// The suite needs redis-server; the shared Redis being there says the machine has it (and CI=true makes its absence a failure).
const haveRedis = await redisAvailable()
const both = { sms: { text: 'Your code is 123456' }, push: { title: 'Code', body: 'Your code is 123456' } }


/** A redis-server of the test's own; `args` adds to the defaults (nothing on disk unless asked). */
async function startRedis (port: number, dir: string, args: string[] = ['--save', '', '--appendonly', 'no']): Promise<ChildProcess> {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, ...args], { stdio: 'ignore' })
  const probe = new Redis({ port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
  probe.on('error', () => {})
  try {
    await waitFor(async () => {
      try {
        if (probe.status !== 'ready') await probe.connect()
        return (await probe.ping()) === 'PONG' ? true : undefined
      } catch {
        probe.disconnect()
        return undefined
      }
    }, 5000, `redis-server on port ${port}`)
  } finally {
    probe.disconnect()
  }
  return child
}

async function kill (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise(resolve => child.once('exit', resolve))
  child.kill('SIGKILL')
  await exited
}

async function setup (t: Test, redisArgs?: string[], env: Record<string, string> = {}) {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'rr-outage-'))
  const servers: ChildProcess[] = [await startRedis(port, dir, redisArgs)]
  const sms = new SandboxSmsChannel({ log: () => {} })
  const push = new SandboxPushChannel({ log: () => {} })
  const { app, bearer } = await buildTestApp({
    REDIS_URL: `redis://127.0.0.1:${port}`, QUEUE_SHARDS: '4', WORKERS: 'on', WORKER_IDLE_POLL_MS: '20', REDIS_COMMAND_TIMEOUT_MS: '1000', ...env,
  }, { upstream: new SandboxUpstream({ comebackSeconds: 20 }), channels: { sms, push } })
  t.teardown(async () => {
    await app.close()
    for (const child of servers) await kill(child)
    rmSync(dir, { recursive: true, force: true })
  })
  const auth = await bearer()
  const notify = (payload: object) => app.inject({ method: 'POST', url: '/v1/notifications', headers: { authorization: auth }, payload })
  const status = (id: string) => app.inject({ url: `/v1/notifications/${id}`, headers: { authorization: auth } })
  const until = (id: string, wanted: string) => waitFor<{ status: string, channel: string }>(async () => {
    const res = await status(id)
    return res.statusCode === 200 && res.json().status === wanted ? res.json() : undefined
  }, 10_000, `${id} to be ${wanted}`)
  return {
    app, sms, push, notify, status, until,
    server: () => servers[servers.length - 1]!,
    kill: () => kill(servers[servers.length - 1]!),
    restart: async () => { servers.push(await startRedis(port, dir, redisArgs)) },
  }
}

t.test('Redis killed and back on the same port', { skip: !haveRedis && 'Redis is not running (CI=true makes this a failure)' }, async t => {
  const { app, notify, status, until, kill, restart, sms, push } = await setup(t)

  const before = await notify({ to: '+990123411', message: both })
  t.equal(before.statusCode, 202)
  await until(before.json().id, 'sent')

  await kill()

  for (const [to, what] of [['+990123411', 'a cached number'], ['+447911123456', 'a number never seen']] as const) {
    const started = Date.now()
    const res = await notify({ to, message: both, push_token: 'tok' })
    const took = Date.now() - started
    t.equal(res.statusCode, 503, `POST for ${what}: 503`)
    t.ok(took < 2000, `POST for ${what} answered in ${took} ms`)
    t.equal(res.headers['content-type'], 'application/problem+json; charset=utf-8')
    t.ok(Number(res.headers['retry-after']) >= 1, 'with Retry-After')
    t.match(res.json(), { status: 503, type: /store-unavailable$/ })
  }
  const read = await status(before.json().id)
  t.equal(read.statusCode, 503, 'GET of a notification: 503, not a 404')
  const started = Date.now()
  const ready = await app.inject({ url: '/readyz' })
  t.equal(ready.statusCode, 503, '/readyz: 503')
  t.ok(Date.now() - started < 2000, '/readyz answers quickly')
  t.equal((await app.inject({ url: '/healthz' })).statusCode, 200, '/healthz stays 200: the process is alive')

  // A while without Redis: the worker's loop keeps turning (it retries and sleeps, never dies).
  await sleep(1500)
  t.ok(Date.now() - app.deliveryWorker!.lastLoopAt < 1000, 'the delivery worker loop still turns')

  await restart()
  const back = Date.now()
  const again = await waitFor(async () => {
    const res = await notify({ to: '+990123400', message: both, push_token: 'tok-back' })
    return res.statusCode === 202 ? res : undefined
  }, 5000, 'a 202 after Redis came back')
  t.ok(Date.now() - back < 3000, `accepting again ${Date.now() - back} ms after Redis came back`)
  t.equal((await app.inject({ url: '/readyz' })).statusCode, 200, '/readyz: 200 again')
  // The new Redis is empty: the consumer groups are made again and the worker delivers.
  const done = await until(again.json().id, 'sent')
  t.equal(done.channel, 'push')
  t.equal(push.deliveries().filter(d => d.notificationId === again.json().id).length, 1)

  // Every request right after the comeback succeeds: nothing fails because of a stale connection.
  const burst = await Promise.all(Array.from({ length: 20 }, (_, i) => notify({ to: '+990123411', message: { sms: { text: `m${i}` } } })))
  t.same(burst.map(r => r.statusCode), burst.map(() => 202))
  for (const res of burst) await until(res.json().id, 'sent')
  t.equal(sms.deliveries().length, 1 + 20)
})

t.test('Redis that hangs (SIGSTOP): 503 after the command timeout, never a hanging request; fine again after SIGCONT', { skip: !haveRedis && 'Redis is not running' }, async t => {
  const { app, notify, until, server } = await setup(t)
  const first = await notify({ to: '+990123411', message: both })
  await until(first.json().id, 'sent')
  server().kill('SIGSTOP')
  t.teardown(() => { server().kill('SIGCONT') })
  const timed = async <T>(work: Promise<T>): Promise<[T, number]> => {
    const started = Date.now()
    return [await work, Date.now() - started]
  }
  const [[post, postMs], [ready, readyMs]] = await Promise.all([timed(notify({ to: '+990123411', message: both })), timed(app.inject({ url: '/readyz' }))])
  t.equal(post.statusCode, 503)
  t.equal(post.headers['retry-after'], '2')
  t.equal(ready.statusCode, 503)
  // Each store call gives up after REDIS_COMMAND_TIMEOUT_MS (1000), even when queued behind a pipeline that waits
  // on the hung Redis. The POST first asks the rate-limit counter (skipped on error, after its own wait).
  t.ok(readyMs < 1500, `/readyz answered within ${readyMs} ms`)
  t.ok(postMs < 3000, `POST answered within ${postMs} ms`)
  server().kill('SIGCONT')
  const again = await waitFor(async () => {
    const res = await notify({ to: '+990123411', message: both })
    return res.statusCode === 202 ? res : undefined
  }, 5000, 'a 202 after SIGCONT')
  await until(again.json().id, 'sent')
})

t.test('a 202 is always stored: Redis killed mid-load (with an fsync-always AOF, so what Redis acknowledged survives)', { skip: !haveRedis && 'Redis is not running' }, async t => {
  const { notify, status, kill, restart } = await setup(t, ['--save', '', '--appendonly', 'yes', '--appendfsync', 'always'])
  const accepted: string[] = []
  const answers = new Map<number, number>()
  let slowest = 0
  let stop = false
  const load = Array.from({ length: 8 }, async (_, worker) => {
    let i = 0
    while (!stop) {
      const started = Date.now()
      const res = await notify({ to: ['+990123400', '+990123411', '+447911123456', '+990123433'][i++ % 4]!, message: both, push_token: `tok-${worker}` })
      answers.set(res.statusCode, (answers.get(res.statusCode) ?? 0) + 1)
      slowest = Math.max(slowest, Date.now() - started)
      if (res.statusCode === 202) accepted.push(res.json().id)
      else if (res.statusCode !== 503) t.fail(`unexpected ${res.statusCode}: ${res.body}`)
      if (res.statusCode === 503) await sleep(50)
    }
  })
  await sleep(500)
  await kill()
  await sleep(500)
  stop = true
  await Promise.all(load)
  t.ok((answers.get(503) ?? 0) > 0, `answers: ${JSON.stringify(Object.fromEntries(answers))}`)
  t.ok(slowest < 2500, `no request hangs: the slowest took ${slowest} ms`)
  t.ok(accepted.length > 0, `${accepted.length} accepted before the kill`)

  await restart()
  await waitFor(async () => (await status(accepted[0]!)).statusCode === 200 ? true : undefined, 5000, 'the store to answer again')
  const missing: string[] = []
  for (const id of accepted) {
    if ((await status(id)).statusCode !== 200) missing.push(id)
  }
  t.same(missing, [], 'every 202 reads back after the restart')
})

// An accept whose answer is lost may have run. CLIENT PAUSE WRITE holds the accept script inside Redis (the
// connection stays open, the script runs when the pause ends), as a Redis that stalls does.
t.test('an accept whose answer comes late', { skip: !haveRedis && 'Redis is not running' }, async t => {
  const { notify, status, until, admin } = await setupWithAdmin(t)
  const first = await notify({ to: '+990123411', message: both })
  t.equal(first.statusCode, 202)
  await until(first.json().id, 'sent')
  // A second read of the cache entry makes it this process's guess: the requests below go straight to the accept
  // script (no cache read first, which would wait behind the paused writes on the same connection).
  t.equal((await notify({ to: '+990123411', message: both })).statusCode, 202)
  // Stored: readable, and on its way (a delivery worker's read held by the pause is taken over later, so not waited for).
  const stored = async (t: Test, id: string) => {
    const res = await status(id)
    t.equal(res.statusCode, 200, `${id} reads back`)
    t.match(res.json().status, /^(queued|sending|sent)$/)
  }

  t.test('answered after the command timeout but before the store gave up: 202, as stored', async t => {
    await admin.call('CLIENT', 'PAUSE', '1600', 'WRITE')
    const started = Date.now()
    const res = await notify({ to: '+990123411', message: both })
    t.equal(res.statusCode, 202, `202 after ${Date.now() - started} ms: ${res.body.slice(0, 300)}`)
    t.ok(Date.now() - started >= 1000, 'the accept did outlast the command timeout')
    if (res.statusCode === 202) await stored(t, res.json().id)
  })

  t.test('no answer within the command timeout twice over: 503 outcome-unknown naming the id, which reads back once the store answers', async t => {
    await admin.call('CLIENT', 'PAUSE', '3500', 'WRITE')
    const pauseEnds = Date.now() + 3500
    const res = await notify({ to: '+990123411', message: both })
    t.equal(res.statusCode, 503)
    t.equal(res.headers['retry-after'], '2')
    const problem = res.json()
    t.match(problem, { status: 503, type: /\/outcome-unknown$/, title: 'Outcome unknown', notification_id: /^ntf_/ })
    t.match(problem.detail, /may or may not have been stored/)
    // The script runs when the pause ends: the notification the answer named was stored after all. (Read once the
    // pause is over: a read queued behind the paused write times out, and a busy machine answers the 503 late or early.)
    await sleep(Math.max(0, pauseEnds - Date.now()) + 200)
    await stored(t, problem.notification_id)
  })

})

t.test('an accept that never ran: 503 store-unavailable, and nothing was stored', { skip: !haveRedis && 'Redis is not running' }, async t => {
  // No workers: the accept is then the only command of its pipeline, and it waits inside Redis (paused) when Redis
  // is killed. (With workers, a command of theirs held by the pause would hold the accept in the client's
  // auto-pipeline queue instead; it would then run on the restarted Redis, and be answered 202, as stored.)
  const { notify, status, admin, kill, restart } = await setupWithAdmin(t, { WORKERS: 'off' })
  const first = await notify({ to: '+990123411', message: both })
  t.equal((await notify({ to: '+990123411', message: both })).statusCode, 202, 'the cache entry is now this process\'s guess')
  // Notification records and event lists; not the tombstone the settled accept leaves (a hash without status).
  const records = async () => {
    const keys = await scanAll(admin, '*ntf_*')
    const tombstones = await Promise.all(keys.map(async k => await admin.type(k) === 'hash' && await admin.hexists(k, 'status') === 0))
    return keys.filter((_, i) => !tombstones[i]).length
  }
  const before = await records()
  await admin.call('CLIENT', 'PAUSE', '5000', 'WRITE')
  const answer = notify({ to: '+990123411', message: both })
  await sleep(300)
  // Killed while the accept waits in it unrun; back at once from its append-only file.
  await kill()
  await restart()
  const res = await answer
  t.equal(res.statusCode, 503, res.body)
  t.match(res.json(), { type: /\/store-unavailable$/, detail: /not stored/ })
  t.equal(await records(), before, 'no notification record or event list was written')
  t.equal((await status(first.json().id)).statusCode, 200, 'what was stored before is still there')
  t.equal((await scanAll(admin, '*ntf_*')).length, before + 1, 'only a tombstone for its id, refusing the accept should it still come')
})

async function setupWithAdmin (t: Test, appEnv: Record<string, string> = {}) {
  const env = await setup(t, ['--save', '', '--appendonly', 'yes', '--appendfsync', 'always'], appEnv)
  const port = Number((env.server().spawnargs[env.server().spawnargs.indexOf('--port') + 1]))
  const admin = new Redis({ port, host: '127.0.0.1' })
  t.teardown(async () => {
    await admin.call('CLIENT', 'UNPAUSE').catch(() => {})
    admin.disconnect()
  })
  return { ...env, admin }
}

async function scanAll (redis: Redis, match: string): Promise<string[]> {
  const keys: string[] = []
  let cursor = '0'
  do {
    const [next, found] = await redis.scan(cursor, 'MATCH', match, 'COUNT', 1000)
    cursor = next
    keys.push(...found)
  } while (cursor !== '0')
  return keys
}

t.test('the answer of an accept that ran is lost, and Redis refuses the reconnect for a while: still 202, as stored', { skip: !haveRedis && 'Redis is not running' }, async t => {
  // ioredis fails the commands of the dropped connection with MaxRetriesPerRequestError when a reconnect is
  // refused: they were sent, and this one ran.
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), 'rr-lossy-'))
  const server = await startRedis(port, dir)
  const proxy = await startLossyProxy(port)
  const { app, bearer } = await buildTestApp({
    REDIS_URL: `redis://127.0.0.1:${proxy.port}`, QUEUE_SHARDS: '4', WORKERS: 'off', REDIS_COMMAND_TIMEOUT_MS: '1000',
  }, { upstream: new SandboxUpstream({ comebackSeconds: 20 }) })
  t.teardown(async () => {
    await app.close()
    await proxy.close()
    await kill(server)
    rmSync(dir, { recursive: true, force: true })
  })
  const auth = await bearer()
  const notify = () => app.inject({ method: 'POST', url: '/v1/notifications', headers: { authorization: auth }, payload: { to: '+990123411', message: both } })
  t.equal((await notify()).statusCode, 202)
  t.equal((await notify()).statusCode, 202, 'the cache entry is now this process\'s guess: the next request is the accept alone')

  // The connection is cut with the accept's answer, and reconnects are refused for 500 ms.
  proxy.dropNextAnswer(500)
  const res = await notify()
  t.equal(res.statusCode, 202, res.body.slice(0, 300))
  const id = res.json().id as string
  const read = await app.inject({ url: `/v1/notifications/${id}`, headers: { authorization: auth } })
  t.equal(read.statusCode, 200, 'it is stored')
  const redis = new Redis({ port })
  t.teardown(() => redis.disconnect())
  const jobs = await redis.xrange(new RedisKeys('rr:', 4).outbox(shardOfId(id, 4)!, 'sms'), '-', '+')
  t.equal(jobs.filter(([, fields]) => fields[1] === id).length, 1, 'one job for it')
})
