import t, { type Test } from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import type { DeliveryOutcome, PushMessage, SmsMessage } from '../../src/channels/channel.js'
import { CallbackSender } from '../../src/notifications/callbacks.js'
import { shardOfId } from '../../src/notifications/ids.js'
import { NotificationService } from '../../src/notifications/service.js'
import { DeliveryWorker } from '../../src/queue/delivery-worker.js'
import { ReachabilityService } from '../../src/reachability/service.js'
import { MemoryStore } from '../../src/store/memory/memory-store.js'
import { RedisStore } from '../../src/store/redis/redis-store.js'
import type { Store } from '../../src/store/store.js'
import { dropPrefix, REDIS_URL, redisAvailable, uniquePrefix } from '../helpers/redis.js'
import { withOutage } from '../helpers/store.js'
import { ScriptedUpstream } from '../helpers/upstream.js'
import { waitFor } from '../helpers/wait.js'

// Found by `npm run soak`: Redis went away while a worker was in a provider call. The provider took the message,
// the worker could not record it, left the job unacknowledged, and the job was taken over after the visibility
// timeout and sent a second time. The worker now keeps trying to record the outcome until the store is back.

const SHARDS = 4


async function outageDuringSend (t: Test, base: Store): Promise<void> {
  const { store, state } = withOutage(base)
  const upstream = new ScriptedUpstream()
  const reachability = new ReachabilityService({
    store, upstream, policy: { reachableSeconds: 60, unreachableSeconds: 60, invalidSeconds: 60 }, maxStaleSeconds: 60, deadlineMs: 2000,
  })
  const service = new NotificationService({ store, reachability, retentionSeconds: 3600, idempotencyTtlSeconds: 3600, firstRecheckSeconds: 3600 })
  const sent: string[] = []
  // The provider takes the message; the first time, the store goes away just as it answers, for 400 ms.
  const take = async (message: SmsMessage | PushMessage): Promise<DeliveryOutcome> => {
    sent.push(message.notificationId)
    if (sent.length === 1) {
      state.down = true
      setTimeout(() => { state.down = false }, 400)
    }
    return { kind: 'sent', provider: 'fake', providerMessageId: `msg-${sent.length}` }
  }
  const callbacks = new CallbackSender({ secret: undefined, timeoutMs: 1000 })
  const worker = new DeliveryWorker({
    store,
    channels: { sms: { provider: 'fake', sendSms: take, close: async () => {} }, push: { provider: 'fake', sendPush: take, close: async () => {} } },
    callbacks,
    concurrency: 4,
    idlePollMs: 10,
    visibilityTimeoutMs: 800,
    maxAttempts: 3,
    retryBaseMs: 10,
    retryMaxMs: 40,
  })
  t.teardown(async () => {
    state.down = false
    await worker.stop()
    await callbacks.close()
  })
  const { answer } = await service.accept('test-caller', {
    to: '+447700900123',
    message: { sms: { text: 'Your code is 123456' } },
    routing: { prefer: 'push', channels: ['push', 'sms'], on_unreachable: 'queue', on_unknown: 'sms', ttl_seconds: 3600 },
  })
  worker.start()
  const shard = shardOfId(answer.id, SHARDS)!
  const stored = await waitFor(async () => {
    if (state.down) return undefined
    const s = await store.getNotification(answer.id, shard)
    return s?.notification.status === 'sent' ? s : undefined
  }, 5000, 'the notification to be sent')
  // Past the visibility timeout and a few maintenance rounds: nobody takes the job over and sends it again.
  await sleep(2000)
  t.same(sent, [answer.id], 'the provider got the message once')
  t.equal(stored.notification.status, 'sent')
  t.equal(stored.events.filter(e => e.type === 'provider_answer').length, 1, 'one provider answer recorded')
  t.same((await store.outboxDepth(shard)).sms, 0, 'the job is acknowledged')
}

t.test('memory store: a store outage right after the provider took the message does not send it twice', async t => {
  await outageDuringSend(t, new MemoryStore({ shards: SHARDS }))
})

const haveRedis = await redisAvailable()
t.test('Redis store: a store outage right after the provider took the message does not send it twice', { skip: !haveRedis && 'Redis is not running (CI=true makes this a failure)' }, async t => {
  const prefix = uniquePrefix()
  const store = await RedisStore.connect({ url: REDIS_URL, keyPrefix: prefix, shards: SHARDS, commandTimeoutMs: 1000 })
  t.teardown(async () => {
    await store.close()
    await dropPrefix(prefix)
  })
  await outageDuringSend(t, store)
})
