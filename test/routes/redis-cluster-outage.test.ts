import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { promisify } from 'node:util'
import t from 'tap'
import { Redis } from 'ioredis'
import { SandboxPushChannel, SandboxSmsChannel } from '../../src/channels/sandbox.js'
import { SandboxUpstream } from '../../src/reachability/upstreams/sandbox.js'
import { buildTestApp } from '../helpers/app.js'
import { redisAvailable } from '../helpers/redis.js'
import { waitFor } from '../helpers/wait.js'

// One master of a Redis Cluster of this test's own is killed (SIGKILL) and started again on its port: what
// lives on the other masters keeps working, what lives on the dead one answers 503 at once, /readyz says
// the store is not whole, and everything works again by itself once the master is back.

// redis-server is there when the shared Redis is (and CI=true makes its absence a failure).
const haveRedis = await redisAvailable()
const both = { sms: { text: 'Your code is 123456' }, push: { title: 'Code', body: 'Your code is 123456' } }

async function isFree (port: number): Promise<boolean> {
  const server = createServer()
  return new Promise(resolve => {
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })
}

/** Three ports whose cluster bus ports (+10000) are free too. */
async function clusterPorts (): Promise<number[]> {
  const ports: number[] = []
  for (let port = 20000 + Math.floor(Math.random() * 20000); ports.length < 3; port++) {
    if (await isFree(port) && await isFree(port + 10000)) ports.push(port)
  }
  return ports
}

/**
 * A cluster node. No replicas here, so nothing takes over a dead master's slots: with Redis's default
 * cluster-require-full-coverage the whole cluster refuses commands (CLUSTERDOWN) once the master is marked
 * failed (after the node timeout), and every request gets a 503. Turned off, the other masters go on serving
 * their slots, which is the partial outage this test is about.
 */
function startNode (port: number, dir: string): ChildProcess {
  mkdirSync(dir, { recursive: true })
  return spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--cluster-enabled', 'yes',
    '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '2000', '--cluster-require-full-coverage', 'no',
    '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
}

async function kill (child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise(resolve => child.once('exit', resolve))
  child.kill('SIGKILL')
  await exited
}

async function clusterOk (ports: number[]): Promise<true | undefined> {
  for (const port of ports) {
    const redis = new Redis({ port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
    redis.on('error', () => {})
    try {
      await redis.connect()
      if (!(await redis.cluster('INFO')).includes('cluster_state:ok')) return undefined
    } catch {
      return undefined
    } finally {
      redis.disconnect()
    }
  }
  return true
}

t.test('a master of the cluster killed and back', { skip: !haveRedis && 'Redis is not running (CI=true makes this a failure)' }, async t => {
  const ports = await clusterPorts()
  const root = mkdtempSync(join(tmpdir(), 'rr-cluster-outage-'))
  const nodes = ports.map(port => startNode(port, join(root, String(port))))
  t.teardown(async () => {
    for (const node of nodes) await kill(node)
    rmSync(root, { recursive: true, force: true })
  })
  await waitFor(async () => {
    for (const port of ports) {
      const redis = new Redis({ port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null })
      redis.on('error', () => {})
      try {
        await redis.connect()
      } catch {
        return undefined
      } finally {
        redis.disconnect()
      }
    }
    return true
  }, 5000, 'the cluster nodes to start')
  await promisify(execFile)('redis-cli', ['--cluster', 'create', ...ports.map(p => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'])
  await waitFor(() => clusterOk(ports), 10_000, 'cluster_state:ok')

  const sms = new SandboxSmsChannel({ log: () => {} })
  const push = new SandboxPushChannel({ log: () => {} })
  const { app, bearer } = await buildTestApp({
    REDIS_CLUSTER_NODES: ports.map(p => `127.0.0.1:${p}`).join(','), QUEUE_SHARDS: '8', WORKERS: 'on', WORKER_IDLE_POLL_MS: '20',
  }, { upstream: new SandboxUpstream({ comebackSeconds: 20 }), channels: { sms, push } })
  t.teardown(() => app.close())
  const auth = await bearer()
  // Each with its own Idempotency-Key: the shard is a hash of the key, so a few numbers reach every master.
  const notify = (to: string) => app.inject({
    method: 'POST', url: '/v1/notifications', headers: { authorization: auth, 'idempotency-key': randomUUID() }, payload: { to, message: both, push_token: 'tok' },
  })
  const status = (id: string) => app.inject({ url: `/v1/notifications/${id}`, headers: { authorization: auth } })
  const until = (id: string, wanted: string, timeoutMs = 10_000) => waitFor(async () => {
    const res = await status(id)
    return res.statusCode === 200 && res.json().status === wanted ? res.json() : undefined
  }, timeoutMs, `${id} to be ${wanted}`)
  const numbers = ['+990123400', '+990123411', '+447911123456', '+447911123457', '+447911123458', '+447911123459']

  t.equal((await app.inject({ url: '/readyz' })).statusCode, 200)
  const first = await notify('+990123411')
  t.equal(first.statusCode, 202)
  await until(first.json().id, 'sent')

  const victim = nodes[1]!
  await kill(victim)

  const ready = await waitFor(async () => {
    const started = Date.now()
    const res = await app.inject({ url: '/readyz' })
    return res.statusCode === 503 ? { res, ms: Date.now() - started } : undefined
  }, 2000, '/readyz to see the master gone')
  t.ok(ready.ms < 1500, `/readyz: 503 in ${ready.ms} ms while a master is gone`)
  t.match(ready.res.json(), { type: /store-unavailable$/ })

  // Past the node timeout: the cluster has marked the master failed; its slots stay unserved, the others are served.
  await sleep(3000)
  const answers: Record<string, number> = {}
  const accepted: string[] = []
  let slowest = 0
  for (let i = 0; i < 36; i++) {
    const started = Date.now()
    const res = await notify(numbers[i % numbers.length]!)
    slowest = Math.max(slowest, Date.now() - started)
    answers[res.statusCode] = (answers[res.statusCode] ?? 0) + 1
    if (res.statusCode === 202) accepted.push(res.json().id)
    else t.equal(res.statusCode, 503, 'a failure is a 503')
  }
  t.ok(slowest < 2000, `no request hangs: the slowest answered in ${slowest} ms`)
  t.ok((answers[503] ?? 0) > 0, `what lives on the dead master answers 503 (${JSON.stringify(answers)})`)
  t.ok(accepted.length > 0, 'what lives on the other masters is still accepted')
  // Those accepted live on masters that answer: the worker delivers them while the dead master's shards fail.
  const deliveringSince = Date.now()
  for (const id of accepted) await until(id, 'sent')
  t.pass(`the ${accepted.length} accepted during the outage were delivered (all within ${Date.now() - deliveringSince} ms of the last accept)`)

  nodes.push(startNode(ports[1]!, join(root, String(ports[1]))))
  const back = Date.now()
  await waitFor(async () => (await app.inject({ url: '/readyz' })).statusCode === 200 ? true : undefined, 15_000, '/readyz to be 200 again')
  t.comment(`ready again ${Date.now() - back} ms after the master was started again`)
  const after = await Promise.all(Array.from({ length: 24 }, (_, i) => notify(numbers[i % numbers.length]!)))
  t.same(after.map(r => r.statusCode), after.map(() => 202), 'every request is accepted again, on every master', { answers: after.filter(r => r.statusCode !== 202).map(r => r.body) })
  for (const res of after) await until(res.json().id, 'sent')
  t.equal(new Set(after.map(r => r.json().id.slice(4, 6))).size > 4, true, 'over many shards')
})
