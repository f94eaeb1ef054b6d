import t, { type Test } from 'tap'
import type { DeliveryOutcome, PushChannel, PushMessage, SmsChannel, SmsMessage } from '../../src/channels/channel.js'
import { CallbackSender } from '../../src/notifications/callbacks.js'
import { applyReceipt, NotificationService } from '../../src/notifications/service.js'
import type { Notification, NotificationRequest } from '../../src/notifications/types.js'
import { DeliveryWorker } from '../../src/queue/delivery-worker.js'
import { FallbackScheduler } from '../../src/queue/fallback-scheduler.js'
import { QueueOps } from '../../src/queue/ops.js'
import { ReachabilityService } from '../../src/reachability/service.js'
import { SandboxUpstream } from '../../src/reachability/upstreams/sandbox.js'
import { UpstreamFailure, type UpstreamCheckOptions } from '../../src/reachability/upstreams/upstream.js'
import { MemoryStore } from '../../src/store/memory/memory-store.js'
import { RedisStore } from '../../src/store/redis/redis-store.js'
import type { Store } from '../../src/store/store.js'
import { dropPrefix, REDIS_URL, redisAvailable, uniquePrefix } from '../helpers/redis.js'
import { ScriptedUpstream } from '../helpers/upstream.js'
import { waitFor } from '../helpers/wait.js'

// The fallback queue against both stores: a device that comes back gets its message once, on the
// right channel; expiry; on_expiry sms; a failing upstream never drops an entry; schedulers share
// the work under leases, and a dead scheduler's entries are taken over.

const SHARDS = 4
const haveRedis = await redisAvailable()

/** A scripted upstream whose checks wait, while `held`, until the test lets them go. */
class HeldUpstream extends ScriptedUpstream {
  held = false
  /** Checks asked for, held or not. */
  asked = 0
  private readonly waiting: (() => void)[] = []

  override async check (phoneNumber: string, options?: UpstreamCheckOptions) {
    this.asked++
    if (this.held) await new Promise<void>(resolve => this.waiting.push(resolve))
    return super.check(phoneNumber, options)
  }

  get waitingChecks (): number { return this.waiting.length }
  letGo (): void { for (const go of this.waiting.splice(0)) go() }
}

/** Records every send, per notification. */
class RecordingChannel implements SmsChannel, PushChannel {
  readonly sent: string[] = []
  constructor (readonly provider: string) {}
  async sendSms (m: SmsMessage): Promise<DeliveryOutcome> { return this.take(m.notificationId) }
  async sendPush (m: PushMessage): Promise<DeliveryOutcome> { return this.take(m.notificationId) }
  private take (id: string): DeliveryOutcome {
    this.sent.push(id)
    return { kind: 'sent', provider: this.provider, providerMessageId: `m-${id}` }
  }

  count (id: string): number { return this.sent.filter(s => s === id).length }
  async close (): Promise<void> {}
}

type Kind = 'memory' | 'redis'

async function openStore (t: Test, kind: Kind): Promise<() => Promise<Store>> {
  if (kind === 'memory') {
    const store = new MemoryStore({ shards: SHARDS })
    t.teardown(() => store.close())
    return async () => store
  }
  const keyPrefix = uniquePrefix()
  const opened: RedisStore[] = []
  t.teardown(async () => {
    await Promise.all(opened.map(s => s.close()))
    await dropPrefix(keyPrefix)
  })
  // Each call is a connection of its own, as separate processes would have.
  return async () => {
    const store = await RedisStore.connect({ url: REDIS_URL, keyPrefix, commandTimeoutMs: 2000, shards: SHARDS })
    opened.push(store)
    return store
  }
}

interface RigOptions {
  upstream?: ScriptedUpstream | SandboxUpstream
  firstCheckSeconds?: number
  leaseSeconds?: number
  isCampaignCancelled?: (campaignId: string) => Promise<boolean>
  onCampaignFinal?: (campaignId: string, status: string) => void
  /** Told of each notification that left the fallback queue. */
  onLeft?: (id: string) => void
}

async function rig (t: Test, connect: () => Promise<Store>, options: RigOptions = {}) {
  const store = await connect()
  const upstream = options.upstream ?? new SandboxUpstream({ comebackSeconds: 1 })
  const reachability = new ReachabilityService({
    store, upstream, policy: { reachableSeconds: 300, unreachableSeconds: 60, invalidSeconds: 86400 }, maxStaleSeconds: 0, deadlineMs: 1000,
  })
  const sms = new RecordingChannel('sms-fake')
  const push = new RecordingChannel('push-fake')
  const callbacks = new CallbackSender({ secret: undefined, timeoutMs: 500 })
  const worker = new DeliveryWorker({
    store, channels: { sms, push }, callbacks, concurrency: 16, idlePollMs: 20, visibilityTimeoutMs: 5000, maxAttempts: 3, retryBaseMs: 20, retryMaxMs: 100,
  })
  const scheduler = new FallbackScheduler({
    store, reachability, firstCheckSeconds: 0.2, backoffFactor: 2, maxIntervalSeconds: 0.4, recheckMaxAgeSeconds: 0,
    leaseSeconds: options.leaseSeconds ?? 5, concurrency: 32, pollMs: 30, onHandedOver: () => worker.poke(),
    ...(options.isCampaignCancelled ? { isCampaignCancelled: options.isCampaignCancelled } : {}),
    ...(options.onCampaignFinal ? { onCampaignFinal: options.onCampaignFinal } : {}),
    ...(options.onLeft ? { onLeft: async (n: Notification) => options.onLeft!(n.id) } : {}),
  })
  const notifications = new NotificationService({
    store, reachability, retentionSeconds: 3600, idempotencyTtlSeconds: 3600, firstRecheckSeconds: options.firstCheckSeconds ?? 0.2,
  })
  t.teardown(async () => {
    await Promise.all([worker.stop(), scheduler.stop()])
    await callbacks.close()
  })
  const request = (to: string, routing: Partial<NotificationRequest['routing']> = {}, message: NotificationRequest['message'] = { sms: { text: 'hi' }, push: { title: 't', body: 'b' } }): NotificationRequest => ({
    to,
    message,
    push_token: 'tok',
    routing: { prefer: 'push', channels: ['push', 'sms'], on_unreachable: 'queue', on_unknown: 'sms', ttl_seconds: 60, ...routing },
  })
  const statusOf = async (id: string) => (await store.getNotification(id, Number(id.slice(4, 6))))!
  const until = (id: string, status: string, ms = 8000) => waitFor(async () => {
    const s = await statusOf(id)
    return s.notification.status === status ? s : undefined
  }, ms, `${id} to be ${status}`)
  return { store, worker, scheduler, notifications, sms, push, request, statusOf, until, upstream }
}

for (const kind of ['memory', 'redis'] as const) {
  t.test(`fallback queue on the ${kind} store`, { skip: kind === 'redis' && !haveRedis && 'Redis is not running' }, async t => {
    t.test('a device that comes back gets its message once, over push', async t => {
      const connect = await openStore(t, kind)
      const r = await rig(t, connect)
      const { answer } = await r.notifications.accept('svc', r.request('+990123444'))
      t.match(answer, { channel: 'fallback_queue', status: 'queued' })
      r.worker.start()
      r.scheduler.start()
      const done = await r.until(answer.id, 'sent')
      t.equal(done.notification.channel, 'push')
      t.match(done.notification.reason, /^the device came back/)
      t.equal(r.push.count(answer.id), 1)
      t.equal(r.sms.count(answer.id), 0)
      const types = done.events.map(e => e.type)
      t.ok(types.filter(x => x === 'recheck').length >= 2, 'at least one re-check found it away, one found it back')
      t.same(types.slice(-3), ['attempt', 'provider_answer', 'final'], 'then delivered like any notification')
      t.ok(types.indexOf('recheck') < types.indexOf('attempt'))
      const state = await new QueueOps(r.store).state()
      t.match(state, { waiting: 0, due: 0, leased: 0 })
      t.ok(state.wakeups_last_hour >= 1)
      t.ok(state.checks_last_hour >= 2)
    })

    t.test('a cancelled campaign\'s notification waiting here is dropped when due ("campaign cancelled"), not sent', async t => {
      const connect = await openStore(t, kind)
      const finals: [string, string][] = []
      const r = await rig(t, connect, {
        isCampaignCancelled: async id => id === 'cmp_cancelled',
        onCampaignFinal: (id, status) => finals.push([id, status]),
      })
      const accept = async (to: string, campaignId: string) =>
        (await r.notifications.accept('svc', r.request(to), undefined, { campaignId, bulk: true })).answer
      const cancelled = await accept('+990123444', 'cmp_cancelled')
      const live = await accept('+990123444', 'cmp_live')
      t.match([cancelled, live], [{ channel: 'fallback_queue' }, { channel: 'fallback_queue' }])
      r.worker.start()
      r.scheduler.start()
      const dropped = await r.until(cancelled.id, 'dropped')
      t.match(dropped.events.at(-1), { type: 'final', status: 'dropped', detail: 'dropped: campaign cancelled' })
      t.equal(dropped.events.filter(e => e.type === 'recheck').length, 0, 'no re-check spent on it')
      await r.until(live.id, 'sent')
      t.equal(r.push.count(cancelled.id) + r.sms.count(cancelled.id), 0, 'the cancelled one is never sent')
      t.same(finals, [['cmp_cancelled', 'dropped']], 'its final status is counted for the campaign')
      const state = await new QueueOps(r.store).state()
      t.match(state, { waiting: 0, due: 0, leased: 0, dead: 0 }, 'out of the queue, and not a dead letter')
    })

    t.test('a device that never comes back: expired at the ttl, on the dead-letter list', async t => {
      const connect = await openStore(t, kind)
      const r = await rig(t, connect)
      const { answer } = await r.notifications.accept('svc', r.request('+990123433', { ttl_seconds: 1 }))
      r.worker.start()
      r.scheduler.start()
      const done = await r.until(answer.id, 'expired', 5000)
      t.equal(r.push.sent.length + r.sms.sent.length, 0, 'nothing sent')
      t.match(done.events.at(-1), { type: 'final', status: 'expired' })
      t.equal(done.notification.reason, 'the device did not come back within the ttl of 1 s', 'the reason says why it ended')
      const recheck = done.events.filter(e => e.type === 'recheck')
      t.ok(recheck.every(e => Date.parse(e.at) <= Date.parse(done.notification.expires_at)), 'never checked after the expiry')
      const dead = await new QueueOps(r.store).listDead(undefined, 10)
      t.equal(dead.items.length, 1)
      t.match(dead.items[0], { id: answer.id, status: 'expired', to: '+990123433', reason: /did not come back/ })
      t.equal(dead.items[0]!.reachability?.is_reachable, false, 'with the last reachability seen')
    })

    t.test('on_expiry sms: at the ttl it goes out as SMS', async t => {
      const connect = await openStore(t, kind)
      const r = await rig(t, connect)
      const { answer } = await r.notifications.accept('svc', r.request('+990123433', { ttl_seconds: 1, on_expiry: 'sms' }))
      r.worker.start()
      r.scheduler.start()
      const done = await r.until(answer.id, 'sent', 5000)
      t.equal(done.notification.channel, 'sms')
      t.equal(r.sms.count(answer.id), 1)
    })

    t.test('a failing upstream keeps the entry and backs off; delivered once it answers', async t => {
      const connect = await openStore(t, kind)
      const upstream = new ScriptedUpstream()
      upstream.answer = { is_reachable: false, connectivity: [], latest_status_at: null, status: { code: 'OK', message: 'Success' } }
      const r = await rig(t, connect, { upstream })
      const { answer } = await r.notifications.accept('svc', r.request('+447911123456'))
      t.equal(answer.channel, 'fallback_queue')
      upstream.failWith = new UpstreamFailure('HTTP 503')
      r.worker.start()
      r.scheduler.start()
      await waitFor(async () => (await r.statusOf(answer.id)).events.filter(e => e.type === 'recheck').length >= 3 ? true : undefined, 5000, 'three re-checks')
      const waiting = await r.statusOf(answer.id)
      t.equal(waiting.notification.status, 'queued', 'still waiting, never dropped')
      // With the upstream down, a re-check sees either nothing or the cached "not reachable" as stale.
      const seen = waiting.events.filter(e => e.type === 'recheck')[0]!.reachability as { unavailable?: string, source?: string }
      t.ok(/503/.test(seen.unavailable ?? '') || seen.source === 'stale_cache', 'the re-check saw the upstream fail')
      const gaps = waiting.events.filter(e => e.type === 'recheck').map(e => Date.parse(e.at))
      t.ok(gaps[2]! - gaps[1]! >= 100, 'backs off between checks')
      upstream.failWith = undefined
      upstream.answer = { is_reachable: true, connectivity: ['SMS'], latest_status_at: null, status: { code: 'OK', message: 'Success' } }
      const done = await r.until(answer.id, 'sent')
      t.equal(done.notification.channel, 'sms')
      t.equal(r.sms.count(answer.id), 1)
    })

    t.test('back for DATA alone, SMS not reported: an SMS-only message goes out by SMS under on_unknown sms, waits under queue', async t => {
      const connect = await openStore(t, kind)
      const upstream = new ScriptedUpstream()
      upstream.answer = { is_reachable: false, connectivity: [], latest_status_at: null, status: { code: 'OK', message: 'Success' } }
      const r = await rig(t, connect, { upstream })
      const smsOnly = { sms: { text: 'hi' } }
      const policySms = (await r.notifications.accept('svc', r.request('+447911123460', { on_unknown: 'sms' }, smsOnly))).answer
      const policyQueue = (await r.notifications.accept('svc', r.request('+447911123461', { on_unknown: 'queue' }, smsOnly))).answer
      t.match([policySms, policyQueue], [{ channel: 'fallback_queue' }, { channel: 'fallback_queue' }])
      upstream.answer = { is_reachable: true, connectivity: ['DATA'], latest_status_at: null, status: { code: 'OK', message: 'Success' } }
      r.worker.start()
      r.scheduler.start()
      const sent = await r.until(policySms.id, 'sent')
      t.equal(sent.notification.channel, 'sms')
      t.equal(sent.notification.reason, 'the device came back: connected for DATA, SMS not reported, and SMS is the only channel this message can use; on_unknown is sms')
      t.equal(r.sms.count(policySms.id), 1)
      await waitFor(async () => (await r.statusOf(policyQueue.id)).events.filter(e => e.type === 'recheck').length >= 2 ? true : undefined, 5000, 'two re-checks')
      const waiting = await r.statusOf(policyQueue.id)
      t.equal(waiting.notification.status, 'queued', 'on_unknown queue: still waiting for an answer about SMS')
      t.match(waiting.events.filter(e => e.type === 'recheck').at(-1)!.detail, /SMS not reported.*on_unknown is queue/)
      t.equal(r.sms.count(policyQueue.id) + r.push.count(policyQueue.id), 0, 'nothing sent')
    })

    t.test('a scheduler that dies holding leases loses nothing: another takes the entries when the leases run out', async t => {
      const connect = await openStore(t, kind)
      const upstream = new ScriptedUpstream()
      const r = await rig(t, connect, { upstream, firstCheckSeconds: 0, leaseSeconds: 1 })
      upstream.answer = { is_reachable: false, connectivity: [], latest_status_at: null, status: { code: 'OK', message: 'Success' } }
      const ids: string[] = []
      for (let i = 0; i < 20; i++) ids.push((await r.notifications.accept('svc', r.request(`+44791112${String(3400 + i)}`))).answer.id)
      upstream.answer = { is_reachable: true, connectivity: ['DATA', 'SMS'], latest_status_at: null, status: { code: 'OK', message: 'Success' } }
      // The dying scheduler takes every due entry under a lease and is never heard from again.
      let held = 0
      for (let shard = 0; shard < SHARDS; shard++) held += (await r.store.takeDueFallback(shard, Date.now() + 10, Date.now() + 1000, 100)).length
      t.equal(held, 20)
      t.match(await new QueueOps(r.store).state(), { leased: 20 })
      r.worker.start()
      r.scheduler.start()
      for (const id of ids) await r.until(id, 'sent', 8000)
      t.ok(ids.every(id => r.push.count(id) === 1), 'each delivered exactly once')
    })

    t.test('a receipt that ends the notification while its re-check is under way stands: the re-check does not send it again', async t => {
      const connect = await openStore(t, kind)
      const upstream = new HeldUpstream()
      upstream.answer = { is_reachable: false, connectivity: [], latest_status_at: null, status: { code: 'OK', message: 'Success' } }
      const left: string[] = []
      const r = await rig(t, connect, { upstream, firstCheckSeconds: 3600, onLeft: id => left.push(id) })
      const { answer } = await r.notifications.accept('svc', r.request('+447911123999'))
      t.equal(answer.channel, 'fallback_queue')
      const shard = Number(answer.id.slice(4, 6))
      // As a dead letter retried by hand after an SMS attempt whose answer was lost: it waits here with an attempt made.
      t.ok(await r.store.transition({ notificationId: answer.id, shard, patch: { attempts: 1 }, events: [] }))
      t.equal(await r.store.wakeFallback(shard, [answer.id], Date.now()), 1)
      upstream.answer = { is_reachable: true, connectivity: ['DATA', 'SMS'], latest_status_at: null, status: { code: 'OK', message: 'Success' } }
      upstream.held = true
      r.worker.start()
      r.scheduler.start()
      await waitFor(() => upstream.waitingChecks > 0 ? true : undefined, 5000, 'the re-check to ask the upstream')
      // The provider's receipt for that earlier SMS comes while the re-check waits for its answer.
      t.ok(await applyReceipt(r.store, { clientRef: answer.id, status: 'delivered', at: new Date().toISOString() }))
      upstream.letGo()
      await waitFor(async () => (await r.store.fallbackState(shard, Date.now())).leased === 0 ? true : undefined, 5000, 'the lease to end')
      await r.scheduler.drain()
      await new Promise(resolve => setTimeout(resolve, 200))
      const after = await r.statusOf(answer.id)
      t.equal(after.notification.status, 'delivered', 'the final status stands')
      t.equal(r.push.count(answer.id) + r.sms.count(answer.id), 0, 'not sent again')
      t.match(await r.store.fallbackState(shard, Date.now()), { waiting: 0, due: 0, leased: 0 }, 'and out of the queue')
      t.same(left, [answer.id], 'told as left: its number\'s subscriptions may end')
    })

    t.test('a scheduler told to stop takes no more entries: it finishes the re-checks in hand, the rest wait for another', async t => {
      const connect = await openStore(t, kind)
      const upstream = new HeldUpstream()
      upstream.answer = { is_reachable: false, connectivity: [], latest_status_at: null, status: { code: 'OK', message: 'Success' } }
      const r = await rig(t, connect, { upstream, firstCheckSeconds: 0 })
      const ids: string[] = []
      for (let i = 0; i < 12; i++) ids.push((await r.notifications.accept('svc', r.request(`+44791112${String(5500 + i)}`))).answer.id)
      t.ok(new Set(ids.map(id => id.slice(4, 6))).size > 1, 'the entries are in several shards')
      // One re-check at a time: the pass waits for its slot before it takes the next shard's entries.
      const scheduler = new FallbackScheduler({
        store: r.store,
        reachability: new ReachabilityService({ store: r.store, upstream, policy: { reachableSeconds: 300, unreachableSeconds: 60, invalidSeconds: 86400 }, maxStaleSeconds: 0, deadlineMs: 5000 }),
        firstCheckSeconds: 60, backoffFactor: 2, maxIntervalSeconds: 60, recheckMaxAgeSeconds: 0, leaseSeconds: 60, concurrency: 1, pollMs: 30,
      })
      const asked = upstream.asked
      upstream.held = true
      scheduler.start()
      await waitFor(() => upstream.waitingChecks > 0 ? true : undefined, 5000, 'the first re-check')
      let stopped = false
      const stopping = scheduler.stop().then(() => { stopped = true })
      while (!stopped) {
        upstream.letGo()
        await new Promise(resolve => setTimeout(resolve, 20))
      }
      await stopping
      t.equal(upstream.asked - asked, 1, 'only the re-check in hand was made')
      const states = await Promise.all(Array.from({ length: SHARDS }, (_, shard) => r.store.fallbackState(shard, Date.now())))
      t.equal(states.reduce((n, s) => n + s.leased, 0), 0, 'no entry left under a lease of the stopped scheduler')
      t.equal(states.reduce((n, s) => n + s.due, 0), 11, 'the others are still due, for another scheduler')
    })

    t.test('a completion under a lease that ran out and was taken by another changes nothing', async t => {
      const connect = await openStore(t, kind)
      const r = await rig(t, connect, { firstCheckSeconds: 0 })
      const { answer } = await r.notifications.accept('svc', r.request('+990123433'))
      const shard = Number(answer.id.slice(4, 6))
      const [first] = await r.store.takeDueFallback(shard, Date.now() + 10, Date.now() - 1, 10)
      t.equal(await r.store.expireFallbackLeases(shard, Date.now()), 1)
      const [second] = await r.store.takeDueFallback(shard, Date.now() + 10, Date.now() + 60_000, 10)
      t.equal(second!.notificationId, answer.id)
      const stale = await r.store.transition({ notificationId: answer.id, shard, patch: { status: 'failed' }, events: [], lease: first! })
      t.equal(stale, false)
      t.equal((await r.statusOf(answer.id)).notification.status, 'queued')
    })
  })
}

t.test('two schedulers and two workers against one Redis deliver 1,000 queued notifications exactly once', { skip: !haveRedis && 'Redis is not running' }, async t => {
  const connect = await openStore(t, 'redis')
  const upstream = new ScriptedUpstream()
  upstream.answer = { is_reachable: false, connectivity: [], latest_status_at: null, status: { code: 'OK', message: 'Success' } }
  const a = await rig(t, connect, { upstream, firstCheckSeconds: 0 })
  const b = await rig(t, connect, { upstream, firstCheckSeconds: 0 })
  const ids: string[] = []
  const accepts: Promise<void>[] = []
  for (let i = 0; i < 1000; i++) {
    accepts.push(a.notifications.accept('svc', a.request(`+4479111${String(10000 + i)}`)).then(({ answer }) => { ids.push(answer.id) }))
  }
  await Promise.all(accepts)
  t.equal(new Set(ids).size, 1000)
  upstream.answer = { is_reachable: true, connectivity: ['DATA', 'SMS'], latest_status_at: null, status: { code: 'OK', message: 'Success' } }
  for (const r of [a, b]) {
    r.worker.start()
    r.scheduler.start()
  }
  await waitFor(() => a.push.sent.length + b.push.sent.length >= 1000 ? true : undefined, 30_000, '1,000 deliveries')
  await new Promise(resolve => setTimeout(resolve, 300))
  const all = [...a.push.sent, ...b.push.sent, ...a.sms.sent, ...b.sms.sent]
  t.equal(all.length, 1000, 'no delivery twice')
  t.equal(new Set(all).size, 1000, 'every notification delivered')
  t.ok(a.push.sent.length > 0 && b.push.sent.length > 0, `the work was shared (${a.push.sent.length} / ${b.push.sent.length})`)
})
