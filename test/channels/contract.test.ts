import t from 'tap'
import type { DeliveryOutcome, PushMessage, SmsMessage } from '../../src/channels/channel.js'
import { FcmPushChannel } from '../../src/channels/fcm-push.js'
import { SandboxPushChannel, SandboxSmsChannel } from '../../src/channels/sandbox.js'
import { VonageSmsChannel } from '../../src/channels/vonage-sms.js'
import { WebhookPushChannel } from '../../src/channels/webhook-push.js'
import { parseServiceAccount } from '../../src/auth/fcm-token.js'
import { generateServiceAccount, senderIdMismatch, startFakeFcm, unavailable } from '../fakes/fcm.js'
import { generateApplicationKeys } from '../fakes/vonage.js'
import { invalidParams, serverError, startFakeVonageMessages } from '../fakes/vonage-messages.js'
import { startWebhookReceiver } from '../fakes/webhook-receiver.js'

// One suite, every adapter of the channel ports: each makes one attempt and says what came of it.

interface Subject {
  /** Sends a well-formed message carrying this notification id. */
  send (notificationId: string): Promise<DeliveryOutcome>
  /** The notification ids the provider has seen, in order. */
  seenIds (): string[]
  /** The provider fails the next message in a way worth retrying; absent when it never does. */
  failNextTransiently?: () => void
  /** The provider refuses the next message for good; absent when it never does. */
  refuseNext?: () => void
  close (): Promise<void>
}

const sms = (notificationId: string): SmsMessage => ({ notificationId, to: '+447700900123', text: 'Your parcel arrives today', ttlSeconds: 3600 })
const push = (notificationId: string): PushMessage => ({
  notificationId, token: 'device-token-1', title: 'Parcel', body: 'Your parcel arrives today', data: { order: '42' }, ttlSeconds: 3600,
})
const silent = () => {}

function contract (name: string, open: () => Promise<Subject>) {
  t.test(name, async t => {
    const subject = await open()
    t.teardown(() => subject.close())

    t.test('a good message is sent, with the provider\'s message id', async t => {
      const outcome = await subject.send('n-good')
      t.equal(outcome.kind, 'sent')
      t.match(outcome, { providerMessageId: /\S/ })
    })

    t.test('the provider sees the notification id', async t => {
      await subject.send('n-seen')
      t.equal(subject.seenIds().at(-1), 'n-seen')
    })

    t.test('a transient failure is worth a retry', async t => {
      if (!subject.failNextTransiently) return t.skip('this adapter never fails transiently')
      subject.failNextTransiently()
      const outcome = await subject.send('n-transient')
      t.equal(outcome.kind, 'retry')
      t.match(outcome, { reason: /\S/ })
      t.equal((await subject.send('n-transient')).kind, 'sent', 'the same message goes through once the provider is back')
    })

    t.test('a permanent refusal fails the message', async t => {
      if (!subject.refuseNext) return t.skip('this adapter never refuses a message')
      subject.refuseNext()
      const outcome = await subject.send('n-refused')
      t.equal(outcome.kind, 'failed')
      t.match(outcome, { reason: /\S/ })
    })
  })
}

contract('sandbox sms', async () => {
  const channel = new SandboxSmsChannel({ log: silent })
  return {
    send: id => channel.sendSms(sms(id)),
    seenIds: () => channel.deliveries().map(d => d.notificationId),
    close: () => channel.close(),
  }
})

contract('sandbox push', async () => {
  const channel = new SandboxPushChannel({ log: silent })
  return {
    send: id => channel.sendPush(push(id)),
    seenIds: () => channel.deliveries().map(d => d.notificationId),
    close: () => channel.close(),
  }
})

contract('vonage sms', async () => {
  const keys = await generateApplicationKeys()
  const applicationId = crypto.randomUUID()
  const fake = await startFakeVonageMessages({ applicationId, publicKey: keys.publicKey })
  const channel = new VonageSmsChannel({
    baseUrl: fake.url, applicationId, privateKey: keys.privateKey, jwtTtlSeconds: 900, from: 'reachroute', timeoutMs: 2000,
  })
  return {
    send: id => channel.sendSms(sms(id)),
    seenIds: () => fake.valid().map(r => (r.body as { client_ref: string }).client_ref),
    failNextTransiently: () => { fake.script.next(serverError(503)) },
    refuseNext: () => { fake.script.next(invalidParams('to', 'Invalid number')) },
    close: async () => { await channel.close(); await fake.close() },
  }
})

contract('fcm push', async () => {
  const account = await generateServiceAccount()
  const fake = await startFakeFcm({ projectId: account.serviceAccount.project_id, clientEmail: account.serviceAccount.client_email, publicKey: account.publicKey })
  const channel = new FcmPushChannel({ serviceAccount: parseServiceAccount(account.json), baseUrl: fake.url, tokenUrl: fake.tokenUrl, timeoutMs: 2000 })
  return {
    send: id => channel.sendPush(push(id)),
    seenIds: () => fake.valid().map(r => (r.body as { message: { data: Record<string, string> } }).message.data.reachroute_id!),
    failNextTransiently: () => { fake.script.next(unavailable()) },
    refuseNext: () => { fake.script.next(senderIdMismatch()) },
    close: async () => { await channel.close(); await fake.close() },
  }
})

contract('webhook push', async () => {
  const secret = 'push-webhook-secret-0123456789'
  const receiver = await startWebhookReceiver({ secret })
  const channel = new WebhookPushChannel({ url: receiver.url, secret, timeoutMs: 2000 })
  return {
    send: id => channel.sendPush(push(id)),
    seenIds: () => receiver.valid().map(r => (r.body as { id: string }).id),
    failNextTransiently: () => { receiver.script.next({ status: 503 }) },
    refuseNext: () => { receiver.script.next({ status: 400, json: { error: 'no such app' } }) },
    close: async () => { await channel.close(); await receiver.close() },
  }
})
