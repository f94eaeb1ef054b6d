import { randomUUID } from 'node:crypto'
import t, { type Test } from 'tap'
import { SandboxPushChannel, SandboxSmsChannel } from '../../src/channels/sandbox.js'
import { startFakeCamara, unreachableV1 } from '../fakes/camara.js'
import { addSubscriptions } from '../fakes/camara-subscriptions.js'
import { buildTestApp } from '../helpers/app.js'
import { redisAvailable } from '../helpers/redis.js'
import { failingCalls, openMemoryStore, openRedisStore } from '../helpers/store.js'
import { waitFor } from '../helpers/wait.js'

// Faster than polling: a queued number is subscribed at the operator; its event wakes the notification.

const SINK_TOKEN = 'sink-token-for-the-camara-test'
const ACCESS = 'camara-access-token'
const PHONE = '+447911123456'
const haveRedis = await redisAvailable()
const TYPE = 'org.camaraproject.device-reachability-status-subscriptions.v0.'

async function setup (t: Test, kind: 'memory' | 'redis') {
  const camara = await startFakeCamara({ accessToken: ACCESS })
  const subs = addSubscriptions(camara)
  camara.script.always(PHONE, unreachableV1())
  const opened = kind === 'redis' ? await openRedisStore(2) : await openMemoryStore(2)
  const { store, fail } = failingCalls(opened.store)
  const sms = new SandboxSmsChannel({ log: () => {} })
  const push = new SandboxPushChannel({ log: () => {} })
  const { app, bearer } = await buildTestApp({
    REACHABILITY_PROVIDER: 'camara', CAMARA_BASE_URL: camara.reachabilityUrl, CAMARA_ACCESS_TOKEN: ACCESS,
    CAMARA_SUBSCRIPTIONS_URL: subs.url, CAMARA_SINK_TOKEN: SINK_TOKEN, PUBLIC_BASE_URL: 'https://reachroute.example.com',
    // Polling alone would take an hour: only the event can deliver within the test.
    FALLBACK_FIRST_CHECK_SECONDS: '3600', FALLBACK_POLL_MS: '30', WORKERS: 'on', WORKER_IDLE_POLL_MS: '20', QUEUE_SHARDS: '2',
  }, { channels: { sms, push }, store })
  t.teardown(async () => {
    await app.close()
    await camara.close()
    await opened.cleanup()
  })
  const auth = await bearer()
  // From the live subscription of the event's type (reachability events) or the first live one.
  const subscriptionOf = (type: string) => (subs.live().find(x => x.type === TYPE + type) ?? subs.live()[0])?.id ?? 'none'
  const event = (type: string, phoneNumber = PHONE, id: string = randomUUID()) => ({
    id, source: `${subs.url}/subscriptions/x`, type: TYPE + type, specversion: '1.0', datacontenttype: 'application/json',
    time: new Date().toISOString(), data: { device: { phoneNumber }, subscriptionId: subscriptionOf(type) },
  })
  const post = (body: unknown, token = SINK_TOKEN, contentType = 'application/cloudevents+json') => app.inject({
    method: 'POST', url: '/v1/webhooks/camara', payload: typeof body === 'string' ? body : JSON.stringify(body),
    headers: { 'content-type': contentType, authorization: `Bearer ${token}` },
  })
  const status = async (id: string) => (await app.inject({ url: `/v1/notifications/${id}`, headers: { authorization: auth } })).json()
  const notify = async (ttlSeconds?: number) => (await app.inject({
    method: 'POST', url: '/v1/notifications', headers: { authorization: auth },
    payload: { to: PHONE, message: { sms: { text: 'hi' }, push: { title: 't', body: 'b' } }, push_token: 'tok', ...(ttlSeconds ? { routing: { ttl_seconds: ttlSeconds } } : {}) },
  })).json()
  /** Both subscriptions made at the operator and stored here (an event from one is known). */
  const subscribed = async (count = 2) => {
    await waitFor(() => subs.live().length === count ? true : undefined, 3000, `${count} live subscriptions`)
    await waitFor(async () => Object.keys(await app.store.getSubscriptions(PHONE)).length === count ? true : undefined, 3000, 'stored')
  }
  const queued = async (id: string) => (await status(id)).status === 'queued'
  const creates = () => camara.requests.filter(r => r.method === 'POST' && r.path.endsWith('/subscriptions'))
  const lists = () => camara.requests.filter(r => r.method === 'GET' && r.path.endsWith('/subscriptions')).length
  return { app, camara, subs, event, post, status, notify, sms, push, fail, subscribed, queued, creates, lists }
}

for (const store of ['memory', 'redis'] as const) {
  t.test(`CAMARA subscriptions and events on the ${store} store`, { skip: store === 'redis' && !haveRedis && 'Redis is not running' }, async t => {
    t.test('queued → subscribed; event → woken and delivered; subscriptions deleted', async t => {
      const s = await setup(t, store)
      const first = await s.notify()
      const second = await s.notify()
      t.equal(first.channel, 'fallback_queue')
      await waitFor(() => s.subs.live().length === 2 ? true : undefined, 3000, 'two subscriptions')
      t.same(s.subs.rejected, [], 'the operator accepted each subscription body')
      t.same(s.subs.live().map(x => x.type.split('.').at(-1)).sort(), ['reachability-data', 'reachability-sms'])
      t.ok(s.subs.live().every(x => x.sink === 'https://reachroute.example.com/v1/webhooks/camara' && x.sinkToken === SINK_TOKEN && x.phoneNumber === PHONE))
      const expiresAt = Date.parse((await s.status(first.id)).expires_at)
      t.ok(s.subs.live().every(x => Date.parse(x.expireTime) >= expiresAt && Date.parse(x.expireTime) <= expiresAt + 3_600_000), 'lasts as long as the notification waits, to the hour')
      t.equal(s.subs.subscriptions.length, 2, 'the second notification for the number made no new subscription')

      const res = await s.post(s.event('reachability-data'))
      t.equal(res.statusCode, 204)
      for (const id of [first.id, second.id]) {
        const done = await waitFor(async () => { const n = await s.status(id); return n.status === 'sent' ? n : undefined }, 5000, `${id} sent`)
        t.equal(done.channel, 'push')
      }
      t.equal(s.push.deliveries().length, 2)
      await waitFor(() => s.subs.live().length === 0 ? true : undefined, 3000, 'subscriptions deleted')
      t.equal(s.subs.subscriptions.length, 2)
    })

    t.test('an event older than the status already known is ignored; a newer one applies', async t => {
      const s = await setup(t, store)
      const n = await s.notify()
      await s.subscribed()
      const at = (offsetMs: number) => new Date(Date.now() + offsetMs).toISOString()
      const known = () => s.app.reachability.cached(PHONE)
      t.equal((await s.post({ ...s.event('reachability-disconnected'), time: at(0) })).statusCode, 204)
      t.match(await known(), { is_reachable: false, connectivity: [] })

      // Sent a minute before the disconnection, delivered after it.
      t.equal((await s.post({ ...s.event('reachability-data'), time: at(-60_000) })).statusCode, 204)
      t.match(await known(), { is_reachable: false, connectivity: [] }, 'the late, older event changed nothing')
      await new Promise(resolve => setTimeout(resolve, 200))
      t.ok(await s.queued(n.id), 'and woke nothing')
      t.equal((await s.post({ ...s.event('reachability-data'), time: at(1000) })).statusCode, 204)
      t.match(await known(), { is_reachable: true, connectivity: ['DATA'] }, 'a newer one applies')
      await waitFor(async () => (await s.status(n.id)).status === 'sent' ? true : undefined, 5000, 'sent on the newer event')
    })

    t.test('a repeated event is ignored; bad tokens and bad bodies change nothing', async t => {
      const s = await setup(t, store)
      const n = await s.notify()
      const id = randomUUID()
      t.equal((await s.post(s.event('reachability-sms', PHONE, id), 'wrong-token-wrong-token')).statusCode, 401)
      t.equal((await s.app.inject({ method: 'POST', url: '/v1/webhooks/camara', payload: s.event('reachability-sms') })).statusCode, 401)
      await s.subscribed()
      const { time: _time, ...timeless } = s.event('reachability-sms')
      for (const bad of ['{"id":', { ...s.event('reachability-sms'), specversion: '0.3' }, { ...s.event('reachability-sms'), data: {} },
        { ...s.event('reachability-sms'), data: { device: { phoneNumber: PHONE } } }, { ...s.event('reachability-sms'), data: { subscriptionId: '' } },
        timeless, { ...s.event('reachability-sms'), time: 'yesterday' },
        { ...s.event('reachability-sms'), data: { device: { phoneNumber: '+4412' }, subscriptionId: s.subs.live()[0]!.id } }, { id: 'x' }]) {
        const res = await s.post(bad)
        t.equal(res.statusCode, 400, JSON.stringify(bad).slice(0, 60))
        t.equal(res.headers['content-type'], 'application/problem+json; charset=utf-8')
      }
      await new Promise(resolve => setTimeout(resolve, 300))
      t.equal((await s.status(n.id)).status, 'queued', 'nothing changed')
      t.equal((await s.post(s.event('reachability-sms', PHONE, id))).statusCode, 204)
      const done = await waitFor(async () => { const x = await s.status(n.id); return x.status === 'sent' ? x : undefined }, 5000, 'sent over SMS')
      t.equal(done.channel, 'sms')
      t.equal((await s.post(s.event('reachability-sms', PHONE, id))).statusCode, 204, 'a repeat is answered, and ignored')
      t.equal(s.sms.deliveries().length, 1)
    })

    t.test('a store failure half way through an event: 503, and the operator\'s retry of it applies it', async t => {
      const s = await setup(t, store)
      const n = await s.notify()
      await s.subscribed()
      const ev = s.event('reachability-sms')
      s.fail.wakeFallback = 1
      const first = await s.post(ev)
      t.equal(first.statusCode, 503)
      t.equal(first.headers['content-type'], 'application/problem+json; charset=utf-8')
      await new Promise(resolve => setTimeout(resolve, 200))
      t.ok(await s.queued(n.id), 'not woken')
      t.equal((await s.post(ev)).statusCode, 204, 'the retry')
      const done = await waitFor(async () => { const x = await s.status(n.id); return x.status === 'sent' ? x : undefined }, 5000, 'sent on the retry')
      t.equal(done.channel, 'sms')
      t.equal((await s.post(ev)).statusCode, 204, 'once applied, a repeat is answered')
      t.equal(s.sms.deliveries().length, 1)
    })

    t.test('repeats are known by source and id together: the same id from another source is another event', async t => {
      const s = await setup(t, store)
      const n = await s.notify()
      await s.subscribed()
      const a = { ...s.event('reachability-disconnected', PHONE, 'event-1'), source: 'https://operator.example/a' }
      const b = { ...s.event('reachability-sms', PHONE, 'event-1'), source: 'https://operator.example/b' }
      t.equal((await s.post(a)).statusCode, 204)
      t.equal((await s.post({ ...a, time: new Date(Date.now() + 1000).toISOString() })).statusCode, 204, 'a repeat of a (same source and id) ...')
      t.match(await s.app.reachability.cached(PHONE), { is_reachable: false }, '... is ignored')
      t.equal((await s.post({ ...b, time: new Date(Date.now() + 2000).toISOString() })).statusCode, 204)
      await waitFor(async () => (await s.status(n.id)).status === 'sent' ? true : undefined, 5000, 'woken by b')
    })

    t.test('an event names its number by its subscription: without a device it applies; from a subscription not ours it changes nothing', async t => {
      const s = await setup(t, store)
      const n = await s.notify()
      await s.subscribed()
      const other = '+447911123457'
      const unknown = { ...s.event('reachability-sms'), data: { device: { phoneNumber: PHONE }, subscriptionId: 'not-one-of-ours' } }
      t.equal((await s.post(unknown)).statusCode, 204, 'an unknown subscription: 204 ...')
      const mismatch = s.event('reachability-sms', other)
      t.equal((await s.post(mismatch)).statusCode, 204, 'a device that is not the subscription\'s: 204 ...')
      const specExample = s.event('reachability-sms', '+123456789')
      t.equal((await s.post(specExample)).statusCode, 204, 'the spec\'s example number (in CAMARA\'s pattern, in no numbering plan): not a 400 ...')
      const unprefixed = { ...s.event('reachability-sms'), type: 'reachability-sms' }
      t.equal((await s.post(unprefixed)).statusCode, 204, 'a type without the subscribed API\'s prefix: 204 ...')
      const otherVersion = { ...s.event('reachability-sms'), type: 'org.camaraproject.device-reachability-status-subscriptions.v1.reachability-sms' }
      t.equal((await s.post(otherVersion)).statusCode, 204, 'a type of another API version: 204 ...')
      await new Promise(resolve => setTimeout(resolve, 200))
      t.ok(await s.queued(n.id), '... and nothing woken')
      t.match(await s.app.reachability.cached(PHONE), { is_reachable: false }, 'nor cached (the lookup at acceptance stands)')
      t.equal(await s.app.reachability.cached(other), null)

      const deviceless = { ...s.event('reachability-sms'), data: { subscriptionId: s.subs.live().find(x => x.type.endsWith('reachability-sms'))!.id } }
      t.equal((await s.post(deviceless)).statusCode, 204)
      t.match(await s.app.reachability.cached(PHONE), { is_reachable: true, connectivity: ['SMS'] })
      await waitFor(async () => (await s.status(n.id)).status === 'sent' ? true : undefined, 5000, 'woken without a device named')
    })

    t.test('a notification that waits longer gets subscriptions of its own; the shorter ones are deleted', async t => {
      const s = await setup(t, store)
      const short = await s.notify(120)
      await s.subscribed()
      const first = s.subs.live().map(x => x.id)
      const long = await s.notify(7 * 86_400)
      const longExpiry = Date.parse((await s.status(long.id)).expires_at)
      await waitFor(() => s.subs.subscriptions.length === 4 && s.subs.live().length === 2 ? true : undefined, 3000, 'replaced')
      await s.subscribed()
      t.ok(s.subs.live().every(x => Date.parse(x.expireTime) >= longExpiry), 'the live ones last as long as the longer wait')
      t.ok(first.every(id => s.subs.subscriptions.find(x => x.id === id)!.deleted), 'the shorter ones deleted at the operator')
      t.same(Object.values(await s.app.store.getSubscriptions(PHONE)).sort(), s.subs.live().map(x => x.id).sort())
      for (const id of first) t.equal(await s.app.store.subscriptionNumber(id), null, 'a replaced subscription is no longer known')

      await s.notify(60 * 60)
      await new Promise(resolve => setTimeout(resolve, 300))
      t.equal(s.subs.subscriptions.length, 4, 'a shorter wait made none')
      t.ok(await s.queued(short.id))
    })

    for (const dedupe of [true, false]) {
      t.test(`an operator ${dedupe ? 'refusing' : 'allowing'} duplicates, the answers to our creates lost: the list finds ours before a retry, adopted, its event wakes`, async t => {
        const s = await setup(t, store)
        s.subs.dedupe = dedupe
        s.subs.lostAnswers = 2
        const n = await s.notify()
        await s.subscribed()
        t.equal(s.subs.subscriptions.length, 2, 'one per type, made by the tries whose answers were lost, none made twice')
        t.equal(s.creates().length, 2, 'not sent again: the list, asked before the retry, held it')
        t.same(Object.values(await s.app.store.getSubscriptions(PHONE)).sort(), s.subs.live().map(x => x.id).sort(), 'the ones the operator holds are stored')
        t.equal((await s.post(s.event('reachability-data'))).statusCode, 204)
        await waitFor(async () => (await s.status(n.id)).status === 'sent' ? true : undefined, 5000, 'sent on the event')
      })
    }

    /** A deduplicating operator holding our two subscriptions, made for a notification waiting 120 s. */
    const holdingOurs = async (t: Test) => {
      const s = await setup(t, store)
      s.subs.dedupe = true
      const short = await s.notify(120)
      await s.subscribed()
      return { s, short, held: s.subs.live().map(x => x.id).sort() }
    }
    /** The subscriptions held are still the live ones at the operator, none was made, and they are the ones stored. */
    const stillHeld = async (t: Test, s: Awaited<ReturnType<typeof setup>>, held: string[]) => {
      t.same(s.subs.live().map(x => x.id).sort(), held, 'still live at the operator')
      t.equal(s.subs.subscriptions.length, 2, 'nothing new made')
      t.same(Object.values(await s.app.store.getSubscriptions(PHONE)).sort(), held, 'and stored')
    }

    t.test('a longer wait, the operator answering ALREADY_EXISTS with the one stored: adopted, not deleted', async t => {
      const { s, short, held } = await holdingOurs(t)
      const long = await s.notify(7 * 86_400)
      await waitFor(() => s.lists() === 2 ? true : undefined, 3000, 'a list asked per type')
      await new Promise(resolve => setTimeout(resolve, 300))
      await stillHeld(t, s, held)
      for (const id of held) t.equal(await s.app.store.subscriptionNumber(id), PHONE, 'their events still known')
      await s.notify(7 * 86_400)
      await new Promise(resolve => setTimeout(resolve, 300))
      t.equal(s.creates().length, 4, 'stored as lasting past the longer wait: as long a wait asks for none')

      t.equal((await s.post(s.event('reachability-data'))).statusCode, 204)
      for (const id of [short.id, long.id]) await waitFor(async () => (await s.status(id)).status === 'sent' ? true : undefined, 5000, `${id} sent`)
    })

    t.test('a claim taken over while the operator answers ALREADY_EXISTS with the one stored: that one is not deleted', async t => {
      const { s, short, held } = await holdingOurs(t)
      s.subs.delays['reachability-data'] = 500
      s.subs.delays['reachability-sms'] = 500
      // The second's claims take over the first's while the operator is still answering them.
      const day = await s.notify(86_400)
      const week = await s.notify(7 * 86_400)
      await waitFor(() => s.lists() === 4 ? true : undefined, 5000, 'a list asked per type, by both')
      await new Promise(resolve => setTimeout(resolve, 300))
      await stillHeld(t, s, held)

      t.equal((await s.post(s.event('reachability-sms'))).statusCode, 204)
      for (const id of [short.id, day.id, week.id]) await waitFor(async () => (await s.status(id)).status === 'sent' ? true : undefined, 5000, `${id} sent`)
    })

    t.test('a subscription the operator ends is made again while notifications wait; one we ended is not', async t => {
      const s = await setup(t, store)
      const n = await s.notify()
      await s.subscribed()
      const ended = s.subs.live().find(x => x.type.endsWith('reachability-data'))!
      ended.deleted = true // the operator ended it: it sends subscription-ends, without naming the device
      const ends = (subscriptionId: string, reason = 'NETWORK_TERMINATED') => ({
        ...s.event('subscription-ends'), data: { subscriptionId, terminationReason: reason },
      })
      t.equal((await s.post(ends(ended.id))).statusCode, 204)
      await waitFor(() => s.subs.subscriptions.length === 3 ? true : undefined, 3000, 'subscribed again')
      const again = s.subs.subscriptions[2]!
      t.equal(again.type, ended.type)
      t.ok(Date.parse(again.expireTime) >= Date.parse((await s.status(n.id)).expires_at))
      await s.subscribed()
      t.equal((await s.app.store.getSubscriptions(PHONE))['reachability-data'], again.id)
      t.equal(await s.app.store.subscriptionNumber(ended.id), null)

      t.equal((await s.post(ends(ended.id))).statusCode, 204, 'the same end told again (another event id)')
      t.equal((await s.post(ends('not-one-of-ours'))).statusCode, 204, 'the end of a subscription not ours')
      await new Promise(resolve => setTimeout(resolve, 300))
      t.equal(s.subs.subscriptions.length, 3, 'made nothing')
      t.equal(s.subs.live().length, 2)

      t.equal((await s.post(s.event('reachability-data'))).statusCode, 204)
      await waitFor(async () => (await s.status(n.id)).status === 'sent' ? true : undefined, 5000, 'sent')
      await waitFor(() => s.subs.live().length === 0 ? true : undefined, 3000, 'deleted once nothing waits')
      for (const x of s.subs.subscriptions.filter(x => x.id !== ended.id)) {
        t.equal((await s.post(ends(x.id, 'SUBSCRIPTION_DELETED'))).statusCode, 204, 'the ends of those we deleted ...')
      }
      await new Promise(resolve => setTimeout(resolve, 300))
      t.equal(s.subs.subscriptions.length, 3, '... make nothing')
      t.same(await s.app.store.getSubscriptions(PHONE), {})
    })

    t.test('an initial event that comes before the operator answers the create is applied once the subscription is stored', async t => {
      const s = await setup(t, store)
      const early: number[] = []
      s.subs.beforeAnswer = async sub => {
        if (!sub.type.endsWith('reachability-data')) return
        const event = { ...s.event('reachability-data'), data: { device: { phoneNumber: PHONE }, subscriptionId: sub.id } }
        early.push((await s.post(event)).statusCode)
      }
      const n = await s.notify()
      t.equal(n.channel, 'fallback_queue')
      await waitFor(async () => (await s.status(n.id)).status === 'sent' ? true : undefined, 5000, 'sent on the initial event, not an hour later by polling')
      t.same(early, [204], 'the early event was taken')
      const events = (await s.status(n.id)).events.map((e: { type: string }) => e.type)
      t.ok(events.includes('recheck'), 'woken, then re-checked')
    })

    t.test('the last notification leaving while a subscription is being made: it is deleted once made', async t => {
      const s = await setup(t, store)
      s.subs.delays['reachability-sms'] = 800
      const n = await s.notify()
      await waitFor(() => s.subs.live().length === 1 ? true : undefined, 3000, 'the data subscription')
      await waitFor(async () => Object.keys(await s.app.store.getSubscriptions(PHONE)).length === 1 ? true : undefined, 3000, 'stored')
      t.equal((await s.post(s.event('reachability-data'))).statusCode, 204, 'its initial event: the device is connected')
      await waitFor(async () => (await s.status(n.id)).status === 'sent' ? true : undefined, 5000, 'sent')
      await waitFor(() => s.subs.subscriptions.length === 2 && s.subs.live().length === 0 ? true : undefined, 5000, 'both made, both deleted')
      t.same(await s.app.store.getSubscriptions(PHONE), {})
    })
  })
}
