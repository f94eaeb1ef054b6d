import { randomUUID } from 'node:crypto'
import t, { type Test } from 'tap'
import { SandboxPushChannel, SandboxSmsChannel } from '../../src/channels/sandbox.js'
import { startFakeCamara, unreachableV1 } from '../fakes/camara.js'
import { addSubscriptions } from '../fakes/camara-subscriptions.js'
import { buildTestApp } from '../helpers/app.js'
import { dropPrefix, REDIS_URL, redisAvailable, uniquePrefix } from '../helpers/redis.js'
import { waitFor } from '../helpers/wait.js'

// Faster than polling: a queued number is subscribed at the operator; its event wakes the notification.

const SINK_TOKEN = 'sink-token-for-the-camara-test'
const ACCESS = 'camara-access-token'
const PHONE = '+447911123456'
const haveRedis = await redisAvailable()
const TYPE = 'org.camaraproject.device-reachability-status-subscriptions.v0.'

async function setup (t: Test, store: 'memory' | 'redis') {
  const camara = await startFakeCamara({ accessToken: ACCESS })
  const subs = addSubscriptions(camara)
  camara.script.always(PHONE, unreachableV1())
  const prefix = uniquePrefix()
  const sms = new SandboxSmsChannel({ log: () => {} })
  const push = new SandboxPushChannel({ log: () => {} })
  const { app, bearer } = await buildTestApp({
    ...(store === 'redis' ? { REDIS_URL, REDIS_KEY_PREFIX: prefix } : {}),
    REACHABILITY_PROVIDER: 'camara', CAMARA_BASE_URL: camara.reachabilityUrl, CAMARA_ACCESS_TOKEN: ACCESS,
    CAMARA_SUBSCRIPTIONS_URL: subs.url, CAMARA_SINK_TOKEN: SINK_TOKEN, PUBLIC_BASE_URL: 'https://reachroute.example.com',
    // Polling alone would take an hour: only the event can deliver within the test.
    FALLBACK_FIRST_CHECK_SECONDS: '3600', FALLBACK_POLL_MS: '30', WORKERS: 'on', WORKER_IDLE_POLL_MS: '20', QUEUE_SHARDS: '2',
  }, { channels: { sms, push } })
  t.teardown(async () => {
    await app.close()
    await camara.close()
    if (store === 'redis') await dropPrefix(prefix)
  })
  const auth = await bearer()
  const event = (type: string, phoneNumber = PHONE, id = randomUUID()) => ({
    id, source: `${subs.url}/subscriptions/x`, type: TYPE + type, specversion: '1.0', datacontenttype: 'application/json',
    time: new Date().toISOString(), data: { device: { phoneNumber }, subscriptionId: subs.live()[0]?.id ?? 'none' },
  })
  const post = (body: unknown, token = SINK_TOKEN, contentType = 'application/cloudevents+json') => app.inject({
    method: 'POST', url: '/v1/webhooks/camara', payload: typeof body === 'string' ? body : JSON.stringify(body),
    headers: { 'content-type': contentType, authorization: `Bearer ${token}` },
  })
  const status = async (id: string) => (await app.inject({ url: `/v1/notifications/${id}`, headers: { authorization: auth } })).json()
  const notify = async () => (await app.inject({ method: 'POST', url: '/v1/notifications', headers: { authorization: auth }, payload: { to: PHONE, message: { sms: { text: 'hi' }, push: { title: 't', body: 'b' } }, push_token: 'tok' } })).json()
  return { app, camara, subs, event, post, status, notify, sms, push }
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
      t.ok(s.subs.live().every(x => Math.abs(Date.parse(x.expireTime) - Date.parse((first as { created_at: string }).created_at) - 86_400_000) < 5000), 'expires with the notification')
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
      await waitFor(() => s.subs.live().length === 2 ? true : undefined, 3000, 'two subscriptions')
      const at = (offsetMs: number) => new Date(Date.now() + offsetMs).toISOString()
      t.equal((await s.post({ ...s.event('reachability-data'), time: at(0) })).statusCode, 204)
      await waitFor(async () => (await s.status(n.id)).status === 'sent' ? true : undefined, 5000, 'sent on the event')
      const known = () => s.app.reachability.cached(PHONE)
      t.match(await known(), { is_reachable: true, connectivity: ['DATA'] })

      // Sent a minute before the DATA event, delivered after it.
      t.equal((await s.post({ ...s.event('reachability-disconnected'), time: at(-60_000) })).statusCode, 204)
      t.match(await known(), { is_reachable: true, connectivity: ['DATA'] }, 'the late, older event changed nothing')
      t.equal((await s.post({ ...s.event('reachability-disconnected'), time: at(1000) })).statusCode, 204)
      t.match(await known(), { is_reachable: false, connectivity: [] }, 'a newer one applies')
    })

    t.test('a repeated event is ignored; bad tokens and bad bodies change nothing', async t => {
      const s = await setup(t, store)
      const n = await s.notify()
      const id = randomUUID()
      t.equal((await s.post(s.event('reachability-sms', PHONE, id), 'wrong-token-wrong-token')).statusCode, 401)
      t.equal((await s.app.inject({ method: 'POST', url: '/v1/webhooks/camara', payload: s.event('reachability-sms') })).statusCode, 401)
      for (const bad of ['{"id":', { ...s.event('reachability-sms'), specversion: '0.3' }, { ...s.event('reachability-sms'), data: {} },
        { ...s.event('reachability-sms'), data: { device: { phoneNumber: '+4412' } } }, { id: 'x' }]) {
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
  })
}
