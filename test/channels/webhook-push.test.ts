import t, { type Test } from 'tap'
import type { PushMessage } from '../../src/channels/channel.js'
import { WebhookPushChannel } from '../../src/channels/webhook-push.js'
import { verifyHmacSignature } from '../../src/http/signature.js'
import { slow } from '../fakes/scripted-server.js'
import { startWebhookReceiver } from '../fakes/webhook-receiver.js'

const secret = 'push-webhook-secret-0123456789'

async function setup (t: Test, options: { timeoutMs?: number, channelSecret?: string, query?: string } = {}) {
  const receiver = await startWebhookReceiver({ secret })
  const channel = new WebhookPushChannel({ url: receiver.url + (options.query ?? ''), secret: options.channelSecret ?? secret, timeoutMs: options.timeoutMs ?? 2000 })
  t.teardown(async () => { await channel.close(); await receiver.close() })
  return { receiver, channel }
}

const message = (over: Partial<PushMessage> = {}): PushMessage => ({
  notificationId: 'ntf_01', token: 'device-1', title: 'Paket', body: 'Kommt heute – grüß dich', data: { order: '42' }, ttlSeconds: 600, ...over,
})

t.test('posts the push content as JSON, signed, with a timestamp and the notification id as Idempotency-Key', async t => {
  const { receiver, channel } = await setup(t)
  const before = Math.floor(Date.now() / 1000)
  const outcome = await channel.sendPush(message())
  const [request] = receiver.requests
  t.equal(request?.rejected, undefined, 'the receiver found the signature and headers good')
  t.same(request?.body, { id: 'ntf_01', token: 'device-1', title: 'Paket', body: 'Kommt heute – grüß dich', data: { order: '42' }, ttl_seconds: 600 })
  t.ok(verifyHmacSignature(request!.rawBody, secret, String(request!.headers['x-reachroute-signature'])),
    'the signature covers the exact bytes received, non-ASCII included')
  t.equal(request?.headers['idempotency-key'], 'ntf_01')
  const timestamp = Number(request?.headers['x-reachroute-timestamp'])
  t.ok(timestamp >= before && timestamp <= before + 2, 'the timestamp is the unix time in seconds')
  t.same(outcome, { kind: 'sent', provider: 'webhook', providerMessageId: 'gw-1' })
})

t.test('a repeat carries the same Idempotency-Key, so the gateway can drop it', async t => {
  const { receiver, channel } = await setup(t)
  await channel.sendPush(message())
  await channel.sendPush(message())
  t.same(receiver.valid().map(r => r.headers['idempotency-key']), ['ntf_01', 'ntf_01'])
})

t.test('no data is sent as an empty map', async t => {
  const { receiver, channel } = await setup(t)
  await channel.sendPush(message({ data: undefined }))
  t.same((receiver.valid()[0]?.body as { data: unknown }).data, {})
})

t.test('a URL with a query string keeps it', async t => {
  const { receiver, channel } = await setup(t, { query: '?tenant=acme' })
  await channel.sendPush(message())
  t.equal(receiver.requests[0]?.rejected, undefined)
  t.equal(receiver.requests[0]?.query, 'tenant=acme')
})

t.test('signed with another secret, the gateway refuses it: failed', async t => {
  const { receiver, channel } = await setup(t, { channelSecret: 'not-the-receivers-secret-0123' })
  t.same(await channel.sendPush(message()), { kind: 'failed', provider: 'webhook', reason: 'the push gateway answered HTTP 401' })
  t.equal(receiver.requests[0]?.rejected, 'bad signature')
})

t.test('any 2xx is sent; an answer without a message_id gives no id', async t => {
  const { receiver, channel } = await setup(t)
  receiver.script.next({ status: 204 }, { status: 200, raw: 'ok' })
  t.same(await channel.sendPush(message()), { kind: 'sent', provider: 'webhook', providerMessageId: undefined })
  t.same(await channel.sendPush(message()), { kind: 'sent', provider: 'webhook', providerMessageId: undefined })
})

t.test('410 Gone means the push token is dead', async t => {
  const { receiver, channel } = await setup(t)
  receiver.script.next({ status: 410 })
  t.same(await channel.sendPush(message()), { kind: 'token_invalid', provider: 'webhook', reason: 'the push gateway answered HTTP 410' })
})

t.test('404 fails the message: more often a wrong URL than a dead token', async t => {
  const { receiver, channel } = await setup(t)
  receiver.script.next({ status: 404 })
  t.match(await channel.sendPush(message()), { kind: 'failed' })
})

t.test('429 is retried with the Retry-After seconds; 5xx is retried', async t => {
  const { receiver, channel } = await setup(t)
  receiver.script.next({ status: 429, headers: { 'retry-after': '12' } }, { status: 500 })
  t.same(await channel.sendPush(message()), { kind: 'retry', provider: 'webhook', reason: 'the push gateway answered HTTP 429', retryAfterSeconds: 12 })
  t.match(await channel.sendPush(message()), { kind: 'retry', reason: 'the push gateway answered HTTP 500' })
})

t.test('no answer within the timeout is retried', async t => {
  const { receiver, channel } = await setup(t, { timeoutMs: 150 })
  receiver.script.next(slow({ status: 202 }, 2000))
  t.match(await channel.sendPush(message()), { kind: 'retry', reason: /no answer/ })
})

t.test('nobody listening is retried', async t => {
  const channel = new WebhookPushChannel({ url: 'http://127.0.0.1:9/push', secret, timeoutMs: 500 })
  t.teardown(() => channel.close())
  t.match(await channel.sendPush(message()), { kind: 'retry', reason: /no answer/ })
})
