import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { MAX_LINE_LENGTH } from '../../routes/v1/campaigns/ndjson.js'
import { CampaignService, type RecipientLine } from '../../src/campaigns/service.js'
import { MemoryStore } from '../../src/store/memory/memory-store.js'
import { RedisStore } from '../../src/store/redis/redis-store.js'
import type { Store } from '../../src/store/store.js'
import { dropPrefix, REDIS_URL, uniquePrefix } from '../helpers/redis.js'
import { raw } from '../helpers/net.js'
import { withOutage } from '../helpers/store.js'
import { waitFor } from '../helpers/wait.js'
import { campaignApp, message, NDJSON, ndjson, skipStore, STORES } from './app.js'

// A campaign whose upload failed (a line over 1 MiB, the client gone) stayed created, stuck in `accepted` and listed.

const number = (i: number) => `+4479333${String(i).padStart(5, '0')}`
const recipient = (i: number) => ({ to: number(i), vars: { name: `N${i}` } })

async function openStore (store: typeof STORES[number]): Promise<{ store: Store, cleanup: () => Promise<void> }> {
  if (store === 'memory') {
    const memory = new MemoryStore({ shards: 3 })
    return { store: memory, cleanup: () => memory.close() }
  }
  const keyPrefix = uniquePrefix()
  const redis = await RedisStore.connect({ url: REDIS_URL, keyPrefix, commandTimeoutMs: 2000, shards: 3 })
  return { store: redis, cleanup: async () => { await redis.close(); await dropPrefix(keyPrefix) } }
}

for (const store of STORES) {
  t.test(`NDJSON: a line over 1 MiB is a 400; the campaign read in so far is not listed and notifies nobody (${store} store)`, { skip: skipStore(store) }, async t => {
    const s = await campaignApp(t, store)
    const head = ndjson({ name: 'cut', message, routing: {} }, recipient(20), recipient(21))
    const tooLong = `{"to":"${number(22)}","vars":{"name":"${'x'.repeat(MAX_LINE_LENGTH)}"}}`
    const res = await s.post(head + tooLong, { ...NDJSON, 'idempotency-key': 'cut' })
    t.equal(res.statusCode, 400, res.body.slice(0, 300))
    t.match(res.headers['content-type'], /^application\/problem\+json/)
    t.match(res.json(), { status: 400, detail: /longer than/ })
    t.same(await s.listed(), [], 'not listed')
    await sleep(300)
    t.equal(s.sent(), 0, 'nobody notified')

    // The key is free again: the body sent again, put right, is taken.
    const whole = await s.post(head, { ...NDJSON, 'idempotency-key': 'cut' })
    t.equal(whole.statusCode, 202, whole.body)
    t.same((await s.listed()).map(c => c.id), [whole.json().id])
  })

  t.test(`NDJSON with no recipient line is a 400, as a JSON body with none, and leaves no campaign (${store} store)`, { skip: skipStore(store) }, async t => {
    const s = await campaignApp(t, store)
    const header = { name: 'nobody', message, routing: {} }
    for (const [what, body] of [['the campaign line alone', ndjson(header)], ['and blank lines', `${ndjson(header)}\n\r\n  \n`], ['without a newline', JSON.stringify(header)]]) {
      const res = await s.post(body!, NDJSON)
      t.equal(res.statusCode, 400, `${what}: ${res.body.slice(0, 300)}`)
      t.match(res.json(), { type: /\/validation-error$/, detail: /^no recipients/, errors: [{ path: 'body.line.2' }] }, what!)
    }
    t.same(await s.listed(), [], 'not listed')
    // A recipient line that is refused is a recipient given, but none taken: a 422 (test/campaigns/no-valid-recipient.test.ts).
    const refused = await s.post(ndjson(header, { to: 'not a number' }), NDJSON)
    t.equal(refused.statusCode, 422, refused.body)
    t.match(refused.json(), { type: /\/unprocessable$/, recipients_rejected: 1 })
    t.same(await s.listed(), [], 'not listed either')
  })

  t.test(`texts that are not well-formed: a campaign's refused, a recipient's refused with its line; NDJSON bytes that are not UTF-8 are a 400 (${store} store)`, { skip: skipStore(store) }, async t => {
    const s = await campaignApp(t, store)
    const named = await s.post({ name: 'half \ud83d', message, recipients: [recipient(300)] })
    t.equal(named.statusCode, 400, named.body)
    t.match(named.json(), { errors: [{ path: 'body.name', message: /^not well-formed Unicode: a lone UTF-16 surrogate/ }] })
    const texted = await s.post({ name: 'nul', message: { sms: { text: 'Hi\u0000' } }, recipients: [recipient(300)] })
    t.equal(texted.statusCode, 400, texted.body)
    t.match(texted.json(), { errors: [{ path: 'body.message.sms.text', message: /^a control character \(U\+0000\)/ }] })
    t.same(await s.listed(), [], 'no campaign')

    const vars = await s.post(ndjson({ name: 'vars', message, routing: {} }, recipient(301), { to: number(302), vars: { name: 'B\udc00' } }), NDJSON)
    t.equal(vars.statusCode, 202, vars.body)
    t.match(vars.json(), { recipients_accepted: 1, recipients_rejected: 1, rejected: [{ line: 3, reason: /not well-formed Unicode/ }] })

    const bytes = Buffer.concat([Buffer.from(ndjson({ name: 'latin-1', message, routing: {} }, recipient(303)) + `{"to":"${number(304)}","vars":{"name":"Ren`), Buffer.from([0xe9]), Buffer.from('"}}\n')])
    const notUtf8 = await s.app.inject({ method: 'POST', url: '/v1/campaigns', headers: { authorization: s.auth, ...NDJSON }, payload: bytes })
    t.equal(notUtf8.statusCode, 400, notUtf8.body)
    t.match(notUtf8.json(), { type: /\/validation-error$/, detail: 'line 3 is not valid UTF-8: bodies are read as UTF-8', errors: [{ path: 'body.line.3' }] })
    const charset = await s.post(ndjson({ name: 'latin-1', message, routing: {} }, recipient(305)), { 'content-type': 'application/x-ndjson; charset=iso-8859-1' })
    t.equal(charset.statusCode, 415, charset.body)
    t.same((await s.listed()).map(c => c.id), [vars.json().id], 'only the campaign with a good recipient is listed')
    await waitFor(() => s.sent() >= 1 ? true : undefined, 5000, 'its one recipient notified')
    await sleep(300)
    t.equal(s.sent(), 1, 'nobody else notified')
  })

  t.test(`NDJSON that stops arriving is a 408 after REQUEST_TIMEOUT_MS; the campaign read in so far is not listed and notifies nobody (${store} store)`, { skip: skipStore(store) }, async t => {
    const s = await campaignApp(t, store, { REQUEST_TIMEOUT_MS: '500' })
    await s.app.listen({ port: 0, host: '127.0.0.1' })
    const port = (s.app.server.address() as { port: number }).port
    const lines = ndjson({ name: 'stalled', message, routing: {} }, ...Array.from({ length: 30 }, (_, i) => recipient(40 + i)))
    const chunk = (text: string) => `${Buffer.byteLength(text).toString(16)}\r\n${text}\r\n`
    // Chunked, and the last chunk never comes.
    const answer = await raw(port, `POST /v1/campaigns HTTP/1.1\r\nHost: localhost\r\nAuthorization: ${s.auth}\r\n` +
      'Content-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n' + chunk(lines))
    t.equal(answer.status, 408, answer.body)
    t.match(JSON.parse(answer.body), { type: /\/request-timeout$/, status: 408 })
    t.ok(answer.closed, 'connection closed')
    await waitFor(async () => (await s.listed()).length === 0 ? true : undefined, 3000, 'not listed')
    await sleep(300)
    t.equal(s.sent(), 0, 'nobody notified')
  })

  t.test(`a body cut short after some chunks were stored: the campaign is cancelled, not listed, not found (${store} store)`, { skip: skipStore(store) }, async t => {
    const { store: opened, cleanup } = await openStore(store)
    t.teardown(cleanup)
    const campaigns = new CampaignService({ store: opened, retentionSeconds: 3600, idempotencyTtlSeconds: 3600, chunkSize: 10 })
    async function * cutShort (): AsyncIterable<RecipientLine> {
      for (let i = 0; i < 25; i++) yield { line: i + 2, recipient: recipient(100 + i) }
      throw new Error('aborted')
    }
    const header = { name: 'gone', message, routing: { prefer: 'push' as const, channels: ['push' as const, 'sms' as const], on_unreachable: 'drop' as const, on_unknown: 'sms' as const, ttl_seconds: 3600 } }
    await t.rejects(campaigns.create('svc', header, cutShort()), /aborted/)
    t.same((await campaigns.list(undefined, 100)).items, [], 'not listed')
    const [id] = (await opened.listCampaigns(undefined, 10)).map(c => c.id)
    t.ok(id, 'the store still has it, until it expires')
    t.equal((await opened.getCampaign(id!))?.status, 'cancelled', 'cancelled: no runner takes it')
    t.same(await opened.activeCampaigns(), [], 'never started')
    await t.rejects(campaigns.get(id!), { status: 404, message: /^no campaign/ })
    await t.rejects(campaigns.resume(id!), { status: 404, message: /^no campaign/ })
    t.equal(await campaigns.isCancelled(id!), true)
    if (opened instanceof RedisStore) {
      t.equal(await opened.redis.exists(opened.keys.campaignRecipients(id!), opened.keys.campaignNumbers(id!)), 0, 'the 20 recipients stored are released at once')
    }
  })

  t.test(`the store gone mid-upload, so the campaign cannot even be cancelled: it stays accepted in the store, yet not listed, not found, never run (${store} store)`, { skip: skipStore(store) }, async t => {
    const { store: opened, cleanup } = await openStore(store)
    t.teardown(cleanup)
    const { store: flaky, state } = withOutage(opened)
    const campaigns = new CampaignService({ store: flaky, retentionSeconds: 3600, idempotencyTtlSeconds: 3600, chunkSize: 10 })
    async function * storeGoes (): AsyncIterable<RecipientLine> {
      for (let i = 0; i < 25; i++) {
        if (i === 15) state.down = true
        yield { line: i + 2, recipient: recipient(200 + i) }
      }
    }
    const header = { name: 'outage', message, routing: { prefer: 'push' as const, channels: ['push' as const, 'sms' as const], on_unreachable: 'drop' as const, on_unknown: 'sms' as const, ttl_seconds: 3600 } }
    await t.rejects(campaigns.create('svc', header, storeGoes()), { status: 503, message: /test outage/ })
    state.down = false
    const [id] = (await opened.listCampaigns(undefined, 10)).map(c => c.id)
    t.ok(id, 'the store has it')
    t.equal((await opened.getCampaign(id!))?.status, 'accepted', 'left accepted: the cancel could not be stored')
    t.same((await campaigns.list(undefined, 100)).items, [], 'not listed')
    await t.rejects(campaigns.get(id!), { status: 404, message: /^no campaign/ })
    await t.rejects(campaigns.cancel(id!), { status: 404, message: /^no campaign/ })
    t.same(await opened.activeCampaigns(), [], 'never started')
  })
}
