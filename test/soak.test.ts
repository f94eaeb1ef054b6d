import { execFileSync, spawn } from 'node:child_process'
import t from 'tap'
import { built, DIST, ROOT } from './helpers/build.js'
import { withoutTapLoaders } from './helpers/spawn.js'

// The short soak: `node bench/soak.mjs` for 20 s (its own redis-server, the built API and two workers, fake
// upstream and providers, every fault once). Nothing accepted may be lost and nothing delivered twice, apart
// from jobs a worker held at its SIGKILL; and each fault must really have been injected.

function haveRedisServer (): boolean {
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' })
    return true
  } catch {
    if (process.env.CI === 'true') throw new Error('CI=true and redis-server is not installed: the soak runs a redis-server of its own')
    return false
  }
}

interface SoakResult {
  error?: string
  ok: boolean
  requests: number
  accepted: number
  lost: string[]
  duplicates: string[]
  problems: string[]
  duplicates_excused: number
  delivered: { push: number, sms: number, ids: number }
  faults: { worker_sigkill: number, redis_restarts: number, api_sigterm: number, api_exit_code: number | null }
  upstream: { served503: number, timedOut: number }
  sms_provider: { served429: number, served500: number }
  campaign?: { recipients: number, notifications: number, missing: number }
}

t.test('20 s of mixed load under faults: nothing lost, nothing doubled', { skip: !haveRedisServer() && 'redis-server is not installed (CI=true makes this a failure)' }, async t => {
  // The build in dist/ that npm test makes before the test files run (its pretest script).
  built('src/server.js')
  const child = spawn(...withoutTapLoaders(process.execPath, ['bench/soak.mjs', '--duration', '20', '--drain-seconds', '40', '--out-dir', DIST, '--prebuilt']), {
    cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString() })
  child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString() })
  const timer = setTimeout(() => child.kill('SIGINT'), 110_000)
  const code = await new Promise<number | null>(resolve => child.once('exit', resolve))
  clearTimeout(timer)

  const line = stdout.split('\n').find(l => l.startsWith('SOAK_RESULT '))
  if (!line) {
    t.fail(`the soak printed no result (exit ${code})`, { stderr: stderr.slice(-3000) })
    return
  }
  const r = JSON.parse(line.slice('SOAK_RESULT '.length)) as SoakResult
  t.comment(stdout.slice(0, stdout.indexOf('SOAK_RESULT')).trim())
  t.notOk(r.error, 'the harness ran to its end')
  t.ok(r.accepted > 100, `${r.accepted} of ${r.requests} requests accepted`)
  t.ok(r.delivered.ids > 100, `${r.delivered.ids} notifications delivered`)
  t.same(r.lost, [], 'nothing accepted is lost')
  t.same(r.duplicates, [], 'nothing delivered twice, apart from jobs held at the SIGKILL')
  t.same(r.problems, [], 'no delivery of an unknown id, no idempotent retry that created something')
  t.ok(r.campaign && r.campaign.recipients > 0 && r.campaign.missing === 0, 'every campaign recipient became a notification')
  t.equal(r.faults.worker_sigkill, 1, 'a worker was SIGKILLed')
  t.ok(r.upstream.served503 > 0, `the upstream answered 503 ${r.upstream.served503} times`)
  t.ok(r.upstream.timedOut > 0, `the upstream left ${r.upstream.timedOut} calls unanswered`)
  t.ok(r.sms_provider.served429 > 0, `the SMS provider answered 429 ${r.sms_provider.served429} times`)
  t.ok(r.sms_provider.served500 > 0, `the SMS provider answered 500 ${r.sms_provider.served500} times`)
  t.equal(r.faults.redis_restarts, 1, 'Redis was killed and started again')
  t.equal(r.faults.api_sigterm, 1, 'the API got SIGTERM')
  t.equal(r.faults.api_exit_code, 0, 'and exited 0')
  t.equal(code, 0, 'the soak exits 0')
})
