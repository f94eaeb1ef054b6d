import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import t, { type Test } from 'tap'
import { CampaignRunner, recipientKey } from '../../src/campaigns/runner.js'
import { CampaignService, type RecipientLine } from '../../src/campaigns/service.js'
import { StoreUnavailableError } from '../../src/domain/errors.js'
import { idempotencyRef } from '../../src/notifications/ids.js'
import { NotificationService } from '../../src/notifications/service.js'
import { UpstreamRateLimiter } from '../../src/reachability/rate-limit.js'
import { ReachabilityService } from '../../src/reachability/service.js'
import { RefreshRunner, startRefresh } from '../../src/reports/refresh.js'
import type { Store } from '../../src/store/store.js'
import type { UpstreamCheckOptions } from '../../src/reachability/upstreams/upstream.js'
import { recordNotified } from '../helpers/notified.js'
import { redisAvailable } from '../helpers/redis.js'
import { openMemoryStore, openRedisStore } from '../helpers/store.js'
import { ScriptedUpstream } from '../helpers/upstream.js'
import { waitFor } from '../helpers/wait.js'

// Crash safety of the background runners, against both stores: a runner that dies holding a chunk of a
// campaign (or a batch of a fleet scan) loses it when its lease runs out, another runner finishes it, and
// each recipient still has exactly one notification and each number is counted once.

const SHARDS = 3
const haveRedis = await redisAvailable()

type OpenStore = () => Promise<{ store: Store, cleanup: () => Promise<void> }>

/** The store as a process sees it: between `die()` and `revive()` every call fails, as for a process that is gone. */
function mortal (store: Store): { store: Store, die: () => void, revive: () => void } {
  let dead = false
  const proxy = new Proxy(store, {
    get (target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown
      if (typeof value !== 'function') return value
      return (...args: unknown[]) => dead ? Promise.reject(new Error('this process is dead')) : (value as (...a: unknown[]) => unknown).apply(target, args)
    },
  })
  return { store: proxy, die: () => { dead = true }, revive: () => { dead = false } }
}

async function services (store: Store, upstream = new ScriptedUpstream()) {
  const reachability = new ReachabilityService({
    store, upstream, policy: { reachableSeconds: 60, unreachableSeconds: 60, invalidSeconds: 60 }, maxStaleSeconds: 60, deadlineMs: 2000,
  })
  const notifications = new NotificationService({ store, reachability, retentionSeconds: 3600, idempotencyTtlSeconds: 3600, firstRecheckSeconds: 3600 })
  return { upstream, reachability, notifications, limiter: new UpstreamRateLimiter(store, 100_000, 'upstream', 1000) }
}

/** The campaign once it is completed. */
function completed (store: Store, id: string) {
  return waitFor(async () => {
    const c = await store.getCampaign(id)
    return c?.status === 'completed' ? c : undefined
  }, 10_000, 'the campaign to complete')
}

/**
 * A fleet scan of eight numbers (+4479112<from…from+7>) and a maker of its runners: a batch of eight, a budget of
 * `rps` lookups a second, a lease far longer than any test (a batch given back must not be left to run out), and
 * a stop grace of `stopGraceMs`.
 */
async function scanOfEight (t: Test, open: OpenStore, from: number) {
  const { store, cleanup } = await open()
  t.teardown(cleanup)
  const { upstream, reachability } = await services(store)
  const job = await startRefresh(store, 'svc', Array.from({ length: 8 }, (_, i) => `+4479112${String(from + i).padStart(5, '0')}`))
  const runner = (rps: number, stopGraceMs: number) => new RefreshRunner({
    store, reachability, limiter: new UpstreamRateLimiter(store, rps, `upstream-${randomUUID()}`, Math.max(1, Math.floor(rps / 100))),
    concurrency: 8, pollMs: 10, leaseMs: 60_000, stopGraceMs,
  })
  return { store, upstream, job, runner }
}

/** At teardown: the calls a dead runner left hanging let go, the runners stopped, the store cleaned up. */
function stopRunners (t: Test, hung: (() => void)[], runners: CampaignRunner[], cleanup: () => Promise<void>): void {
  t.teardown(async () => {
    for (const resume of hung.splice(0)) resume()
    await Promise.all(runners.map(r => r.stop()))
    await cleanup()
  })
}

/** Answers a number ending in an even digit not reachable (its recipient is dropped at acceptance), any other reachable. */
class HalfReachable extends ScriptedUpstream {
  override async check (phoneNumber: string, options?: UpstreamCheckOptions) {
    const answer = await super.check(phoneNumber, options)
    return Number(phoneNumber.at(-1)) % 2 === 0 ? { ...answer, is_reachable: false, connectivity: [] } : answer
  }
}

/**
 * A campaign of `size` SMS recipients (+4479116<from…>) taken as one chunk, two at a time, each lookup taking 100 ms:
 * half not reachable, dropped at acceptance (final then, counted with their chunk), half sent. `notified` holds every
 * notification id each number was answered with (a replay answers the first), `accepts` how often each was accepted,
 * `processed` what each runner counted. Runners made by `runner` have a lease far longer than any test (a chunk
 * taken again promptly was given back, not left to run out) and are stopped at teardown.
 */
async function oneChunkCampaign (t: Test, open: OpenStore, from: number, size: number) {
  const { store, cleanup } = await open()
  const upstream = new HalfReachable()
  upstream.delayMs = 100
  const { reachability, notifications, limiter } = await services(store, upstream)
  const notified = recordNotified(notifications)
  const accepts = new Map<string, number>()
  const accept = notifications.accept.bind(notifications)
  notifications.accept = async (...args) => {
    accepts.set(args[1].to, (accepts.get(args[1].to) ?? 0) + 1)
    return accept(...args)
  }
  const campaigns = new CampaignService({ store, retentionSeconds: 3600, idempotencyTtlSeconds: 3600 })
  const lines: RecipientLine[] = Array.from({ length: size }, (_, i) => ({ line: i + 2, recipient: { to: `+4479116${String(from + i).padStart(5, '0')}` } }))
  const { answer } = await campaigns.create('svc', { name: 'stopped', message: { sms: { text: 'hi' } }, routing: { prefer: 'sms', channels: ['sms'], on_unreachable: 'drop', on_unknown: 'sms', ttl_seconds: 3600 } }, lines)
  const runners: CampaignRunner[] = []
  const processed: number[] = []
  const runner = (stopGraceMs: number) => {
    const i = runners.length
    processed[i] = 0
    const r = new CampaignRunner({
      store, notifications, reachability, limiter, concurrency: 2, chunkSize: size, pollMs: 10, leaseMs: 60_000, stopGraceMs, onProcessed: n => { processed[i]! += n },
    })
    runners.push(r)
    return r
  }
  stopRunners(t, [], runners, cleanup)
  const sentJobs = async () => {
    let n = 0
    for (let shard = 0; shard < SHARDS; shard++) n += (await store.outboxDepth(shard)).sms_bulk
    return n
  }
  return { store, upstream, id: answer.id, notified, accepts, processed, runner, sentJobs }
}

function suite (name: string, open: OpenStore, skip: string | false = false) {
  t.test(name, { skip }, async t => {
    t.test('a runner that dies mid-chunk: another finishes the campaign, each recipient notified exactly once', async t => {
      const { store, cleanup } = await open()
      const { reachability, notifications, limiter } = await services(store)
      const campaigns = new CampaignService({ store, retentionSeconds: 3600, idempotencyTtlSeconds: 3600 })
      const lines: RecipientLine[] = Array.from({ length: 50 }, (_, i) => ({ line: i + 2, recipient: { to: `+4479111${String(i).padStart(5, '0')}`, push_token: `tok-${i}` } }))
      const { answer } = await campaigns.create('svc', { name: 'crash', message: { sms: { text: 'hi' }, push: { title: 'hi', body: 'hi' } }, routing: { prefer: 'push', channels: ['push', 'sms'], on_unreachable: 'drop', on_unknown: 'sms', ttl_seconds: 3600 } }, lines)
      const id = answer.id

      // Every notification id each number was answered with, by either runner (a replay answers the first one).
      const ids = new Map<string, Set<string>>()
      const recording = (accept: NotificationService['accept']): NotificationService => ({
        accept: async (...args: Parameters<NotificationService['accept']>) => {
          const result = await accept(...args)
          const set = ids.get(args[1].to) ?? new Set()
          ids.set(args[1].to, set.add(result.answer.id))
          return result
        },
      }) as unknown as NotificationService

      // Runner A makes 7 notifications of its first chunk, then its process dies: its calls hang, its store is gone.
      const a = mortal(store)
      const hung: (() => void)[] = []
      let made = 0
      let revived = false
      const aNotifications = recording(async (...args) => {
        if (made++ < 7 || revived) return notifications.accept(...args)
        a.die()
        await new Promise<void>(resolve => hung.push(resolve))
        return notifications.accept(...args)
      })
      const runnerA = new CampaignRunner({ store: a.store, notifications: aNotifications, reachability, limiter, concurrency: 4, chunkSize: 20, pollMs: 10, leaseMs: 300 })
      runnerA.start()
      await waitFor(() => hung.length > 0 ? true : undefined, 5000, 'runner A to die')

      // B keeps the records of the chunks it counts for a minute only: long enough for A, which wakes up within it.
      const runnerB = new CampaignRunner({
        store, notifications: recording(notifications.accept.bind(notifications)), reachability, limiter, concurrency: 4, chunkSize: 20, pollMs: 10, leaseMs: 300, countedKeysTtlSeconds: 60,
      })
      runnerB.start()
      stopRunners(t, hung, [runnerA, runnerB], cleanup)
      const done = await completed(store, id)

      t.match(done.counters, { recipients_accepted: 50, processed: 50 })
      t.equal((done.counters['channel:push'] ?? 0) + (done.counters['channel:sms'] ?? 0), 50, 'one channel counted per recipient')
      t.equal((done.counters['lookups:cache'] ?? 0) + (done.counters['lookups:upstream'] ?? 0), 50, 'one lookup counted per recipient')
      t.equal(ids.size, 50, 'every recipient notified')
      t.same([...ids].filter(([, set]) => set.size !== 1).map(([to]) => to), [], 'no recipient has a second notification')
      const jobs = async () => {
        let n = 0
        for (let shard = 0; shard < SHARDS; shard++) {
          const depth = await store.outboxDepth(shard)
          n += depth.push_bulk + depth.sms_bulk
        }
        return n
      }
      t.equal(await jobs(), 50, 'exactly 50 jobs in the bulk lanes: one notification each')

      // Runner A comes back to life: its calls go through (answering the notifications made), its counts are refused.
      a.revive()
      revived = true
      for (const resume of hung.splice(0)) resume()
      await runnerA.stop()
      t.equal(await jobs(), 50, 'still 50 jobs')
      t.match((await store.getCampaign(id))?.counters, { processed: 50 }, 'nothing counted twice')
      t.same([...ids].filter(([, set]) => set.size !== 1).map(([to]) => to), [])
    })

    t.test('a runner that dies mid-accept holds that recipient only for the claim time: another finishes the campaign soon after', async t => {
      const { store, cleanup } = await open()
      const { reachability, notifications, limiter } = await services(store)
      const campaigns = new CampaignService({ store, retentionSeconds: 3600, idempotencyTtlSeconds: 3600 })
      const lines: RecipientLine[] = Array.from({ length: 20 }, (_, i) => ({ line: i + 2, recipient: { to: `+4479112${String(i).padStart(5, '0')}` } }))
      const { answer } = await campaigns.create('svc', { name: 'claim', message: { sms: { text: 'hi' } }, routing: { prefer: 'sms', channels: ['sms'], on_unreachable: 'sms', on_unknown: 'sms', ttl_seconds: 3600 } }, lines)

      // Runner A's process dies inside its 5th accept: the recipient's Idempotency-Key is claimed, nothing stored.
      const a = mortal(store)
      const hung: (() => void)[] = []
      let accepts = 0
      const aStore = new Proxy(a.store, {
        get (target, prop, receiver) {
          if (prop !== 'acceptNotification') return Reflect.get(target, prop, receiver) as unknown
          return async (...args: Parameters<Store['acceptNotification']>) => {
            if (++accepts < 5) return target.acceptNotification(...args)
            a.die()
            await new Promise<void>(resolve => hung.push(resolve))
            throw new Error('this process is dead')
          }
        },
      })
      const aNotifications = new NotificationService({ store: aStore, reachability, retentionSeconds: 3600, idempotencyTtlSeconds: 3600, firstRecheckSeconds: 3600 })
      const runnerA = new CampaignRunner({ store: a.store, notifications: aNotifications, reachability, limiter, concurrency: 1, chunkSize: 20, pollMs: 10, leaseMs: 300, claimSeconds: 2 })
      runnerA.start()
      await waitFor(() => hung.length > 0 ? true : undefined, 5000, 'runner A to die mid-accept')

      const runnerB = new CampaignRunner({ store, notifications, reachability, limiter, concurrency: 4, chunkSize: 20, pollMs: 10, leaseMs: 300, claimSeconds: 2 })
      const startedAt = Date.now()
      runnerB.start()
      stopRunners(t, hung, [runnerA, runnerB], cleanup)
      const done = await completed(store, answer.id)
      const tookMs = Date.now() - startedAt
      t.ok(tookMs < 6000, `completed ${tookMs} ms after runner B started: the dead runner's claim ran out after its 2 s (the default claim of a request is 30 s)`)
      t.match(done.counters, { recipients_accepted: 20, processed: 20, 'channel:sms': 20 })
    })

    t.test('a runner stopped mid-chunk goes on for its grace, then starts no more recipients and gives the chunk back: another runner completes it at once, each recipient notified and counted once', async t => {
      // 40 recipients, two at a time, 100 ms a lookup: about 2 s, far past the grace of 500 ms.
      const { store, upstream, id, notified, accepts, processed, runner, sentJobs } = await oneChunkCampaign(t, open, 0, 40)
      const a = runner(500)
      a.start()
      await waitFor(() => notified.size >= 2 ? true : undefined, 5000, 'the first notifications')

      const stoppingAt = Date.now()
      const notifiedAtStopCall = notified.size
      await a.stop()
      const tookMs = Date.now() - stoppingAt
      t.ok(tookMs >= 450 && tookMs < 2000, `stopped ${tookMs} ms after stop(): its grace of 500 ms, then the recipients under way ended`)
      const byA = new Set(notified.keys())
      t.ok(byA.size > notifiedAtStopCall, `recipients went on being taken during the grace (${notifiedAtStopCall} notified at stop(), ${byA.size} once it returned)`)
      t.ok(byA.size < 40, `${byA.size} of 40 notified before the runner let go`)
      const lookupsAtStop = upstream.calls
      await sleep(300)
      t.equal(upstream.calls, lookupsAtStop, 'nothing runs once stop() has returned: no lookup since')
      t.equal(notified.size, byA.size, 'no recipient notified since')
      const left = await store.getCampaign(id)
      t.equal(left?.status, 'running', 'the campaign goes on')
      // Recipients are counted as they are handled, a few times a second: what the stopped runner counted stays.
      const countedByA = left?.counters.processed ?? 0
      t.ok(countedByA <= byA.size, `the stopped runner counted ${countedByA} of the ${byA.size} recipients it handled`)
      t.equal(processed[0], countedByA)
      t.equal((left?.counters['channel:sms'] ?? 0) + (left?.counters['channel:none'] ?? 0), countedByA, 'each with its notification')
      t.equal(left?.counters['status:dropped'] ?? 0, left?.counters['channel:none'] ?? 0, 'and those dropped at acceptance counted so')

      const takenAt = Date.now()
      runner(5000).start()
      const done = await completed(store, id)
      const takenMs = Date.now() - takenAt
      t.ok(takenMs < 10_000, `another runner completed the campaign ${takenMs} ms later: the chunk was taken at once, not after its lease of a minute`)
      t.match(done.counters, { recipients_accepted: 40, processed: 40, 'channel:sms': 20, 'channel:none': 20, 'status:dropped': 20 })
      t.equal(done.counters.recipients_failed, undefined, 'no recipient failed')
      t.equal((done.counters['lookups:cache'] ?? 0) + (done.counters['lookups:upstream'] ?? 0), 40, 'one lookup counted per recipient')
      t.same(processed, [countedByA, 40 - countedByA], 'each recipient counted once: the rest of the chunk by the runner that took it')
      t.equal(notified.size, 40, 'every recipient notified')
      t.same([...notified].filter(([, set]) => set.size !== 1).map(([to]) => to), [], 'no recipient has a second notification')
      // The recipients the stopped runner had accepted were accepted again by the other, and answered by their keys.
      t.same([...accepts].filter(([, n]) => n === 2).map(([to]) => to).sort(), [...byA].sort(), 'each recipient accepted before the stop was answered again from its key')
      t.same([...accepts.values()].filter(n => n > 2), [], 'none accepted more often')
      t.equal(await sentJobs(), 20, 'one SMS job per reachable recipient')
    })

    t.test('a runner stopped during a chunk that ends within its grace counts the chunk itself: each recipient looked up and accepted once', async t => {
      // 12 recipients, two at a time, 100 ms a lookup: about 0.6 s, well within the grace of 5 s.
      const { store, upstream, id, notified, accepts, processed, runner, sentJobs } = await oneChunkCampaign(t, open, 100, 12)
      const a = runner(5000)
      a.start()
      await waitFor(() => notified.size >= 2 ? true : undefined, 5000, 'the first notifications')
      const notifiedAtStopCall = notified.size
      const stoppingAt = Date.now()
      await a.stop()
      const tookMs = Date.now() - stoppingAt
      t.ok(tookMs < 4000, `stopped ${tookMs} ms after stop(), once its chunk was done (not after the grace)`)
      t.ok(notifiedAtStopCall < 12, `${notifiedAtStopCall} of 12 notified at stop(): the rest were taken during the grace`)
      const done = await store.getCampaign(id)
      t.equal(done?.status, 'completed', 'the runner completed the campaign before it stopped')
      t.match(done?.counters, { processed: 12, 'channel:sms': 6, 'channel:none': 6, 'status:dropped': 6 })
      t.same(processed, [12])
      t.equal(upstream.calls, 12, 'each number looked up once')
      t.same([...accepts.values()].filter(n => n !== 1), [], 'each recipient accepted once')
      t.equal(notified.size, 12)
      t.equal(await sentJobs(), 6)
    })

    t.test('recipients waiting for the upstream budget, many at once, raise no MaxListenersExceededWarning', async t => {
      const { store, cleanup } = await open()
      const { reachability, notifications } = await services(store)
      // 20 lookups a second for 30 recipients under way at once: most wait for a token, each listening to the
      // runner's stop signal. Node warns of a possible leak past 10 listeners on one signal: this many is expected.
      const limiter = new UpstreamRateLimiter(store, 20)
      const warnings: Error[] = []
      const onWarning = (warning: Error) => { warnings.push(warning) }
      process.on('warning', onWarning)
      t.teardown(() => { process.off('warning', onWarning) })
      const campaigns = new CampaignService({ store, retentionSeconds: 3600, idempotencyTtlSeconds: 3600 })
      const lines: RecipientLine[] = Array.from({ length: 30 }, (_, i) => ({ line: i + 2, recipient: { to: `+4479115${String(i).padStart(5, '0')}` } }))
      const { answer } = await campaigns.create('svc', { name: 'budget', message: { sms: { text: 'hi' } }, routing: { prefer: 'sms', channels: ['sms'], on_unreachable: 'sms', on_unknown: 'sms', ttl_seconds: 3600 } }, lines)
      const runner = new CampaignRunner({ store, notifications, reachability, limiter, concurrency: 30, chunkSize: 30, pollMs: 10, leaseMs: 60_000 })
      stopRunners(t, [], [runner], cleanup)
      runner.start()
      const done = await completed(store, answer.id)
      t.match(done.counters, { processed: 30 })
      // Warnings are emitted on the next tick.
      await sleep(10)
      t.same(warnings.filter(w => w.name === 'MaxListenersExceededWarning').map(w => w.message), [], 'no listener warning')
    })

    t.test('a chunk whose runner died is taken again after a pause longer than IDEMPOTENCY_TTL_SECONDS: no recipient notified twice', async t => {
      const { store, cleanup } = await open()
      const { reachability, limiter } = await services(store)
      // Single notifications' records last a second here; the campaign is kept an hour.
      const notifications = new NotificationService({ store, reachability, retentionSeconds: 3600, idempotencyTtlSeconds: 1, firstRecheckSeconds: 3600 })
      const campaigns = new CampaignService({ store, retentionSeconds: 3600, idempotencyTtlSeconds: 3600 })
      const lines: RecipientLine[] = Array.from({ length: 20 }, (_, i) => ({ line: i + 2, recipient: { to: `+4479113${String(i).padStart(5, '0')}` } }))
      const { answer } = await campaigns.create('svc', { name: 'paused a day', message: { sms: { text: 'hi' } }, routing: { prefer: 'sms', channels: ['push', 'sms'], on_unreachable: 'drop', on_unknown: 'sms', ttl_seconds: 3600 } }, lines)

      // Every notification id each number was answered with (a replay answers the first one).
      const ids = new Map<string, Set<string>>()
      const record = async (...args: Parameters<NotificationService['accept']>) => {
        const result = await notifications.accept(...args)
        ids.set(args[1].to, (ids.get(args[1].to) ?? new Set()).add(result.answer.id))
        return result
      }
      // Runner A notifies 5 recipients of its chunk, then its process dies: its calls hang, its store is gone.
      const a = mortal(store)
      const hung: (() => void)[] = []
      let made = 0
      let revived = false
      const aNotifications = {
        accept: async (...args: Parameters<NotificationService['accept']>) => {
          if (made++ >= 5 && !revived) {
            a.die()
            await new Promise<void>(resolve => hung.push(resolve))
          }
          return record(...args)
        },
      } as unknown as NotificationService
      const runnerA = new CampaignRunner({ store: a.store, notifications: aNotifications, reachability, limiter, concurrency: 1, chunkSize: 20, pollMs: 10, leaseMs: 300, retentionSeconds: 3600 })
      const runnerB = new CampaignRunner({
        store, notifications: { accept: record } as unknown as NotificationService, reachability, limiter, concurrency: 4, chunkSize: 20, pollMs: 10, leaseMs: 300, retentionSeconds: 3600,
      })
      t.teardown(async () => {
        a.revive()
        revived = true
        for (const resume of hung.splice(0)) resume()
        await Promise.all([runnerA.stop(), runnerB.stop()])
        await cleanup()
      })
      runnerA.start()
      await waitFor(() => hung.length > 0 ? true : undefined, 5000, 'runner A to die')
      t.equal(ids.size, 5)

      // Paused, and resumed after the single notifications' records would have gone.
      await campaigns.pause(answer.id)
      await sleep(1500)
      await campaigns.resume(answer.id)
      runnerB.start()
      const done = await completed(store, answer.id)
      t.match(done.counters, { processed: 20 })
      t.equal(ids.size, 20, 'every recipient notified')
      t.same([...ids].filter(([, set]) => set.size !== 1).map(([to]) => to), [], 'no recipient has a second notification')
      let jobs = 0
      for (let shard = 0; shard < SHARDS; shard++) jobs += (await store.outboxDepth(shard)).sms_bulk
      t.equal(jobs, 20, 'one SMS job per recipient')
    })

    t.test('a recipient tried again after the store failed is looked up once, and its lookup counted once', async t => {
      const { store, cleanup } = await open()
      const { upstream, reachability, notifications, limiter } = await services(store)
      const campaigns = new CampaignService({ store, retentionSeconds: 3600, idempotencyTtlSeconds: 3600 })
      const lines: RecipientLine[] = Array.from({ length: 10 }, (_, i) => ({ line: i + 2, recipient: { to: `+4479114${String(i).padStart(5, '0')}` } }))
      const { answer } = await campaigns.create('svc', { name: 'tried again', message: { sms: { text: 'hi' } }, routing: { prefer: 'sms', channels: ['push', 'sms'], on_unreachable: 'drop', on_unknown: 'sms', ttl_seconds: 3600 } }, lines)
      // Each recipient's first accept finds the store away (a Redis restarting); the next try goes through.
      const tried = new Set<string>()
      const flaky = {
        accept: async (...args: Parameters<NotificationService['accept']>) => {
          if (!tried.has(args[1].to)) {
            tried.add(args[1].to)
            throw new StoreUnavailableError('the store did not answer (test)')
          }
          return notifications.accept(...args)
        },
      } as unknown as NotificationService
      const runner = new CampaignRunner({ store, notifications: flaky, reachability, limiter, concurrency: 4, chunkSize: 5, pollMs: 10, leaseMs: 5000 })
      runner.start()
      t.teardown(async () => {
        await runner.stop()
        await cleanup()
      })
      const done = await waitFor(async () => {
        const c = await campaigns.get(answer.id)
        return c.status === 'completed' ? c : undefined
      }, 10_000, 'the campaign to complete')
      t.match(done, { recipients: { processed: 10, failed: 0 }, notifications: { created: 10 } })
      t.same(done.lookups, { cache: 0, upstream: 10 }, 'one lookup per recipient, the one its notification was routed on')
      t.equal(upstream.calls, 10, 'and no second upstream call')
    })

    t.test('once a chunk is counted, its recipients\' idempotency records are kept for countedKeysTtlSeconds only', async t => {
      const { store, cleanup } = await open()
      t.teardown(cleanup)
      const { reachability, notifications, limiter } = await services(store)
      const campaigns = new CampaignService({ store, retentionSeconds: 3600, idempotencyTtlSeconds: 3600 })
      const lines: RecipientLine[] = Array.from({ length: 25 }, (_, i) => ({ line: i + 2, recipient: { to: `+4479222${String(i).padStart(5, '0')}` } }))
      const { answer } = await campaigns.create('svc', { name: 'short keys', message: { sms: { text: 'hi' } }, routing: { prefer: 'push', channels: ['push', 'sms'], on_unreachable: 'drop', on_unknown: 'sms', ttl_seconds: 3600 } }, lines)
      const runner = new CampaignRunner({ store, notifications, reachability, limiter, concurrency: 4, chunkSize: 10, pollMs: 10, leaseMs: 2000, countedKeysTtlSeconds: 1 })
      runner.start()
      t.teardown(() => runner.stop())
      await waitFor(async () => (await store.getCampaign(answer.id))?.status === 'completed' ? true : undefined, 10_000, 'the campaign to complete')
      const refs = lines.map((_, i) => idempotencyRef(`svc\u0000${recipientKey(answer.id, i)}`, store.shards))
      t.equal((await store.claimIdempotency(refs[0]!, 'probe', 30)).state, 'done', 'right after, a recipient\'s record is still there')
      await sleep(1200)
      const states = await Promise.all(refs.slice(1).map(async ref => (await store.claimIdempotency(ref, 'probe', 30)).state))
      t.same(states.filter(s => s !== 'claimed'), [], 'a second later every record is gone (a claim finds the key free)')
    })

    t.test('a fleet-scan runner stopped during a batch that ends within its grace counts it: each number checked once', async t => {
      const { store, upstream, job, runner: scan } = await scanOfEight(t, open, 200)
      const runner = scan(20, 5000)
      runner.start()
      await sleep(100)
      await runner.stop()
      t.match(await store.getRefreshJob(job.id), { done: 8, failed: 0 }, 'the batch finished and was counted')
      t.equal(upstream.calls, 8, 'each number checked once')
    })

    t.test('a fleet-scan runner stopped while its batch waits for the upstream budget lets go after its grace, giving the batch back uncounted for another', async t => {
      const { store, job, runner: scan } = await scanOfEight(t, open, 100)
      // One lookup a second: most of a batch of 8 waits for its token.
      const runner = scan(1, 200)
      runner.start()
      await sleep(300)
      const stoppedAt = Date.now()
      await runner.stop()
      t.ok(Date.now() - stoppedAt < 1500, `stopped in ${Date.now() - stoppedAt} ms (a grace of 200 ms), not after the 7 s its batch would take`)
      t.match(await store.getRefreshJob(job.id), { done: 0, failed: 0, status: 'running' }, 'nothing counted: no number is failed for a stop')

      const next = scan(100_000, 5000)
      next.start()
      t.teardown(() => next.stop())
      const done = await waitFor(async () => {
        const j = await store.getRefreshJob(job.id)
        return j?.status === 'completed' ? j : undefined
      }, 5000, 'another runner to finish the job at once (its lease would last a minute)')
      t.match(done, { total: 8, done: 8, failed: 0 })
    })

    t.test('a fleet-scan batch taken by a runner that died is checked by another; the job completes, each number counted once', async t => {
      const { store, cleanup } = await open()
      const { upstream, reachability, limiter } = await services(store)
      const numbers = Array.from({ length: 10 }, (_, i) => `+4479112${String(i).padStart(5, '0')}`)
      const job = await startRefresh(store, 'svc', numbers)
      const now = Date.now()
      // A process claims a batch and dies before checking it.
      t.ok(await store.claimRefreshNumbers(job.id, 4, now, now + 300))
      const runner = new RefreshRunner({ store, reachability, limiter, concurrency: 4, pollMs: 10, leaseMs: 300 })
      runner.start()
      t.teardown(async () => {
        await runner.stop()
        await cleanup()
      })
      const done = await waitFor(async () => {
        const j = await store.getRefreshJob(job.id)
        return j?.status === 'completed' ? j : undefined
      }, 10_000, 'the fleet scan to complete')
      t.match(done, { total: 10, done: 10, failed: 0 })
      t.equal(upstream.calls, 10, 'each number checked once (the dead runner checked none)')
    })
  })
}

// The two stores' suites run side by side: each spends most of its time waiting for runners, leases and claims.
t.jobs = 2

suite('memory store', () => openMemoryStore(SHARDS))

suite('redis store', () => openRedisStore(SHARDS), !haveRedis && 'Redis is not running (CI=true makes this a failure)')

