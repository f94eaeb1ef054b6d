import { createHash } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { SignJWT } from 'jose'
import t, { type Test } from 'tap'
import type { DeliveryOutcome, PushMessage, SmsMessage } from '../../../src/channels/channel.js'
import { SandboxPushChannel, SandboxSmsChannel } from '../../../src/channels/sandbox.js'
import { SandboxUpstream } from '../../../src/reachability/upstreams/sandbox.js'
import { RedisStore } from '../../../src/store/redis/redis-store.js'
import { buildTestApp } from '../../helpers/app.js'
import { dropPrefix, REDIS_URL, redisAvailable, uniquePrefix } from '../../helpers/redis.js'
import { waitFor } from '../../helpers/wait.js'

const haveRedis = await redisAvailable()

/** Sandbox channels that take `delayMs` per message: a backlog builds up in the outboxes. */
class SlowSms extends SandboxSmsChannel {
  constructor (private readonly delayMs: number) { super({ log: () => {}, keep: 100_000 }) }
  override async sendSms (message: SmsMessage): Promise<DeliveryOutcome> {
    await sleep(this.delayMs)
    return super.sendSms(message)
  }
}
class SlowPush extends SandboxPushChannel {
  constructor (private readonly delayMs: number) { super({ log: () => {}, keep: 100_000 }) }
  override async sendPush (message: PushMessage): Promise<DeliveryOutcome> {
    await sleep(this.delayMs)
    return super.sendPush(message)
  }
}

/** The sandbox upstream, each answer after `delayMs`: a campaign takes a while. */
class SlowUpstream extends SandboxUpstream {
  constructor (private readonly delayMs: number) { super({ comebackSeconds: 20 }) }
  override async check (phone: string): Promise<Awaited<ReturnType<SandboxUpstream['check']>>> {
    await sleep(this.delayMs)
    return super.check(phone)
  }
}

const message = { sms: { text: 'Hi {{name}}, 30% off today' }, push: { title: 'Black Friday', body: 'Hi {{name}}' } }

const RECEIPT_SECRET = 'vonage-signature-secret-for-campaign-receipts'
/** Signs a status webhook's body as Vonage does (HS256, the body's SHA-256 as payload_hash). */
async function signReceipt (body: string): Promise<string> {
  const jwt = await new SignJWT({ payload_hash: createHash('sha256').update(body).digest('hex') })
    .setProtectedHeader({ alg: 'HS256' }).setIssuedAt().sign(new TextEncoder().encode(RECEIPT_SECRET))
  return `Bearer ${jwt}`
}
const number = (i: number) => `+4479111${String(i).padStart(5, '0')}`

async function setup (t: Test, store: 'memory' | 'redis', options: { env?: Record<string, string>, delayMs?: number, upstreamDelayMs?: number } = {}) {
  const prefix = uniquePrefix()
  const sms = new SlowSms(options.delayMs ?? 0)
  const push = new SlowPush(options.delayMs ?? 0)
  const { app, bearer } = await buildTestApp({
    ...(store === 'redis' ? { REDIS_URL, REDIS_KEY_PREFIX: prefix } : {}),
    QUEUE_SHARDS: '3', WORKERS: 'on', WORKER_IDLE_POLL_MS: '20', WORKER_CONCURRENCY: '64', FALLBACK_POLL_MS: '20',
    REACHABILITY_UPSTREAM_RPS: '100000', ...options.env,
  }, { upstream: new SlowUpstream(options.upstreamDelayMs ?? 0), channels: { sms, push } })
  t.teardown(async () => {
    await app.close()
    if (store === 'redis') await dropPrefix(prefix)
  })
  const auth = await bearer('campaigns:write campaigns:read notifications:write notifications:read')
  const post = (url: string, payload?: unknown, headers: Record<string, string> = {}) =>
    app.inject({ method: 'POST', url, headers: { authorization: auth, ...headers }, ...(payload !== undefined ? { payload: payload as string } : {}) })
  const get = (url: string) => app.inject({ url, headers: { authorization: auth } })
  const campaign = async (id: string) => (await get(`/v1/campaigns/${id}`)).json()
  // A store too busy to answer (a 503) is asked again.
  const progress = async (id: string) => { const res = await get(`/v1/campaigns/${id}`); return res.statusCode === 200 ? res.json() : undefined }
  const until = (id: string, status: string, timeoutMs = 20_000) =>
    waitFor(async () => { const c = await progress(id); return c?.status === status ? c : undefined }, timeoutMs, `campaign ${status}`)
  return { app, sms, push, auth, post, get, campaign, progress, until, bearer }
}

for (const store of ['memory', 'redis'] as const) {
  t.test(`campaigns on the ${store} store`, { skip: store === 'redis' && !haveRedis && 'Redis is not running' }, async t => {
    // The 10,000 recipients on Redis, the production store; the memory store, the same path in one process, with 2,000.
    const size = store === 'redis' ? 10_000 : 2_000
    t.test(`a ${size.toLocaleString('en')}-recipient campaign completes with the sandbox's mix of channels`, async t => {
      const s = await setup(t, store)
      const recipients = Array.from({ length: size }, (_, i) => ({ to: number(i), push_token: `tok-${i}`, vars: { name: `N${i}` } }))
      const res = await s.post('/v1/campaigns', { name: 'big', message, routing: { on_unreachable: 'drop' }, recipients })
      t.equal(res.statusCode, 202, res.body)
      const created = res.json()
      t.match(created, { id: /^cmp_/, recipients_accepted: size, recipients_rejected: 0, rejected: [] })
      const done = await s.until(created.id, 'completed', 60_000)
      t.equal(done.recipients.processed, size)
      // A recipient the store could not take after a few tries fails alone (a busy shared Redis); the campaign goes on.
      t.equal(done.notifications.created + done.recipients.failed, size)
      t.ok(done.recipients.failed <= size / 100, `${done.recipients.failed} failed`)
      t.ok(done.lookups.upstream + done.lookups.cache >= done.notifications.created)
      t.ok(done.lookups.upstream + done.lookups.cache <= done.recipients.processed, 'at most one lookup counted per recipient')
      const { push, sms, none } = done.notifications.by_channel
      // The sandbox: about 75% push (DATA), 15% SMS only, 10% not reachable (dropped here).
      t.ok(push > size * 0.70 && push < size * 0.80, `push ${push}`)
      t.ok(sms > size * 0.10 && sms < size * 0.20, `sms ${sms}`)
      t.ok(none > size * 0.06 && none < size * 0.14, `none ${none}`)
      t.equal(done.notifications.by_status.dropped, none)
      const sent = await waitFor(async () => { const c = await s.progress(created.id); return c?.notifications.by_status.in_progress === 0 ? c : undefined }, 30_000, 'every message sent')
      t.ok(sent.notifications.by_status.sent >= (push + sms) * 0.99, `${sent.notifications.by_status.sent} of ${push + sms} sent`)
      t.equal(sent.notifications.by_status.in_progress, 0)
      t.equal(sent.estimated_seconds_left, 0)
      t.ok(sent.rate_per_minute > 0)
    })

    t.test('duplicates are notified once; placeholders are filled, a missing one or a text too long once filled fails that recipient', async t => {
      const s = await setup(t, store)
      // 18 characters around the placeholder: 982 emoji fill it to 1,000 characters (1,982 UTF-16 units), 983 past the limit.
      const res = await s.post('/v1/campaigns', {
        name: 'small',
        message: { sms: { text: 'Hi {{name}}, 30% off today' } },
        routing: { channels: ['sms'], on_unreachable: 'sms' },
        recipients: [
          { to: '+447911100001', vars: { name: 'Ada' } },
          { to: '+447911100001', vars: { name: 'Ada again' } },
          { to: '+447911100002' },
          { to: 'not a number' },
          { to: '+447911100003', vars: { name: '\u{1F600}'.repeat(983) } },
          { to: '+447911100004', vars: { name: '\u{1F600}'.repeat(982) } },
        ],
      })
      t.equal(res.statusCode, 202, res.body)
      const created = res.json()
      t.match(created, { recipients_accepted: 4, recipients_rejected: 2 })
      t.match(created.rejected, [{ line: 2, reason: 'duplicate of an earlier recipient' }, { line: 4, reason: /^to: / }])
      const done = await s.until(created.id, 'completed')
      t.match(done.recipients, { total: 6, accepted: 4, rejected: 2, processed: 4, failed: 2 })
      t.same(done.failures, [
        { index: 1, to: '+447911100002', reason: 'the message\'s {{name}} has no value in this recipient\'s vars' },
        { index: 2, to: '+447911100003', reason: 'the SMS text is 1,001 characters once filled from this recipient\'s vars (at most 1,000)' },
      ], 'why they failed')
      t.equal(done.notifications.created, 2)
      await waitFor(() => s.sms.deliveries().length === 2 ? true : undefined)
      t.same(s.sms.deliveries().map(d => [d.to, d.text]).sort(), [
        ['+447911100001', 'Hi Ada, 30% off today'],
        ['+447911100004', `Hi ${'\u{1F600}'.repeat(982)}, 30% off today`],
      ], 'nothing longer than an SMS may be was sent')
    })

    t.test('placeholders of any name are filled ({{prénom}}, {{ first name }}); a missing one or an empty text fails that recipient; one no vars could fill is a 400', async t => {
      const s = await setup(t, store)
      const res = await s.post('/v1/campaigns', {
        name: 'names',
        message: { sms: { text: '{{code}}Bonjour {{prénom}} / {{ first name }}' } },
        routing: { channels: ['sms'], on_unreachable: 'sms' },
        recipients: [
          { to: '+447911100011', vars: { code: '', prénom: 'Zoé', 'first name': 'Ada' } },
          { to: '+447911100012', vars: { code: '' } },
        ],
      })
      t.equal(res.statusCode, 202, res.body)
      const done = await s.until(res.json().id, 'completed')
      t.same(done.failures, [{ index: 1, to: '+447911100012', reason: 'the message\'s {{prénom}} has no value in this recipient\'s vars' }])
      await waitFor(() => s.sms.deliveries().length === 1 ? true : undefined)
      t.same(s.sms.deliveries().map(d => d.text), ['Bonjour Zoé / Ada'])

      const empty = await s.post('/v1/campaigns', {
        name: 'empty', message: { sms: { text: '{{code}}' } }, routing: { channels: ['sms'], on_unreachable: 'sms' },
        recipients: [{ to: '+447911100013', vars: { code: '' } }, { to: '+447911100014', vars: { code: '1234' } }],
      })
      const emptyDone = await s.until(empty.json().id, 'completed')
      t.same(emptyDone.failures, [{ index: 0, to: '+447911100013', reason: 'the SMS text is empty once filled from this recipient\'s vars' }], 'no empty SMS sent')
      await waitFor(() => s.sms.deliveries().length === 2 ? true : undefined)
      t.same(s.sms.deliveries().map(d => d.text).sort(), ['1234', 'Bonjour Zoé / Ada'])

      const listed = async () => (await s.get('/v1/campaigns')).json().items.length
      const before = await listed()
      const refused = await s.post('/v1/campaigns', { name: 'bad', message: { sms: { text: 'Hi {{}}' } }, recipients: [{ to: '+447911100015' }] })
      t.equal(refused.statusCode, 400)
      t.match(refused.json(), { errors: [{ path: 'body.message', message: 'the SMS text has an empty placeholder {{}}' }] })
      t.equal(await listed(), before, 'nothing created')
    })

    t.test('Vonage delivery receipts move the campaign\'s SMS from sent to delivered or failed, each counted once', async t => {
      const s = await setup(t, store, { env: { VONAGE_SIGNATURE_SECRET: RECEIPT_SECRET, METRICS_AUTH: 'none' } })
      const finals = async () => {
        const text = (await s.app.inject({ url: '/metrics' })).body
        const count = (status: string, of = 'campaign_notifications') => Number(new RegExp(`^reachroute_${of}_final_total\\{status="${status}"\\} (\\d+)`, 'm').exec(text)?.[1] ?? 0)
        return { delivered: count('delivered'), failed: count('failed'), all: { delivered: count('delivered', 'notifications'), failed: count('failed', 'notifications') } }
      }
      const recipients = [0, 1, 2].map(i => ({ to: number(60_000 + i), vars: { name: 'x' } }))
      const { id } = (await s.post('/v1/campaigns', { name: 'receipts', message: { sms: message.sms }, routing: { channels: ['sms'], on_unreachable: 'sms' }, recipients })).json()
      const sent = await waitFor(async () => { const c = await s.progress(id); return c?.status === 'completed' && c.notifications.by_status.sent === 3 ? c : undefined }, 10_000, 'three SMS sent')
      t.equal(sent.notifications.by_status.delivered, 0)
      const [delivered, rejected] = s.sms.deliveries().map(d => d.notificationId)
      const metricBefore = await finals()
      const receipt = async (notificationId: string, status: string) => {
        // The message_uuid of the send, as Vonage's receipt for it carries.
        const { provider_message_id: messageUuid } = (await s.get(`/v1/notifications/${notificationId}`)).json()
        const body = JSON.stringify({ message_uuid: messageUuid, timestamp: new Date().toISOString(), status, channel: 'sms', client_ref: notificationId })
        const res = await s.app.inject({ method: 'POST', url: '/v1/webhooks/vonage/messages', headers: { authorization: await signReceipt(body), 'content-type': 'application/json' }, payload: body })
        t.equal(res.statusCode, 204, res.body)
      }
      await receipt(delivered!, 'delivered')
      await receipt(rejected!, 'rejected')
      await receipt(delivered!, 'delivered')
      const after = await s.campaign(id)
      t.same(after.notifications.by_status, { delivered: 1, failed: 1, expired: 0, dropped: 0, sent: 1, in_progress: 0 }, 'one delivered, one failed, one still sent: three notifications, three counted')
      t.equal(after.notifications.created, 3)
      const metricAfter = await finals()
      t.same({ delivered: metricAfter.delivered - metricBefore.delivered, failed: metricAfter.failed - metricBefore.failed }, { delivered: 1, failed: 1 },
        'the final-status metric counts each receipt that moved a notification once (the repeat not again)')
      t.same({ delivered: metricAfter.all.delivered - metricBefore.all.delivered, failed: metricAfter.all.failed - metricBefore.all.failed }, { delivered: 1, failed: 1 },
        'and so does the metric of every notification')
    })

    t.test('pause, resume and cancel; cancel drops what is not yet sent', async t => {
      const s = await setup(t, store, { env: { REACHABILITY_UPSTREAM_RPS: '200' }, upstreamDelayMs: 1 })
      const recipients = Array.from({ length: 3000 }, (_, i) => ({ to: number(20_000 + i), push_token: `tok-${i}`, vars: { name: 'x' } }))
      const { id } = (await s.post('/v1/campaigns', { name: 'slow', message, recipients })).json()
      t.equal((await s.post(`/v1/campaigns/${id}/resume`)).statusCode, 409, 'only a paused campaign resumes')
      // Paused once the first chunk is under way: a count of 0 would not tell a chunk not yet claimed from one whose
      // first count is late (a busy machine).
      await waitFor(async () => (await s.campaign(id)).recipients.processed > 0 ? true : undefined, 5000, 'the first recipients handled')
      const paused = await s.post(`/v1/campaigns/${id}/pause`)
      t.equal(paused.statusCode, 200)
      t.equal(paused.json().status, 'paused')
      // Pause is seen between chunks (of 200): the chunk in hand, its recipients counted as they are handled (every
      // 250 ms), is finished first. Finished: a whole number of chunks, the same for four counting periods.
      const chunkDone = async () => {
        const { processed } = (await s.campaign(id)).recipients
        await sleep(1000)
        return processed % 200 === 0 && (await s.campaign(id)).recipients.processed === processed ? processed : undefined
      }
      const before = await waitFor(chunkDone, 8000, 'the chunk in hand finished')
      t.ok(before >= 200, `paused after ${before} recipients: the chunk in hand was finished`)
      await sleep(500)
      const after = await s.campaign(id)
      t.equal(after.recipients.processed, before, 'nothing is processed while paused')
      t.equal(after.estimated_seconds_left, null)
      const problem = await s.post(`/v1/campaigns/${id}/pause`)
      t.equal(problem.statusCode, 409)
      t.match(problem.headers['content-type'], /^application\/problem\+json/)
      t.equal((await s.post(`/v1/campaigns/${id}/resume`)).json().status, 'running')
      await waitFor(async () => (await s.campaign(id)).recipients.processed > before ? true : undefined, 5000, 'progress after resume')
      const cancelled = await s.post(`/v1/campaigns/${id}/cancel`)
      t.equal(cancelled.json().status, 'cancelled')
      const stopped = await waitFor(chunkDone, 8000, 'the chunk in hand finished')
      await sleep(500)
      t.equal((await s.campaign(id)).recipients.processed, stopped, 'no more recipients after cancel')
      t.ok(stopped < 3000)
      // Its recipients (3,000 stored) go once no chunk is in hand, not at the end of the retention.
      await waitFor(async () => (await s.app.store.activeCampaigns()).includes(id) ? undefined : true, 8000, 'released, out of the active set')
      if (s.app.store instanceof RedisStore) {
        const rs = s.app.store
        t.equal(await rs.redis.exists(rs.keys.campaignRecipients(id), rs.keys.campaignNumbers(id), rs.keys.campaignHandled(id)), 0, 'recipients, numbers and handled gone')
      }
      t.match((await s.campaign(id)).recipients, { accepted: 3000, processed: stopped }, 'its counts stay')
      t.equal((await s.post(`/v1/campaigns/${id}/resume`)).statusCode, 409)
      t.equal((await s.post(`/v1/campaigns/${id}/cancel`)).statusCode, 409)
      t.equal((await s.post('/v1/campaigns/cmp_00000000000000000000000000000000/pause')).statusCode, 404)
    })

    t.test('cancel drops the campaign\'s notifications still waiting in the outbox', async t => {
      const s = await setup(t, store, { delayMs: 20, env: { WORKER_CONCURRENCY: '4' } })
      const recipients = Array.from({ length: 400 }, (_, i) => ({ to: number(30_000 + i), push_token: `tok-${i}`, vars: { name: 'x' } }))
      const { id } = (await s.post('/v1/campaigns', { name: 'to cancel', message, routing: { on_unreachable: 'drop' }, recipients })).json()
      await waitFor(async () => (await s.campaign(id)).notifications.created >= 200 ? true : undefined, 10_000, 'notifications made')
      t.equal((await s.post(`/v1/campaigns/${id}/cancel`)).statusCode, 200)
      const ended = await waitFor(async () => {
        const c = await s.campaign(id)
        return c.notifications.by_status.in_progress === 0 && c.notifications.created > 0 ? c : undefined
      }, 20_000, 'every notification ended')
      t.ok(ended.notifications.by_status.dropped > ended.notifications.by_channel.none, 'some dropped for the cancel, not only by routing')
      t.ok(ended.notifications.by_status.sent < ended.notifications.created)
    })

    t.test('NDJSON: streamed line by line; bad lines are refused with their line number, the campaign goes on', async t => {
      const s = await setup(t, store)
      const lines = [
        JSON.stringify({ name: 'nd', message, routing: {} }),
        JSON.stringify({ to: '+447911100011', push_token: 'a', vars: { name: 'A' } }),
        '{not json',
        JSON.stringify({ to: '12', vars: { name: 'B' } }),
        '',
        JSON.stringify({ to: '+447911100011', vars: { name: 'A' } }),
        JSON.stringify({ to: '+447911100012', vars: { name: 'C' }, extra: true }),
        JSON.stringify({ to: '+447911100013', vars: { name: 'D' } }),
      ]
      const res = await s.post('/v1/campaigns', lines.join('\n') + '\n', { 'content-type': 'application/x-ndjson' })
      t.equal(res.statusCode, 202, res.body)
      const body = res.json()
      t.match(body, { recipients_accepted: 2, recipients_rejected: 4 })
      t.same(body.rejected.map((r: { line: number }) => r.line), [3, 4, 6, 7])
      t.equal(body.rejected[0].reason, 'not JSON')
      t.equal(body.rejected[2].reason, 'duplicate of an earlier recipient')
      await s.until(body.id, 'completed')
    })

    t.test('a transactional notification sent during a running campaign goes through at once', async t => {
      const s = await setup(t, store, { delayMs: 50, env: { WORKER_CONCURRENCY: '4' } })
      const recipients = Array.from({ length: 3000 }, (_, i) => ({ to: number(40_000 + i), push_token: `tok-${i}`, vars: { name: 'x' } }))
      const { id } = (await s.post('/v1/campaigns', { name: 'backlog', message, routing: { on_unreachable: 'drop' }, recipients })).json()
      await waitFor(async () => (await s.campaign(id)).notifications.created >= 500 ? true : undefined, 20_000, 'a backlog in the bulk lanes')
      const started = Date.now()
      const res = await s.post('/v1/notifications', { to: '+990123411', message: { sms: { text: 'Your code is 123456' } } })
      t.equal(res.statusCode, 202, res.body)
      const nid = res.json().id
      await waitFor(async () => (await s.get(`/v1/notifications/${nid}`)).json().status === 'sent' ? true : undefined, 5000, 'the single notification sent')
      const tookMs = Date.now() - started
      const c = await s.campaign(id)
      t.ok(c.notifications.by_status.in_progress > 200, `the campaign still has ${c.notifications.by_status.in_progress} waiting`)
      // Behind that backlog it would have waited over 2.5 s (200 sends of 50 ms over 4 slots); a busy CI machine
      // took just over 1 s to accept, send and read it back.
      t.ok(tookMs < 2000, `sent after ${tookMs} ms, not behind the backlog`)
      t.equal((await s.get(`/v1/notifications/${nid}`)).json().campaign_id, null)
      await s.post(`/v1/campaigns/${id}/cancel`)
    })

    t.test('bad input is a problem and creates nothing; Idempotency-Key replays the first answer', async t => {
      const s = await setup(t, store)
      const noName = await s.post('/v1/campaigns', { message, recipients: [{ to: '+447911100021' }] })
      t.equal(noName.statusCode, 400)
      t.match(noName.headers['content-type'], /^application\/problem\+json/)
      t.match(noName.json(), { status: 400, errors: [{ path: 'body.name' }] })
      t.equal((await s.post('/v1/campaigns', { name: 'x', message, recipients: [] })).statusCode, 400)
      const badFirstLine = await s.post('/v1/campaigns', '{"name":"x"}\n{"to":"+447911100021"}\n', { 'content-type': 'application/x-ndjson' })
      t.equal(badFirstLine.statusCode, 400)
      t.match(badFirstLine.json(), { detail: /first line/ })
      t.equal((await s.post('/v1/campaigns', 'hello', { 'content-type': 'text/plain' })).statusCode, 415)
      t.same((await s.get('/v1/campaigns')).json(), { items: [], next_cursor: null }, 'nothing was created')
      t.equal((await s.get('/v1/campaigns/cmp_nope')).statusCode, 404)
      const readOnly = await s.bearer('campaigns:read')
      t.equal((await s.app.inject({ method: 'POST', url: '/v1/campaigns', headers: { authorization: readOnly }, payload: { name: 'x', message, recipients: [{ to: '+447911100021' }] } })).statusCode, 403)

      const body = { name: 'once', message, recipients: [{ to: '+447911100022', vars: { name: 'E' } }] }
      const first = await s.post('/v1/campaigns', body, { 'idempotency-key': 'k1' })
      const again = await s.post('/v1/campaigns', body, { 'idempotency-key': 'k1' })
      t.equal(again.statusCode, 202)
      t.equal(again.headers['idempotent-replayed'], 'true')
      t.equal(again.json().id, first.json().id)
      t.equal((await s.post('/v1/campaigns', { ...body, name: 'other' }, { 'idempotency-key': 'k1' })).statusCode, 422)

      const second = await s.post('/v1/campaigns', { ...body, name: 'twice' })
      const page1 = (await s.get('/v1/campaigns?limit=1')).json()
      t.equal(page1.items[0].id, first.json().id)
      const page2 = (await s.get(`/v1/campaigns?limit=1&cursor=${page1.next_cursor}`)).json()
      t.equal(page2.items[0].id, second.json().id)
    })
  })
}
