import t from 'tap'
import { newNotificationId } from '../../src/notifications/ids.js'
import type { Notification } from '../../src/notifications/types.js'
import { FallbackScheduler } from '../../src/queue/fallback-scheduler.js'
import { QueueOps } from '../../src/queue/ops.js'
import { ReachabilityService } from '../../src/reachability/service.js'
import { MemoryStore } from '../../src/store/memory/memory-store.js'
import type { Store } from '../../src/store/store.js'
import type { UpstreamAnswer } from '../../src/domain/reachability.js'
import type { ReachabilityUpstream } from '../../src/reachability/upstreams/upstream.js'
import { waitFor } from '../helpers/wait.js'

// A pass of the fallback scheduler that found every slot taken skipped the shard it was at, and each pass began
// at shard 0: with a backlog in the first shards, the others were re-checked only once it drained. And a dead
// letter retried backed off from where its earlier re-checks had left it (an hour at once).

const SHARDS = 4
const PER_SHARD = 15

/** Answers "not reachable" after a while, recording the order numbers were asked in. */
class SlowUpstream implements ReachabilityUpstream {
  readonly name = 'slow'
  readonly asked: string[] = []
  async check (phoneNumber: string): Promise<UpstreamAnswer> {
    this.asked.push(phoneNumber)
    await new Promise(resolve => setTimeout(resolve, 20))
    return { is_reachable: false, connectivity: [], latest_status_at: '2026-11-25T00:00:00.000Z', status: { code: 'OK', message: 'Success' } }
  }

  async close (): Promise<void> {}
}

t.test('every shard gets its first re-check early, whatever the backlog of the others', async t => {
  const store = new MemoryStore({ shards: SHARDS })
  t.teardown(() => store.close())
  const shardOf = new Map<string, number>()
  const now = Date.now()
  for (let shard = 0; shard < SHARDS; shard++) {
    for (let i = 0; i < PER_SHARD; i++) {
      const to = `+9901${shard}${String(i).padStart(4, '0')}`
      shardOf.set(to, shard)
      const at = new Date(now).toISOString()
      const n: Notification = {
        id: newNotificationId(shard), owner: 'svc', status: 'queued', channel: 'fallback_queue', reason: 'not reachable',
        request: { to, message: { sms: { text: 'hi' } }, routing: { prefer: 'sms', channels: ['sms'], on_unreachable: 'queue', on_unknown: 'sms', ttl_seconds: 3600 } },
        reachability: null, attempts: 0, created_at: at, updated_at: at, expires_at: new Date(now + 3_600_000).toISOString(),
      }
      await store.acceptNotification({ notification: n, events: [], next: { kind: 'fallback', dueAt: now - 1 }, retentionSeconds: 3600 })
    }
  }
  const upstream = new SlowUpstream()
  const reachability = new ReachabilityService({
    store, upstream, policy: { reachableSeconds: 300, unreachableSeconds: 60, invalidSeconds: 86400 }, maxStaleSeconds: 0, deadlineMs: 1000,
  })
  const scheduler = new FallbackScheduler({
    store, reachability, firstCheckSeconds: 3600, backoffFactor: 2, maxIntervalSeconds: 3600, recheckMaxAgeSeconds: 0,
    leaseSeconds: 60, concurrency: 2, pollMs: 10,
  })
  t.teardown(() => scheduler.stop())
  scheduler.start()
  await waitFor(() => upstream.asked.length >= SHARDS * PER_SHARD ? true : undefined, 20_000, 'every entry re-checked')
  const order = upstream.asked.map(to => shardOf.get(to)!)
  const firstOf = [0, 1, 2, 3].map(shard => order.indexOf(shard))
  t.ok(Math.max(...firstOf) < 2 * SHARDS, `each shard among the first ${2 * SHARDS} re-checks: first at ${firstOf.join(', ')}`)
})

t.test('a dead letter retried backs off from the first interval again, not from its earlier re-checks', async t => {
  const store: Store = new MemoryStore({ shards: SHARDS })
  t.teardown(() => store.close())
  const now = Date.now()
  const at = new Date(now).toISOString()
  const n: Notification = {
    id: newNotificationId(1), owner: 'svc', status: 'queued', channel: 'fallback_queue', reason: 'not reachable',
    request: { to: '+990150000', message: { sms: { text: 'hi' } }, routing: { prefer: 'sms', channels: ['sms'], on_unreachable: 'queue', on_unknown: 'sms', ttl_seconds: 3600 } },
    reachability: null, attempts: 0, created_at: at, updated_at: at, expires_at: new Date(now + 3_600_000).toISOString(),
  }
  // Eight re-checks, then expired: a dead letter.
  const rechecks = Array.from({ length: 8 }, (_, i) => ({ at, type: 'recheck' as const, detail: `re-check ${i + 1}`, check: i + 1 }))
  await store.acceptNotification({ notification: n, events: rechecks, next: { kind: 'none' }, retentionSeconds: 3600 })
  t.ok(await store.transition({ notificationId: n.id, shard: 1, patch: { status: 'expired' }, events: [{ at, type: 'final', detail: 'expired', status: 'expired' }], dead: true }))
  await new QueueOps(store).retryDead(n.id, 3600)

  const upstream = new SlowUpstream()
  const reachability = new ReachabilityService({
    store, upstream, policy: { reachableSeconds: 300, unreachableSeconds: 60, invalidSeconds: 86400 }, maxStaleSeconds: 0, deadlineMs: 1000,
  })
  const scheduler = new FallbackScheduler({
    store, reachability, firstCheckSeconds: 10, backoffFactor: 2, maxIntervalSeconds: 3600, recheckMaxAgeSeconds: 0,
    leaseSeconds: 60, concurrency: 2, pollMs: 10, random: () => 0.5,
  })
  t.teardown(() => scheduler.stop())
  scheduler.start()
  const recheck = await waitFor(async () => (await store.getNotification(n.id, 1))!.events.filter(e => e.type === 'recheck').at(8), 5000, 'the re-check after the retry')
  t.equal(recheck.check, 1, 'its first re-check')
  const waitMs = Date.parse(recheck.next_check_at as string) - Date.parse(recheck.at)
  t.ok(waitMs >= 19_000 && waitMs <= 21_000, `the next one after the first backoff step, 10 s x 2 (${waitMs} ms), not 10 s x 2^9 capped at an hour`)
})
