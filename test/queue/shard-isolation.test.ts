import t from 'tap'
import type { DeliveryOutcome, PushMessage, SmsMessage } from '../../src/channels/channel.js'
import { StoreUnavailableError } from '../../src/domain/errors.js'
import { CallbackSender } from '../../src/notifications/callbacks.js'
import { newNotificationId } from '../../src/notifications/ids.js'
import type { Notification } from '../../src/notifications/types.js'
import { DeliveryWorker } from '../../src/queue/delivery-worker.js'
import { FallbackScheduler } from '../../src/queue/fallback-scheduler.js'
import { ReachabilityService } from '../../src/reachability/service.js'
import { MemoryStore } from '../../src/store/memory/memory-store.js'
import { ScriptedUpstream } from '../helpers/upstream.js'
import { waitFor } from '../helpers/wait.js'

// A Redis Cluster master down takes its shards with it: the other shards' work must go on.

/** A store whose shard 0 does not answer. */
class HalfDownStore extends MemoryStore {
  override async readOutbox (...args: Parameters<MemoryStore['readOutbox']>) {
    if (args[0] === 0) throw new StoreUnavailableError('node down')
    return super.readOutbox(...args)
  }

  override async releaseDueRetries (...args: Parameters<MemoryStore['releaseDueRetries']>) {
    if (args[0] === 0) throw new StoreUnavailableError('node down')
    return super.releaseDueRetries(...args)
  }

  override async expireFallbackLeases (...args: Parameters<MemoryStore['expireFallbackLeases']>) {
    if (args[0] === 0) throw new StoreUnavailableError('node down')
    return super.expireFallbackLeases(...args)
  }
}

function notification (shard: number, channel: 'sms' | 'fallback_queue'): Notification {
  const at = new Date().toISOString()
  return {
    id: newNotificationId(shard), owner: 'svc', status: 'queued', channel, reason: 'test',
    request: { to: '+447911123456', message: { sms: { text: 'hi' } }, routing: { prefer: 'sms', channels: ['sms'], on_unreachable: 'queue', on_unknown: 'sms', ttl_seconds: 600 } },
    reachability: null, attempts: 0, created_at: at, updated_at: at, expires_at: new Date(Date.now() + 600_000).toISOString(),
  }
}

t.test('with shard 0 down, deliveries and re-checks of the other shards go on', async t => {
  const store = new HalfDownStore({ shards: 2 })
  t.teardown(() => store.close())
  const sent: string[] = []
  const sms = { provider: 'fake', async sendSms (m: SmsMessage): Promise<DeliveryOutcome> { sent.push(m.notificationId); return { kind: 'sent', provider: 'fake' } }, async close () {} }
  const push = { provider: 'fake', async sendPush (_m: PushMessage): Promise<DeliveryOutcome> { return { kind: 'sent', provider: 'fake' } }, async close () {} }
  const callbacks = new CallbackSender({ secret: undefined, timeoutMs: 500 })
  const worker = new DeliveryWorker({
    store, channels: { sms, push }, callbacks, concurrency: 4, idlePollMs: 10, visibilityTimeoutMs: 1000, maxAttempts: 3, retryBaseMs: 20, retryMaxMs: 50,
  })
  const upstream = new ScriptedUpstream()
  upstream.answer = { is_reachable: true, connectivity: ['SMS'], latest_status_at: null, status: { code: 'OK', message: 'Success' } }
  const reachability = new ReachabilityService({ store, upstream, policy: { reachableSeconds: 60, unreachableSeconds: 60, invalidSeconds: 60 }, maxStaleSeconds: 0, deadlineMs: 500 })
  const scheduler = new FallbackScheduler({
    store, reachability, firstCheckSeconds: 1, backoffFactor: 2, maxIntervalSeconds: 1, recheckMaxAgeSeconds: 0, leaseSeconds: 5, concurrency: 4, pollMs: 20,
    onHandedOver: () => worker.poke(),
  })
  t.teardown(async () => {
    await Promise.all([worker.stop(), scheduler.stop()])
    await callbacks.close()
  })

  const direct = notification(1, 'sms')
  const queued = notification(1, 'fallback_queue')
  await store.acceptNotification({ notification: direct, events: [], next: { kind: 'outbox', lane: 'sms' }, retentionSeconds: 600 })
  await store.acceptNotification({ notification: queued, events: [], next: { kind: 'fallback', dueAt: Date.now() }, retentionSeconds: 600 })
  worker.start()
  scheduler.start()
  await waitFor(() => sent.includes(direct.id) ? true : undefined, 3000, 'the direct one sent')
  await waitFor(() => sent.includes(queued.id) ? true : undefined, 3000, 'the queued one re-checked and sent')
  t.same(sent.sort(), [direct.id, queued.id].sort())
})
