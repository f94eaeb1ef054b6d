import t from 'tap'
import { buildTestApp } from '../../helpers/app.js'
import { dropPrefix, REDIS_URL, redisAvailable, uniquePrefix } from '../../helpers/redis.js'
import { waitFor } from '../../helpers/wait.js'

const haveRedis = await redisAvailable()

for (const store of ['memory', 'redis'] as const) {
  t.test(`queue ops routes on the ${store} store`, { skip: store === 'redis' && !haveRedis && 'Redis is not running' }, async t => {
    const prefix = uniquePrefix()
    const { app, bearer } = await buildTestApp({
      ...(store === 'redis' ? { REDIS_URL, REDIS_KEY_PREFIX: prefix } : {}),
      QUEUE_SHARDS: '2', WORKERS: 'on', WORKER_IDLE_POLL_MS: '20', FALLBACK_POLL_MS: '30', FALLBACK_FIRST_CHECK_SECONDS: '1',
      FALLBACK_MAX_INTERVAL_SECONDS: '1', FALLBACK_RECHECK_MAX_AGE_SECONDS: '0', SANDBOX_COMEBACK_SECONDS: '1',
    })
    t.teardown(async () => {
      await app.close()
      if (store === 'redis') await dropPrefix(prefix)
    })
    const ops = await bearer('ops')
    const writer = await bearer('notifications:write notifications:read')
    const notify = async (payload: object) => (await app.inject({ method: 'POST', url: '/v1/notifications', headers: { authorization: writer }, payload })).json()
    const get = (url: string, authorization = ops) => app.inject({ url, headers: { authorization } })

    t.test('ops routes need the ops scope', async t => {
      t.equal((await get('/v1/queue', writer)).statusCode, 403)
      t.equal((await app.inject({ url: '/v1/queue/dead' })).statusCode, 401)
      t.equal((await app.inject({ method: 'DELETE', url: '/v1/queue/dead/ntf_00_00000000000000000000000000000000', headers: { authorization: writer } })).statusCode, 403)
    })

    t.test('campaign counts pending are shown (and settled ones are not)', async t => {
      const count = { campaignId: 'cmp_shown', notificationId: 'ntf_01_00000000000000000000000000000000', status: 'sent' as const }
      t.equal((await get('/v1/queue')).json().campaign_counts_pending, 0)
      // Noted now: the in-process sweeper leaves it alone for its 30 s of grace.
      await app.store.notePendingCampaignCount(1, count, Date.now())
      t.equal((await get('/v1/queue')).json().campaign_counts_pending, 1)
      await app.store.settlePendingCampaignCount(1, count)
      t.equal((await get('/v1/queue')).json().campaign_counts_pending, 0)
    })

    t.test('the device that comes back (+990123444): its re-checks show in the event list and it is delivered', async t => {
      const { id } = await notify({ to: '+990123444', message: { sms: { text: 'back?' } } })
      const queued = (await get('/v1/queue')).json()
      t.ok(queued.waiting + queued.due + queued.leased >= 1)
      t.ok(queued.oldest_waiting_seconds >= 0)
      const done = await waitFor(async () => {
        const n = (await get(`/v1/notifications/${id}`, writer)).json()
        return n.status === 'sent' ? n : undefined
      }, 10_000, 'the comeback delivery')
      t.ok(done.events.some((e: { type: string }) => e.type === 'recheck'), 'the re-checks are in the event list')
      const after = (await get('/v1/queue')).json()
      t.ok(after.checks_last_hour >= 1)
      t.ok(after.wakeups_last_hour >= 1)
    })

    t.test('dead letters: listed with paging, retried with a new expiry, deleted', async t => {
      const ids: string[] = []
      for (let i = 0; i < 3; i++) ids.push((await notify({ to: '+990123433', message: { sms: { text: 'gone' } }, routing: { ttl_seconds: 1 } })).id)
      await waitFor(async () => (await get('/v1/queue')).json().dead >= 3 ? true : undefined, 10_000, 'three dead letters')
      const page1 = (await get('/v1/queue/dead?limit=2')).json()
      t.equal(page1.items.length, 2)
      t.ok(page1.next_cursor)
      const page2 = (await get(`/v1/queue/dead?limit=2&cursor=${page1.next_cursor}`)).json()
      const all = [...page1.items, ...page2.items].map((d: { id: string }) => d.id)
      t.same(new Set(all), new Set(ids), 'every dead letter once across pages')
      t.match(page1.items[0], { status: 'expired', reason: /did not come back/, reachability: { is_reachable: false } })

      const retry = await app.inject({ method: 'POST', url: `/v1/queue/dead/${ids[0]}/retry`, headers: { authorization: ops }, payload: { ttl_seconds: 600 } })
      t.equal(retry.statusCode, 202)
      t.match(retry.json(), { id: ids[0], status: 'queued', channel: 'fallback_queue' })
      t.ok(Date.parse(retry.json().expires_at) > Date.now() + 500_000)
      const again = await app.inject({ method: 'POST', url: `/v1/queue/dead/${ids[0]}/retry`, headers: { authorization: ops } })
      t.equal(again.statusCode, 404, 'no longer a dead letter')

      t.equal((await app.inject({ method: 'DELETE', url: `/v1/queue/dead/${ids[1]}`, headers: { authorization: ops } })).statusCode, 204)
      t.equal((await app.inject({ method: 'DELETE', url: `/v1/queue/dead/${ids[1]}`, headers: { authorization: ops } })).statusCode, 404)
      t.equal((await get(`/v1/notifications/${ids[1]}`, writer)).json().status, 'expired', 'the record stays readable')
    })

    t.test('a dead letter retried with a ttl of its own that runs out again: its reason names that expiry, not the first ttl', async t => {
      const { id } = await notify({ to: '+990123433', message: { sms: { text: 'gone twice' } }, routing: { ttl_seconds: 1 } })
      const expired = () => waitFor(async () => {
        const n = (await get(`/v1/notifications/${id}`, writer)).json()
        return n.status === 'expired' ? n : undefined
      }, 10_000, 'the notification to expire')
      t.equal((await expired()).reason, 'the device did not come back within the ttl of 1 s')
      await waitFor(async () => (await app.inject({ method: 'POST', url: `/v1/queue/dead/${id}/retry`, headers: { authorization: ops }, payload: { ttl_seconds: 2 } })).statusCode === 202 ? true : undefined, 5000, 'the retry')
      const again = await expired()
      t.match(again.reason, /^the device did not come back within the expiry of \S+ \(a retry from the dead-letter list set it\)$/)
      t.ok(again.reason.includes(again.expires_at), 'the expiry it names is its own')
    })

    t.test('a campaign\'s dead letter retried: its campaign counts it in progress again', async t => {
      const campaigner = await bearer('campaigns:write campaigns:read')
      const created = await app.inject({
        method: 'POST', url: '/v1/campaigns', headers: { authorization: campaigner },
        payload: { name: 'gone', message: { sms: { text: 'gone' } }, routing: { ttl_seconds: 1 }, recipients: [{ to: '+990123433' }] },
      })
      t.equal(created.statusCode, 202, created.body)
      const campaign = () => get(`/v1/campaigns/${created.json().id}`, campaigner).then(r => r.json())
      await waitFor(async () => (await campaign()).notifications.by_status.expired === 1 ? true : undefined, 10_000, 'the campaign notification to expire')
      const listed = (await get('/v1/queue/dead?limit=100')).json().items as { id: string }[]
      const notifications = await Promise.all(listed.map(async d => (await get(`/v1/notifications/${d.id}`, writer)).json()))
      const dead = notifications.find(n => n.campaign_id === created.json().id)
      t.ok(dead, 'the campaign notification is a dead letter')
      const retry = await app.inject({ method: 'POST', url: `/v1/queue/dead/${dead.id}/retry`, headers: { authorization: ops }, payload: { ttl_seconds: 600 } })
      t.equal(retry.statusCode, 202)
      t.match((await campaign()).notifications.by_status, { expired: 0, in_progress: 1 }, 'no longer counted expired: in progress again')
    })

    t.test('bad input is a problem', async t => {
      t.equal((await get('/v1/queue/dead?limit=0')).statusCode, 400)
      t.equal((await get('/v1/queue/dead?limit=abc')).statusCode, 400)
      t.equal((await get('/v1/queue/dead?cursor=garbage')).statusCode, 400)
      t.equal((await get('/v1/queue/dead?cursor=99.0')).statusCode, 400)
      const badTtl = await app.inject({ method: 'POST', url: '/v1/queue/dead/ntf_00_00000000000000000000000000000000/retry', headers: { authorization: ops }, payload: { ttl_seconds: -1 } })
      t.equal(badTtl.statusCode, 400)
      const unknown = await app.inject({ method: 'POST', url: '/v1/queue/dead/nope/retry', headers: { authorization: ops } })
      t.equal(unknown.statusCode, 404)
    })
  })
}
