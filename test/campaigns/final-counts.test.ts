import t, { type Test } from 'tap'
import type { DeliveryOutcome, PushChannel, SmsChannel, SmsMessage } from '../../src/channels/channel.js'
import { setTimeout as sleep } from 'node:timers/promises'
import { CampaignCountSweeper } from '../../src/campaigns/count-sweeper.js'
import { CampaignRunner } from '../../src/campaigns/runner.js'
import { CampaignService, type RecipientLine } from '../../src/campaigns/service.js'
import { StoreUnavailableError } from '../../src/domain/errors.js'
import { CallbackSender } from '../../src/notifications/callbacks.js'
import { shardOfId } from '../../src/notifications/ids.js'
import { applyReceipt, NotificationService } from '../../src/notifications/service.js'
import type { NotificationStatus } from '../../src/notifications/types.js'
import { DeliveryWorker } from '../../src/queue/delivery-worker.js'
import { UpstreamRateLimiter } from '../../src/reachability/rate-limit.js'
import { ReachabilityService } from '../../src/reachability/service.js'
import type { Store, Transition } from '../../src/store/store.js'
import { countMade } from '../helpers/campaign.js'
import { redisAvailable } from '../helpers/redis.js'
import { openMemoryStore, openRedisStore } from '../helpers/store.js'
import { ScriptedUpstream } from '../helpers/upstream.js'
import { waitFor } from '../helpers/wait.js'

// A campaign's progress counts each notification once, in its latest final status: an SMS counted as sent moves
// to delivered or failed when its delivery receipt comes, whatever the order the worker and the receipt are told
// in, and a count tried again after an answer lost counts once. Against both stores (Redis for real).

const SHARDS = 3
const haveRedis = await redisAvailable()

type OpenStore = () => Promise<{ store: Store, cleanup: () => Promise<void> }>

const number = (i: number) => `+4479333${String(i).padStart(5, '0')}`
const receipt = (notificationId: string, status: string) => ({ clientRef: notificationId, status, at: new Date().toISOString() })

/** An SMS channel whose answer for each number the test writes (by default: sent). */
class ScriptedSms implements SmsChannel, PushChannel {
  readonly provider = 'scripted-sms'
  /** Notification ids by number, as sent. */
  readonly ids = new Map<string, string>()
  script: (message: SmsMessage) => Promise<void> = async () => {}

  async sendSms (message: SmsMessage): Promise<DeliveryOutcome> {
    this.ids.set(message.to, message.notificationId)
    await this.script(message)
    return { kind: 'sent', provider: this.provider, providerMessageId: `msg-${message.notificationId}` }
  }

  async sendPush (): Promise<DeliveryOutcome> {
    return { kind: 'failed', provider: 'none', reason: 'no push here' }
  }

  async close (): Promise<void> {}
}

async function services (store: Store, countingStore: Store = store) {
  const upstream = new ScriptedUpstream()
  const reachability = new ReachabilityService({
    store, upstream, policy: { reachableSeconds: 60, unreachableSeconds: 60, invalidSeconds: 60 }, maxStaleSeconds: 60, deadlineMs: 2000,
  })
  const notifications = new NotificationService({ store, reachability, retentionSeconds: 3600, idempotencyTtlSeconds: 3600, firstRecheckSeconds: 3600 })
  const campaigns = new CampaignService({ store: countingStore, retentionSeconds: 3600, idempotencyTtlSeconds: 3600 })
  const limiter = new UpstreamRateLimiter(store, 100_000, 'upstream', 1000)
  return { upstream, reachability, notifications, campaigns, limiter }
}

/** The campaign runner and a delivery worker (on workerStore when given), stopped, and the store cleaned up, at teardown. */
function startWorkers (t: Test, o: Pick<Awaited<ReturnType<typeof services>>, 'notifications' | 'reachability' | 'limiter'> & {
  store: Store, cleanup: () => Promise<void>, sms: ScriptedSms, workerStore?: Store,
  onCampaignFinal: (campaignId: string, status: NotificationStatus, notificationId: string) => void
}): void {
  const callbacks = new CallbackSender({ secret: 'callback-secret-for-the-count-test', timeoutMs: 2000 })
  const worker = new DeliveryWorker({
    store: o.workerStore ?? o.store, channels: { sms: o.sms, push: o.sms }, callbacks, concurrency: 4, idlePollMs: 10, visibilityTimeoutMs: 30_000,
    maxAttempts: 3, retryBaseMs: 10, retryMaxMs: 40, onCampaignFinal: o.onCampaignFinal,
  })
  const runner = new CampaignRunner({ store: o.store, notifications: o.notifications, reachability: o.reachability, limiter: o.limiter, concurrency: 4, chunkSize: 10, pollMs: 10, leaseMs: 5000 })
  t.teardown(async () => {
    await Promise.all([runner.stop(), worker.stop()])
    await callbacks.close()
    await o.cleanup()
  })
  runner.start()
  worker.start()
}

async function pendingDepth (store: Store): Promise<number> {
  let n = 0
  for (let shard = 0; shard < SHARDS; shard++) n += await store.pendingCampaignCountDepth(shard)
  return n
}

/** A campaign of one SMS, accepted, moved to sent and counted so. */
async function sentCampaignSms (t: Test, store: Store, name: string) {
  const { notifications, campaigns } = await services(store)
  const routing = { prefer: 'sms' as const, channels: ['sms' as const], on_unreachable: 'sms' as const, on_unknown: 'sms' as const, ttl_seconds: 3600 }
  const { answer } = await campaigns.create('svc', { name, message: { sms: { text: 'hi' } }, routing }, [{ line: 2, recipient: { to: number(0) } }])
  const { answer: sms } = await notifications.accept('svc', { to: number(0), message: { sms: { text: 'hi' } }, routing },
    undefined, { campaignId: answer.id, bulk: true })
  await countMade(store, answer.id, [sms.id])
  const shard = shardOfId(sms.id, SHARDS)!
  t.ok(await store.transition({ notificationId: sms.id, shard, patch: { status: 'sent' }, events: [], campaignId: answer.id }))
  t.ok(await campaigns.countFinal(answer.id, sms.id, 'sent'))
  t.equal(await store.pendingCampaignCountDepth(shard), 0, 'the count noted by the transition is settled')
  return { campaigns, answer, sms, shard }
}

function suite (name: string, open: OpenStore, skip: string | false = false) {
  t.test(name, { skip }, async t => {
    t.test('delivery receipts move campaign SMS from sent to delivered or failed, in whatever order they meet the worker', async t => {
      const { store, cleanup } = await open()
      const { reachability, notifications, campaigns, limiter } = await services(store)
      const lines: RecipientLine[] = Array.from({ length: 5 }, (_, i) => ({ line: i + 2, recipient: { to: number(i) } }))
      const { answer } = await campaigns.create('svc', {
        name: 'receipts', message: { sms: { text: 'hi' } },
        routing: { prefer: 'sms', channels: ['sms'], on_unreachable: 'sms', on_unknown: 'sms', ttl_seconds: 3600 },
      }, lines)

      const sms = new ScriptedSms()
      // Number 1: its receipt comes back before the worker records sent (the worker's sent then no longer applies).
      let earlyApplied = false
      sms.script = async message => {
        if (message.to !== number(1)) return
        t.ok(await applyReceipt(store, receipt(message.notificationId, 'delivered')), 'the early receipt applies')
        earlyApplied = true
      }
      // Number 3: the worker's count of sent is held until its receipt was counted (a count retried, or slow).
      const held: (() => Promise<unknown>)[] = []
      const counting: Promise<unknown>[] = []
      const onCampaignFinal = (id: string, status: NotificationStatus, notificationId: string) => {
        const count = () => campaigns.countFinal(id, notificationId, status)
        if (notificationId === sms.ids.get(number(3))) held.push(count)
        else counting.push(count())
      }
      startWorkers(t, { store, cleanup, notifications, reachability, limiter, sms, onCampaignFinal })
      await waitFor(async () => (await campaigns.get(answer.id)).status === 'completed' ? true : undefined, 10_000, 'every recipient processed')
      // Number 1's sent never applies: its receipt made it delivered first. The worker tells of the other four
      // (number 1's SMS may be the last one sent: wait for its receipt too).
      const ids = await waitFor(() => earlyApplied && held.length === 1 && counting.length === 3 ? [0, 1, 2, 3, 4].map(i => sms.ids.get(number(i))!) : undefined, 10_000, 'every SMS sent')
      await Promise.all(counting)

      t.ok(await applyReceipt(store, receipt(ids[0]!, 'delivered')))
      t.ok(await applyReceipt(store, receipt(ids[2]!, 'undeliverable')))
      t.ok(await applyReceipt(store, receipt(ids[3]!, 'delivered')))
      t.notOk(await applyReceipt(store, receipt(ids[0]!, 'delivered')), 'a repeated receipt changes nothing')
      await Promise.all(held.map(count => count()))

      const view = await campaigns.get(answer.id)
      t.same(view.notifications.by_status, { delivered: 3, failed: 1, expired: 0, dropped: 0, sent: 1, in_progress: 0 },
        'five SMS, each counted once: three delivered (one whose receipt beat the worker, one whose sent was counted late), one failed, one still sent')
      t.equal(view.notifications.created, 5)
    })

    t.test('a final transition whose answer was lost (it ran, the worker was told 503) is counted all the same', async t => {
      const { store, cleanup } = await open()
      const { reachability, notifications, campaigns, limiter } = await services(store)
      const { answer } = await campaigns.create('svc', {
        name: 'lost answer', message: { sms: { text: 'hi' } },
        routing: { prefer: 'sms', channels: ['sms'], on_unreachable: 'sms', on_unknown: 'sms', ttl_seconds: 3600 },
      }, [{ line: 2, recipient: { to: number(40) } }])
      let lost = 0
      // The worker's store: its first `sent` transition runs, then its answer is lost.
      const lossy = new Proxy(store, {
        get (target, property, receiver) {
          if (property !== 'transition') return Reflect.get(target, property, receiver) as unknown
          return async (tr: Transition) => {
            const ran = await target.transition(tr)
            if (tr.patch.status === 'sent' && lost++ === 0) throw new StoreUnavailableError('the store did not answer (test: answer lost)')
            return ran
          }
        },
      })
      const counted: Promise<unknown>[] = []
      startWorkers(t, {
        store, cleanup, notifications, reachability, limiter, sms: new ScriptedSms(), workerStore: lossy,
        onCampaignFinal: (id, status, nid) => { counted.push(campaigns.countFinal(id, nid, status)) },
      })
      await waitFor(() => lost >= 2 && counted.length > 0 ? true : undefined, 10_000, 'the sent transition tried again')
      await Promise.all(counted)
      t.equal(lost, 2, 'the transition was tried again, and no longer applied')
      t.match((await campaigns.get(answer.id)).notifications.by_status, { sent: 1, in_progress: 0 }, 'counted sent once')
    })

    t.test('a receipt whose campaign count failed (a 503 to Vonage) is counted when Vonage sends it again', async t => {
      const { store, cleanup } = await open()
      t.teardown(cleanup)
      const { campaigns, answer, sms, shard } = await sentCampaignSms(t, store, 'receipt again')
      let down = true
      const failing = new Proxy(store, {
        get (target, prop, receiver) {
          const value = Reflect.get(target, prop, receiver) as unknown
          if (typeof value !== 'function') return value
          if (prop === 'countCampaignFinal' && down) return () => Promise.reject(new StoreUnavailableError('the store did not answer (test)'))
          return (value as (...a: unknown[]) => unknown).bind(target)
        },
      })
      await t.rejects(applyReceipt(failing, receipt(sms.id, 'delivered')), StoreUnavailableError, 'the webhook answers 503')
      t.match((await store.getNotification(sms.id, shard))?.notification, { status: 'delivered' }, 'the notification took the receipt')
      down = false
      t.notOk(await applyReceipt(failing, receipt(sms.id, 'delivered')), 'the repeat changes nothing of the notification')
      t.match((await campaigns.get(answer.id)).notifications.by_status, { sent: 0, delivered: 1 }, 'but counts it for the campaign')
    })

    t.test('a receipt status that names nothing (submitted, or a property of every object) is recorded and moves nothing', async t => {
      const { store, cleanup } = await open()
      t.teardown(cleanup)
      const { campaigns, answer, sms, shard } = await sentCampaignSms(t, store, 'odd receipts')
      const odd = ['submitted', '__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf']
      for (const status of odd) await applyReceipt(store, receipt(sms.id, status))
      const stored = (await store.getNotification(sms.id, shard))!
      t.equal(stored.notification.status, 'sent', 'still sent')
      t.same(stored.events.filter(e => e.type === 'receipt').map(e => e.provider_status), odd, 'each receipt recorded as received')
      t.notOk(stored.events.some(e => e.type === 'final'), 'none of them final')
      t.match((await campaigns.get(answer.id)).notifications.by_status, { sent: 1, delivered: 0, failed: 0 }, 'the campaign counts it sent')
      t.ok(await applyReceipt(store, receipt(sms.id, 'delivered')), 'a real receipt still applies')
      t.match((await campaigns.get(answer.id)).notifications.by_status, { sent: 0, delivered: 1 })
    })

    t.test('a count the store refused stays pending, and the count sweeper makes it once the store answers', async t => {
      const { store, cleanup } = await open()
      const { reachability, notifications, campaigns: creating, limiter } = await services(store)
      let refusing = true
      let refusals = 0
      const away = new Proxy(store, {
        get (target, prop, receiver) {
          const value = Reflect.get(target, prop, receiver) as unknown
          if (typeof value !== 'function') return value
          if (prop === 'countCampaignFinal' && refusing) return () => { refusals++; return Promise.reject(new StoreUnavailableError('the store did not answer (test)')) }
          return (value as (...a: unknown[]) => unknown).bind(target)
        },
      })
      const counting = new CampaignService({ store: away, retentionSeconds: 3600, idempotencyTtlSeconds: 3600 })
      const { answer } = await creating.create('svc', {
        name: 'refused count', message: { sms: { text: 'hi' } },
        routing: { prefer: 'sms', channels: ['sms'], on_unreachable: 'sms', on_unknown: 'sms', ttl_seconds: 3600 },
      }, [0, 1, 2].map(i => ({ line: i + 2, recipient: { to: number(50 + i) } })))
      const counts: Promise<unknown>[] = []
      startWorkers(t, {
        store, cleanup, notifications, reachability, limiter, sms: new ScriptedSms(),
        onCampaignFinal: (id, status, nid) => { counts.push(counting.countFinal(id, nid, status).catch(err => err)) },
      })
      await waitFor(() => counts.length === 3 ? true : undefined, 10_000, 'three SMS sent')
      t.ok((await Promise.all(counts)).every(r => r instanceof StoreUnavailableError), 'every count refused')
      t.equal(refusals, 3)
      const view = await creating.get(answer.id)
      t.match(view.notifications.by_status, { sent: 0, in_progress: 3 }, 'none counted yet')
      t.equal(await pendingDepth(store), 3, 'three counts pending, noted by the final transitions')

      const sweeper = new CampaignCountSweeper({ store: away, graceMs: 0, pollMs: 10 })
      t.teardown(() => sweeper.stop())
      sweeper.start()
      await sleep(100)
      t.equal(await pendingDepth(store), 3, 'still pending while the store refuses')
      refusing = false
      await waitFor(async () => await pendingDepth(store) === 0 ? true : undefined, 5000, 'the sweeper settled them')
      t.match((await creating.get(answer.id)).notifications.by_status, { sent: 3, in_progress: 0 }, 'each counted once')
    })

    t.test('a process that died between the final transition and the count: the sweeper counts it, after the grace time', async t => {
      const { store, cleanup } = await open()
      t.teardown(cleanup)
      const { notifications, campaigns } = await services(store)
      const routing = { prefer: 'sms' as const, channels: ['sms' as const], on_unreachable: 'sms' as const, on_unknown: 'sms' as const, ttl_seconds: 3600 }
      const { answer } = await campaigns.create('svc', { name: 'died', message: { sms: { text: 'hi' } }, routing }, [{ line: 2, recipient: { to: number(60) } }])
      const { answer: sms } = await notifications.accept('svc', { to: number(60), message: { sms: { text: 'hi' } }, routing }, undefined, { campaignId: answer.id, bulk: true })
      await countMade(store, answer.id, [sms.id])
      const shard = shardOfId(sms.id, SHARDS)!
      // The worker's final transition, and then nothing: its process died before it counted.
      t.ok(await store.transition({ notificationId: sms.id, shard, patch: { status: 'failed', reason: 'refused' }, events: [], dead: true, campaignId: answer.id }))
      t.same(await store.pendingCampaignCounts(shard, Date.now() + 1, 10), [{ campaignId: answer.id, notificationId: sms.id, status: 'failed' }], 'its count noted in the same step')

      const patient = new CampaignCountSweeper({ store, graceMs: 60_000, pollMs: 10 })
      patient.start()
      await sleep(100)
      await patient.stop()
      t.equal(await store.pendingCampaignCountDepth(shard), 1, 'within the grace time the count is left to its process')
      t.match((await campaigns.get(answer.id)).notifications.by_status, { failed: 0 }, 'not counted')

      const sweeper = new CampaignCountSweeper({ store, graceMs: 0, pollMs: 10 })
      t.teardown(() => sweeper.stop())
      sweeper.start()
      await waitFor(async () => await store.pendingCampaignCountDepth(shard) === 0 ? true : undefined, 5000, 'swept')
      t.match((await campaigns.get(answer.id)).notifications.by_status, { failed: 1 }, 'counted failed')
    })

    t.test('a pending count whose notification moved on since is settled without counting', async t => {
      const { store, cleanup } = await open()
      t.teardown(cleanup)
      const { campaigns, answer, sms, shard } = await sentCampaignSms(t, store, 'moved on')
      // A count noted as failed (a dead letter's standing count) for a notification now sent: stale.
      await store.notePendingCampaignCount(shard, { campaignId: answer.id, notificationId: sms.id, status: 'failed' }, Date.now() - 1000)
      const sweeper = new CampaignCountSweeper({ store, graceMs: 0, pollMs: 10 })
      t.teardown(() => sweeper.stop())
      sweeper.start()
      await waitFor(async () => await store.pendingCampaignCountDepth(shard) === 0 ? true : undefined, 5000, 'swept')
      t.match((await campaigns.get(answer.id)).notifications.by_status, { sent: 1, failed: 0 }, 'still counted sent')
    })

    t.test('a count whose answer was lost after the store made it stays pending, and is counted once', async t => {
      const { store, cleanup } = await open()
      t.teardown(cleanup)
      // Once armed, the store counts, then its answer is lost (a timeout after Redis ran the script), the first time.
      let armed = false
      let lost = 0
      const losing = new Proxy(store, {
        get (target, prop, receiver) {
          const value = Reflect.get(target, prop, receiver) as unknown
          if (typeof value !== 'function') return value
          return async (...args: unknown[]) => {
            const result = await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args)
            if (armed && prop === 'countCampaignFinal' && lost++ === 0) throw new StoreUnavailableError('the store did not answer: no answer within 1000 ms')
            return result
          }
        },
      })
      const { notifications, campaigns } = await services(store, losing)
      const routing = { prefer: 'sms' as const, channels: ['sms' as const], on_unreachable: 'sms' as const, on_unknown: 'sms' as const, ttl_seconds: 3600 }
      const { answer } = await campaigns.create('svc', { name: 'lost answer', message: { sms: { text: 'hi' } }, routing }, [{ line: 2, recipient: { to: number(0) } }])
      const { answer: sms } = await notifications.accept('svc', { to: number(0), message: { sms: { text: 'hi' } }, routing }, undefined, { campaignId: answer.id, bulk: true })
      await countMade(store, answer.id, [sms.id])
      const shard = shardOfId(sms.id, SHARDS)!
      t.ok(await store.transition({ notificationId: sms.id, shard, patch: { status: 'sent' }, events: [], campaignId: answer.id }))
      armed = true
      await t.rejects(campaigns.countFinal(answer.id, sms.id, 'sent'), StoreUnavailableError, 'the count made, its answer lost')
      t.equal(await store.pendingCampaignCountDepth(shard), 1, 'still pending')
      const sweeper = new CampaignCountSweeper({ store: losing, graceMs: 0, pollMs: 10 })
      t.teardown(() => sweeper.stop())
      sweeper.start()
      await waitFor(async () => await store.pendingCampaignCountDepth(shard) === 0 ? true : undefined, 5000, 'swept')
      t.equal(lost, 2, 'counted a second time by the sweeper')
      t.match((await campaigns.get(answer.id)).notifications.by_status, { sent: 1, in_progress: 0 }, 'counted once')
    })
  })
}

suite('memory store', () => openMemoryStore(SHARDS))

suite('redis store', () => openRedisStore(SHARDS), !haveRedis && 'Redis is not running (CI=true makes this a failure)')
