import { randomUUID } from 'node:crypto'
import t from 'tap'
import { RedisStore } from '../../src/store/redis/redis-store.js'
import { buildTestApp } from '../helpers/app.js'
import { dropPrefix, redisAvailable, uniquePrefix } from '../helpers/redis.js'
import { ScriptedUpstream } from '../helpers/upstream.js'

// An operator's event that comes late (its time before the status a lookup already told of) is history, also
// once the cache entry it was older than has expired: the number's report (kept for ever) knows better. It changes
// neither the report, nor the cache, nor how the next notification is routed.

const SINK = 'sink-token-for-the-late-event-test'
const TYPE = 'org.camaraproject.device-reachability-status-subscriptions.v0.'
const PHONE = '+447911123456'
const OK = { code: 'OK', message: 'Success' }
const haveRedis = await redisAvailable()

for (const kind of ['memory', 'redis'] as const) {
  t.test(`a late event after the cache entry expired changes nothing (${kind} store)`, { skip: kind === 'redis' && !haveRedis && 'Redis is not running (CI=true makes this a failure)' }, async t => {
    const prefix = uniquePrefix()
    const upstream = new ScriptedUpstream()
    const t0 = Date.now()
    upstream.answer = { is_reachable: true, connectivity: ['DATA', 'SMS'], latest_status_at: new Date(t0 - 60_000).toISOString(), status: OK }
    const { app, bearer } = await buildTestApp({ CAMARA_SINK_TOKEN: SINK, QUEUE_SHARDS: '2', ...(kind === 'redis' ? { REDIS_URL: 'redis://127.0.0.1:6379', REDIS_KEY_PREFIX: prefix } : {}) }, { upstream })
    t.teardown(async () => { await app.close(); if (kind === 'redis') await dropPrefix(prefix) })
    const auth = await bearer()
    const look = await app.inject({ url: `/v1/reachability/${PHONE}`, headers: { authorization: auth } })
    t.match(look.json(), { is_reachable: true, source: 'upstream' })

    // The cache entry is gone (as after its freshness and stale window); the report still knows.
    if (app.store instanceof RedisStore) await app.store.redis.del(app.store.keys.reachability(PHONE))
    else await app.store.putReachability({ record: look.json(), freshUntil: 0 }, 0.001)
    await new Promise(resolve => setTimeout(resolve, 10))
    t.equal(await app.store.getReachability(PHONE), null, 'no cache entry')

    // A subscription of the number's, so its events are taken.
    const claim = await app.store.claimSubscription(PHONE, 'reachability-disconnected', Date.now() + 3600_000)
    t.ok((await app.store.setSubscription(PHONE, 'reachability-disconnected', claim!, 's1', Date.now() + 3600_000)).stored)
    const late = {
      id: randomUUID(), source: 'https://operator.example/subscriptions/1', type: `${TYPE}reachability-disconnected`, specversion: '1.0',
      time: new Date(t0 - 30 * 60_000).toISOString(), data: { device: { phoneNumber: PHONE }, subscriptionId: 's1' },
    }
    const answer = await app.inject({
      method: 'POST', url: '/v1/webhooks/camara', payload: JSON.stringify(late),
      headers: { 'content-type': 'application/cloudevents+json', authorization: `Bearer ${SINK}` },
    })
    t.equal(answer.statusCode, 204, 'taken (and ignored)')
    t.match((await app.store.getReports([PHONE]))[0], { is_reachable: true, latest_status_at: look.json().latest_status_at }, 'the report unchanged')
    t.equal(await app.store.getReachability(PHONE), null, 'nothing cached')
    const offline = (await app.inject({ url: '/v1/reports/offline-devices', headers: { authorization: auth } })).json()
    t.same(offline.items, [], 'not an offline device')
    const n = (await app.inject({ method: 'POST', url: '/v1/notifications', headers: { authorization: auth }, payload: { to: PHONE, message: { sms: { text: 'hi' } } } })).json()
    t.equal(n.channel, 'sms', 'the next notification is routed on a fresh lookup, not on the late event')

    // The same event, on time (after the status known): taken.
    const onTime = { ...late, id: randomUUID(), time: new Date().toISOString() }
    const taken = await app.inject({
      method: 'POST', url: '/v1/webhooks/camara', payload: JSON.stringify(onTime),
      headers: { 'content-type': 'application/cloudevents+json', authorization: `Bearer ${SINK}` },
    })
    t.equal(taken.statusCode, 204)
    t.match((await app.store.getReports([PHONE]))[0], { is_reachable: false, latest_status_at: onTime.time }, 'an event on time is reported')
  })
}
