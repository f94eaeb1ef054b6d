import t, { type Test } from 'tap'
import type { SmsMessage } from '../../src/channels/channel.js'
import { VonageSmsChannel } from '../../src/channels/vonage-sms.js'
import { startFakeServer } from '../fakes/scripted-server.js'
import { generateApplicationKeys } from '../fakes/vonage.js'
import {
  invalidParams, serverError, slowAccepted, startFakeVonageMessages, throttled, unauthorized,
} from '../fakes/vonage-messages.js'

const keys = await generateApplicationKeys()
const applicationId = crypto.randomUUID()

async function setup (t: Test, timeoutMs = 2000) {
  const fake = await startFakeVonageMessages({ applicationId, publicKey: keys.publicKey })
  const channel = new VonageSmsChannel({
    baseUrl: fake.url, applicationId, privateKey: keys.privateKey, jwtTtlSeconds: 900, from: 'Acme', timeoutMs,
  })
  t.teardown(async () => { await channel.close(); await fake.close() })
  return { fake, channel }
}

const message = (over: Partial<SmsMessage> = {}): SmsMessage =>
  ({ notificationId: 'ntf_01', to: '+447700900123', text: 'Your parcel arrives today', ttlSeconds: 86400, ...over })

t.test('sends the Messages API body with an application JWT and answers with the message_uuid', async t => {
  const { fake, channel } = await setup(t)
  const outcome = await channel.sendSms(message())
  const [request] = fake.requests
  t.equal(request?.rejected, undefined, 'the fake found the JWT and the body good')
  t.same(request?.body, {
    message_type: 'text', channel: 'sms', to: '447700900123', from: 'Acme', text: 'Your parcel arrives today', client_ref: 'ntf_01', ttl: 86400,
  })
  t.equal(request?.claims?.application_id, applicationId)
  t.same(outcome, { kind: 'sent', provider: 'vonage', providerMessageId: request?.messageUuid })
})

t.test('a text of 1,000 characters goes out whatever they are (1,000 emoji are 2,000 UTF-16 units); 1,001 is refused', async t => {
  const { fake, channel } = await setup(t)
  t.match(await channel.sendSms(message({ text: '\u{1F4E6}'.repeat(1000) })), { kind: 'sent' }, 'the limit the API checks at accept, in the same unit')
  t.equal(fake.requests[0]?.rejected, undefined)
  t.match(await channel.sendSms(message({ notificationId: 'ntf_02', text: 'x'.repeat(1001) })), { kind: 'failed', reason: /text/ })
})

t.test('the application JWT is signed once and reused', async t => {
  const { fake, channel } = await setup(t)
  await channel.sendSms(message({ notificationId: 'a' }))
  await channel.sendSms(message({ notificationId: 'b' }))
  const [first, second] = fake.requests
  t.equal(first?.headers.authorization, second?.headers.authorization)
})

t.test('a ttl longer than Vonage tries an SMS is capped at 72 hours; a fraction is floored', async t => {
  const { fake, channel } = await setup(t)
  await channel.sendSms(message({ ttlSeconds: 7 * 86400 }))
  await channel.sendSms(message({ ttlSeconds: 1800.7 }))
  t.same(fake.valid().map(r => (r.body as { ttl: number }).ttl), [72 * 3600, 1800])
})

t.test('422 fails the message with the problem\'s title, detail and invalid parameters', async t => {
  const { fake, channel } = await setup(t)
  fake.script.next(invalidParams('to', 'Invalid number'))
  const outcome = await channel.sendSms(message())
  t.equal(outcome.kind, 'failed')
  t.match(outcome, { reason: /^HTTP 422 Invalid params: The value of one or more parameters is invalid\. \(to: Invalid number\)$/ })
})

t.test('401 on the reused JWT: sent again at once with a newly signed one, which is kept', async t => {
  const { fake, channel } = await setup(t)
  t.match(await channel.sendSms(message({ notificationId: 'a' })), { kind: 'sent' })
  fake.script.next(unauthorized())
  t.match(await channel.sendSms(message({ notificationId: 'b' })), { kind: 'sent' })
  t.match(await channel.sendSms(message({ notificationId: 'c' })), { kind: 'sent' })
  const [first, refused, resent, next] = fake.requests.map(r => r.headers.authorization)
  t.equal(refused, first, 'the refused request carried the reused JWT')
  t.not(resent, refused, 'the resend carries a new one')
  t.equal(next, resent, 'and the new one is reused after')
  t.same(fake.requests.map(r => (r.body as { client_ref: string }).client_ref), ['a', 'b', 'b', 'c'])
})

t.test('401 on a newly signed JWT too fails the message: our credentials are refused', async t => {
  const { fake, channel } = await setup(t)
  fake.script.next(unauthorized())
  fake.script.next(unauthorized())
  t.match(await channel.sendSms(message()), { kind: 'failed', reason: /HTTP 401 Unauthorized/ })
  t.equal(fake.requests.length, 2, 'tried once more, not again')
})

t.test('429 is retried, with the Retry-After seconds', async t => {
  const { fake, channel } = await setup(t)
  fake.script.next(throttled(7))
  t.match(await channel.sendSms(message()), { kind: 'retry', retryAfterSeconds: 7, reason: /HTTP 429/ })
})

t.test('5xx is retried, without a Retry-After when none is given', async t => {
  const { fake, channel } = await setup(t)
  fake.script.next(serverError(500))
  const outcome = await channel.sendSms(message())
  t.match(outcome, { kind: 'retry', reason: /HTTP 500/ })
  t.equal(outcome.kind === 'retry' ? outcome.retryAfterSeconds : 'not retry', undefined)
})

t.test('no answer within the timeout is retried', async t => {
  const { fake, channel } = await setup(t, 150)
  fake.script.next(slowAccepted(2000))
  const started = Date.now()
  t.match(await channel.sendSms(message()), { kind: 'retry', reason: /no answer/ })
  t.ok(Date.now() - started < 1500, 'gives up at the timeout, not when the answer comes')
})

t.test('nobody listening is retried', async t => {
  const gone = await startFakeServer(() => ({ status: 500 }))
  await gone.close()
  const channel = new VonageSmsChannel({
    baseUrl: gone.url, applicationId, privateKey: keys.privateKey, jwtTtlSeconds: 900, from: 'Acme', timeoutMs: 500,
  })
  t.teardown(() => channel.close())
  t.match(await channel.sendSms(message()), { kind: 'retry', reason: /no answer/ })
})

t.test('a 2xx answer that is not JSON still counts as sent, without an id', async t => {
  const { fake, channel } = await setup(t)
  fake.script.next({ status: 202, raw: 'accepted' })
  t.same(await channel.sendSms(message()), { kind: 'sent', provider: 'vonage', providerMessageId: undefined })
})

t.test('an error body that is not problem JSON gives the status as reason', async t => {
  const { fake, channel } = await setup(t)
  fake.script.next({ status: 400, raw: '<html>bad</html>' })
  t.same(await channel.sendSms(message()), { kind: 'failed', provider: 'vonage', reason: 'HTTP 400' })
})
