import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import type { DeliveryOutcome, PushMessage, SmsMessage } from '../../src/channels/channel.js'
import { FcmPushChannel } from '../../src/channels/fcm-push.js'
import { createChannels } from '../../src/channels/index.js'
import { ConfigError, loadConfig } from '../../src/config.js'
import { SandboxPushChannel, SandboxSmsChannel } from '../../src/channels/sandbox.js'
import { VonageSmsChannel } from '../../src/channels/vonage-sms.js'
import { WebhookPushChannel } from '../../src/channels/webhook-push.js'
import { parseServiceAccount } from '../../src/auth/fcm-token.js'
import { generateServiceAccount, senderIdMismatch, startFakeFcm, unavailable, unregistered } from '../fakes/fcm.js'
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
  /** Sends a message to a push token the provider calls dead; push adapters only. */
  sendToDeadToken?: (notificationId: string) => Promise<DeliveryOutcome>
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

    const { failNextTransiently, refuseNext, sendToDeadToken } = subject
    t.test('a transient failure is worth a retry', { skip: failNextTransiently ? false : 'this adapter never fails transiently' }, async t => {
      failNextTransiently!()
      const outcome = await subject.send('n-transient')
      t.equal(outcome.kind, 'retry')
      t.match(outcome, { reason: /\S/ })
      t.equal((await subject.send('n-transient')).kind, 'sent', 'the same message goes through once the provider is back')
    })

    t.test('a permanent refusal fails the message', { skip: refuseNext ? false : 'this adapter never refuses a message' }, async t => {
      refuseNext!()
      const outcome = await subject.send('n-refused')
      t.equal(outcome.kind, 'failed')
      t.match(outcome, { reason: /\S/ })
    })

    t.test('a dead push token is told apart, for a failover', { skip: sendToDeadToken ? false : 'not a push adapter' }, async t => {
      const outcome = await sendToDeadToken!('n-dead-token')
      t.equal(outcome.kind, 'token_invalid')
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
    sendToDeadToken: id => channel.sendPush({ ...push(id), token: 'invalid-device' }),
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
    sendToDeadToken: id => {
      fake.script.always('dead-device', unregistered())
      return channel.sendPush({ ...push(id), token: 'dead-device' })
    },
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
    sendToDeadToken: id => {
      receiver.script.always('dead-device', { status: 410 })
      return channel.sendPush({ ...push(id), token: 'dead-device' })
    },
    close: async () => { await channel.close(); await receiver.close() },
  }
})

t.test('createChannels builds the adapters from the environment: each reaches its configured URL with its settings', async t => {
  const keys = await generateApplicationKeys()
  const account = await generateServiceAccount()
  const vonage = await startFakeVonageMessages({ applicationId: 'app-env', publicKey: keys.publicKey })
  const fcm = await startFakeFcm({ projectId: account.serviceAccount.project_id, clientEmail: account.serviceAccount.client_email, publicKey: account.publicKey })
  const dir = mkdtempSync(join(tmpdir(), 'reachroute-fcm-'))
  writeFileSync(join(dir, 'service-account.json'), account.json)
  const channels = createChannels(loadConfig({
    NODE_ENV: 'test',
    SMS_PROVIDER: 'vonage', VONAGE_APPLICATION_ID: 'app-env', VONAGE_PRIVATE_KEY: keys.privateKey, VONAGE_MESSAGES_BASE_URL: `${vonage.url}/`, SMS_FROM: 'AcmeBank',
    PUSH_PROVIDER: 'fcm', FCM_SERVICE_ACCOUNT_PATH: join(dir, 'service-account.json'), FCM_BASE_URL: fcm.url, FCM_TOKEN_URL: fcm.tokenUrl,
  }), silent)
  t.teardown(async () => {
    await channels.sms.close()
    await channels.push.close()
    await vonage.close()
    await fcm.close()
    rmSync(dir, { recursive: true, force: true })
  })

  t.match(await channels.sms.sendSms(sms('n-env-sms')), { kind: 'sent' })
  t.equal(vonage.valid().length, 1, 'VONAGE_MESSAGES_BASE_URL (its trailing slash dropped), with the application JWT of VONAGE_APPLICATION_ID')
  t.match(vonage.valid()[0]!.body, { from: 'AcmeBank', to: '447700900123', client_ref: 'n-env-sms', ttl: 3600 }, 'SMS_FROM is the sender')

  t.match(await channels.push.sendPush(push('n-env-push')), { kind: 'sent' })
  t.equal(fcm.tokenFetches(), 1, 'an access token from FCM_TOKEN_URL, for the service account read from FCM_SERVICE_ACCOUNT_PATH')
  t.match(fcm.tokenRequests[0]!.claims, { iss: account.serviceAccount.client_email, aud: fcm.tokenUrl })
  t.equal(fcm.valid().length, 1, 'the message went to FCM_BASE_URL with that token')
})

t.test('createChannels picks the adapters the config names', async t => {
  const keys = await generateApplicationKeys()
  const account = await generateServiceAccount()
  const build = (env: Record<string, string>) => createChannels(loadConfig({ NODE_ENV: 'test', ...env }), silent)

  const sandbox = build({})
  t.ok(sandbox.sms instanceof SandboxSmsChannel, 'sandbox SMS by default')
  t.ok(sandbox.push instanceof SandboxPushChannel, 'sandbox push by default')

  const real = build({
    SMS_PROVIDER: 'vonage', VONAGE_APPLICATION_ID: 'app-1', VONAGE_PRIVATE_KEY: keys.privateKey,
    PUSH_PROVIDER: 'fcm', FCM_SERVICE_ACCOUNT: account.json,
  })
  t.teardown(async () => { await real.sms.close(); await real.push.close() })
  t.ok(real.sms instanceof VonageSmsChannel)
  t.ok(real.push instanceof FcmPushChannel)

  const webhook = build({ PUSH_PROVIDER: 'webhook', PUSH_WEBHOOK_URL: 'http://127.0.0.1:9/push', PUSH_WEBHOOK_SECRET: 'push-webhook-secret-0123456789' })
  t.teardown(() => webhook.push.close())
  t.ok(webhook.push instanceof WebhookPushChannel)

  const { project_id: _, ...noProject } = account.serviceAccount
  t.throws(() => build({ PUSH_PROVIDER: 'fcm', FCM_SERVICE_ACCOUNT: JSON.stringify(noProject) }), ConfigError,
    'a service account without project_id needs FCM_PROJECT_ID')
  const withProject = build({ PUSH_PROVIDER: 'fcm', FCM_SERVICE_ACCOUNT: JSON.stringify(noProject), FCM_PROJECT_ID: 'p-1' })
  t.teardown(() => withProject.push.close())
  t.ok(withProject.push instanceof FcmPushChannel)
  t.throws(() => build({ PUSH_PROVIDER: 'fcm', FCM_SERVICE_ACCOUNT: '{"client_email": 1}' }), ConfigError, 'a malformed service account')
  t.throws(() => build({ PUSH_PROVIDER: 'fcm', FCM_SERVICE_ACCOUNT: 'not json' }), ConfigError, 'a service account that is not JSON')

  const handBuilt = loadConfig({ NODE_ENV: 'test' })
  t.throws(() => createChannels({ ...handBuilt, channels: { ...handBuilt.channels, smsProvider: 'vonage' } }, silent), ConfigError)
  t.throws(() => createChannels({ ...handBuilt, channels: { ...handBuilt.channels, pushProvider: 'fcm' } }, silent), ConfigError)
  t.throws(() => createChannels({ ...handBuilt, channels: { ...handBuilt.channels, pushProvider: 'webhook' } }, silent), ConfigError)
})
