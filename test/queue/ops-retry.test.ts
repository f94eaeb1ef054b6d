import t from 'tap'
import { CampaignCountSweeper, countAndSettle } from '../../src/campaigns/count-sweeper.js'
import { StoreUnavailableError } from '../../src/domain/errors.js'
import { newNotificationId } from '../../src/notifications/ids.js'
import type { Notification } from '../../src/notifications/types.js'
import { QueueOps } from '../../src/queue/ops.js'
import type { Store } from '../../src/store/store.js'
import { countMade } from '../helpers/campaign.js'
import { redisAvailable } from '../helpers/redis.js'
import { openMemoryStore, openRedisStore, type OpenedStore } from '../helpers/store.js'
import { waitFor } from '../helpers/wait.js'

// Retrying a campaign's dead letter takes it out of its campaign's final count; a retry that fails on the way
// leaves both as they were, so it can be asked again.

const SHARDS = 2
const haveRedis = await redisAvailable()

async function expiredCampaignNotification (store: Store): Promise<{ campaignId: string, id: string }> {
  const campaignId = `cmp_${Math.random().toString(36).slice(2)}`
  await store.createCampaign({ id: campaignId, owner: 'svc', name: 'c', message: { sms: { text: 'hi' } }, routing: { prefer: 'sms', channels: ['sms'], on_unreachable: 'queue', on_unknown: 'sms', ttl_seconds: 60 }, created_at: new Date().toISOString() }, 3600)
  await store.appendCampaignRecipients(campaignId, [{ to: '+990123433', payload: '{"to":"+990123433"}' }])
  await store.setCampaignStatus(campaignId, 'running', ['accepted'], new Date().toISOString())
  const at = new Date().toISOString()
  const n: Notification = {
    id: newNotificationId(1), owner: 'svc', status: 'queued', channel: 'fallback_queue', reason: 'not reachable',
    request: { to: '+990123433', message: { sms: { text: 'hi' } }, routing: { prefer: 'sms', channels: ['sms'], on_unreachable: 'queue', on_unknown: 'sms', ttl_seconds: 60 } },
    reachability: null, attempts: 0, created_at: at, updated_at: at, expires_at: new Date(Date.now() + 60_000).toISOString(), campaign_id: campaignId,
  }
  await store.acceptNotification({ notification: n, events: [], next: { kind: 'none' }, retentionSeconds: 3600 })
  await countMade(store, campaignId, [n.id])
  await store.transition({ notificationId: n.id, shard: 1, patch: { status: 'expired', reason: 'the device did not come back within the ttl of 60 s' }, events: [], onlyFrom: ['queued'], dead: true })
  await store.countCampaignFinal(campaignId, n.id, 'expired')
  return { campaignId, id: n.id }
}

for (const [name, open] of [['memory', () => openMemoryStore(SHARDS)], ['redis', () => openRedisStore(SHARDS)]] as const) {
  t.test(`a campaign's dead letter retried (${name} store)`, { skip: name === 'redis' && !haveRedis && 'Redis is not running (CI=true makes this a failure)' }, async t => {
    const { store, cleanup }: OpenedStore = await open()
    t.teardown(cleanup)
    const { campaignId, id } = await expiredCampaignNotification(store)
    const expiredCount = async () => (await store.getCampaign(campaignId))!.counters['status:expired']
    const dead = async () => (await store.listDead(1, undefined, 100)).some(d => d.notificationId === id)
    t.equal(await expiredCount(), 1)

    let failing: string[] = ['reopenCampaignFinal']
    const flaky = new Proxy(store, {
      get (target, property, receiver) {
        const value = Reflect.get(target, property, receiver) as unknown
        if (!failing.includes(String(property)) || typeof value !== 'function') return value
        return () => Promise.reject(new StoreUnavailableError('the store did not answer (test)'))
      },
    })
    const ops = new QueueOps(flaky)
    await t.rejects(ops.retryDead(id, 600), { status: 503, message: /test/ })
    t.ok(await dead(), 'still a dead letter: the retry can be asked again')
    t.equal(await expiredCount(), 1, 'still counted expired')

    // The move itself fails: the dead letter stays (it left the list before its move, for good).
    failing = ['transition']
    await t.rejects(ops.retryDead(id, 600), { status: 503, message: /test/ })
    t.ok(await dead(), 'still a dead letter after a failed move')
    t.equal((await store.getNotification(id, 1))!.notification.status, 'expired')
    t.equal(await expiredCount(), 1, 'counted expired again')
    t.equal(await store.pendingCampaignCountDepth(1), 0, 'and its standing count settled')

    // The move fails, and so does the count made again (or the process died after the reopen): the standing
    // count stays pending, and the count sweeper makes it.
    failing = ['transition', 'countCampaignFinal']
    await t.rejects(ops.retryDead(id, 600), { status: 503, message: /test/ })
    t.equal(await expiredCount(), 0, 'out of its count for now')
    t.equal(await store.pendingCampaignCountDepth(1), 1, 'but its count is pending')
    const sweeper = new CampaignCountSweeper({ store, graceMs: 0, pollMs: 10 })
    sweeper.start()
    await waitFor(async () => await store.pendingCampaignCountDepth(1) === 0 ? true : undefined, 5000, 'swept')
    await sweeper.stop()
    t.equal(await expiredCount(), 1, 'counted expired again by the sweeper')

    failing = []
    const retried = await ops.retryDead(id, 600)
    t.equal(retried.status, 'queued')
    t.equal(retried.reason, 'retried from the dead-letter list: waiting in the fallback queue for its re-check', 'no longer the reason it ended')
    t.notOk(await dead())
    t.equal(await expiredCount(), 0, 'in progress again in its campaign')
    t.equal(await store.pendingCampaignCountDepth(1), 0, 'no count pending: the move took its standing count off')
    await t.rejects(ops.retryDead(id, 600), { status: 404, message: /no dead letter/ })
    t.equal(await expiredCount(), 0, 'a retry of what is no longer a dead letter changes no count')
  })
}

for (const [name, open] of [['memory', () => openMemoryStore(SHARDS)], ['redis', () => openRedisStore(SHARDS)]] as const) {
  t.test(`a retry whose read-back the store does not answer still answers it happened (${name} store)`, { skip: name === 'redis' && !haveRedis && 'Redis is not running (CI=true makes this a failure)' }, async t => {
    const { store, cleanup }: OpenedStore = await open()
    t.teardown(cleanup)
    const { id } = await expiredCampaignNotification(store)
    let reads = 0
    const flaky = new Proxy(store, {
      get (target, property, receiver) {
        const value = Reflect.get(target, property, receiver) as unknown
        if (property !== 'getNotification' || typeof value !== 'function') return value
        // The first read (before the move) answers; the read-back after it does not.
        return (...args: unknown[]) => ++reads === 1 ? (value as (...a: unknown[]) => unknown).apply(target, args) : Promise.reject(new StoreUnavailableError('the store did not answer (test)'))
      },
    })
    const queued: string[] = []
    const requeued = await new QueueOps(flaky, Date.now, async n => { queued.push(n.id) }).retryDead(id, 600)
    t.match(requeued, { id, status: 'queued', channel: 'fallback_queue' }, 'answered from what the move wrote')
    t.ok(Math.abs(Date.parse(requeued.expires_at) - (Date.now() + 600_000)) < 5000, 'with the new expiry')
    t.same(queued, [id], 'and watched for reachability events')
    t.equal((await store.getNotification(id, 1))!.notification.status, 'queued', 'the move happened')
  })

  t.test(`two retries of a campaign's dead letter at once (${name} store)`, { skip: name === 'redis' && !haveRedis && 'Redis is not running (CI=true makes this a failure)' }, async t => {
    const { store, cleanup }: OpenedStore = await open()
    t.teardown(cleanup)
    const { campaignId, id } = await expiredCampaignNotification(store)
    const ops = new QueueOps(store)
    const [first, second] = await Promise.allSettled([ops.retryDead(id, 600), ops.retryDead(id, 600)])
    const answers = [first, second].map(r => r.status === 'fulfilled' ? 'retried' : (r.reason as { status?: number }).status)
    t.same(answers.sort(), [404, 'retried'], 'one retry moves it; the other finds no dead letter')
    t.equal((await store.getNotification(id, 1))!.notification.status, 'queued')
    t.equal((await store.fallbackState(1, Date.now())).due, 1, 'one fallback entry')
    const campaign = (await store.getCampaign(campaignId))!
    t.equal(campaign.counters['status:expired'], 0, 'in progress in its campaign: the retry that lost counts nothing again')
    t.equal(await store.pendingCampaignCountDepth(1), 0, 'and leaves no count pending')
  })
}

for (const [name, open] of [['memory', () => openMemoryStore(SHARDS)], ['redis', () => openRedisStore(SHARDS)]] as const) {
  t.test(`a retry that lost the race takes no later count off (${name} store)`, { skip: name === 'redis' && !haveRedis && 'Redis is not running (CI=true makes this a failure)' }, async t => {
    const { store, cleanup }: OpenedStore = await open()
    t.teardown(cleanup)
    const { campaignId, id } = await expiredCampaignNotification(store)
    // This retry has read the dead letter; before its reopen, another retry moves it, and it is delivered and counted sent.
    const late = new Proxy(store, {
      get (target, property, receiver) {
        const value = Reflect.get(target, property, receiver) as unknown
        if (property !== 'reopenCampaignFinal' || typeof value !== 'function') return value
        return async (...args: [string, string]) => {
          await new QueueOps(store).retryDead(id, 600)
          await store.transition({ notificationId: id, shard: 1, patch: { status: 'sent' }, events: [], onlyFrom: ['queued'], campaignId })
          await countAndSettle(store, { campaignId, notificationId: id, status: 'sent' })
          return (value as (...a: [string, string]) => Promise<boolean>).apply(target, args)
        }
      },
    })
    await t.rejects(new QueueOps(late).retryDead(id, 600), { status: 404, message: /no dead letter/ })
    const { counters } = (await store.getCampaign(campaignId))!
    t.equal(counters['status:sent'], 1, 'still counted sent')
    t.equal(counters['status:expired'], 0)
  })
}
