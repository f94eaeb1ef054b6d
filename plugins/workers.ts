import fp from 'fastify-plugin'
import { recordCampaignFinal, recordCampaignRecipients } from '../src/metrics/campaigns.js'
import { recordDelivery, recordNotificationFinal } from '../src/metrics/notifications.js'
import { CampaignCountSweeper } from '../src/campaigns/count-sweeper.js'
import { CampaignRunner } from '../src/campaigns/runner.js'
import { CallbackSender } from '../src/notifications/callbacks.js'
import type { NotificationStatus } from '../src/notifications/types.js'
import { DeliveryWorker } from '../src/queue/delivery-worker.js'
import { FallbackScheduler } from '../src/queue/fallback-scheduler.js'
import { type StuckLoop, stuckLoops } from '../src/queue/liveness.js'
import { UpstreamRateLimiter } from '../src/reachability/rate-limit.js'
import { RefreshRunner } from '../src/reports/refresh.js'

declare module 'fastify' {
  interface FastifyInstance {
    deliveryWorker: DeliveryWorker | null
    fallbackScheduler: FallbackScheduler | null
    /** This process's workers whose loop stopped turning (none when no worker runs here): readiness fails on any. */
    stuckWorkers: () => StuckLoop[]
  }
}

/** Runs the background workers in this process when WORKERS=on (the embedded default, and `npm run worker`). */
export default fp<{ force?: boolean }>(async (app, options) => {
  const { workers, delivery, channels, callbackSigningSecret, fallback } = app.config
  if (!workers.enabled && !options.force) {
    app.decorate('deliveryWorker', null)
    app.decorate('fallbackScheduler', null)
    app.decorate('stuckWorkers', () => [])
    return
  }
  const countCampaignFinal = (id: string, status: NotificationStatus, notificationId: string) => {
    recordCampaignFinal(status)
    app.campaigns.countFinal(id, notificationId, status)
      .catch(err => app.log.warn({ err, campaign: id, notification: notificationId }, 'a campaign count failed: it stays pending, and the count sweeper makes it'))
  }
  const callbacks = new CallbackSender({ secret: callbackSigningSecret, timeoutMs: channels.timeoutMs, allowedHosts: app.config.callbackAllowedHosts })
  const worker = new DeliveryWorker({
    store: app.store,
    channels: app.channels,
    callbacks,
    concurrency: workers.concurrency,
    idlePollMs: workers.idlePollMs,
    visibilityTimeoutMs: workers.visibilityTimeoutMs,
    maxAttempts: delivery.maxAttempts,
    retryBaseMs: delivery.retryBaseMs,
    retryMaxMs: delivery.retryMaxMs,
    callbackMaxAttempts: delivery.callbackMaxAttempts,
    log: app.log,
    onAttempt: recordDelivery,
    onFinal: recordNotificationFinal,
    isCampaignCancelled: id => app.campaigns.isCancelled(id),
    onCampaignFinal: countCampaignFinal,
    providerRps: { sms: channels.smsRps, push: channels.pushRps },
  })
  const scheduler = new FallbackScheduler({
    store: app.store,
    reachability: app.reachability,
    firstCheckSeconds: fallback.firstCheckSeconds,
    backoffFactor: fallback.backoffFactor,
    maxIntervalSeconds: fallback.maxIntervalSeconds,
    recheckMaxAgeSeconds: fallback.recheckMaxAgeSeconds,
    leaseSeconds: fallback.leaseSeconds,
    deadLetterRetentionSeconds: fallback.deadLetterRetentionSeconds,
    concurrency: fallback.concurrency,
    pollMs: fallback.pollMs,
    onHandedOver: () => worker.poke(),
    onLeft: n => app.reachabilityEvents.unwatch(n.request.to, n.id),
    onFinal: recordNotificationFinal,
    onCampaignFinal: countCampaignFinal,
    isCampaignCancelled: id => app.campaigns.isCancelled(id),
    log: app.log,
  })
  app.decorate('deliveryWorker', worker)
  app.decorate('fallbackScheduler', scheduler)
  app.decorate('stuckWorkers', () => stuckLoops([
    { name: 'delivery worker', lastLoopAt: () => worker.lastLoopAt, pollMs: workers.idlePollMs },
    { name: 'fallback scheduler', lastLoopAt: () => scheduler.lastLoopAt, pollMs: fallback.pollMs },
  ], Date.now()))
  app.pokeWorkers = () => worker.poke()
  app.pokeScheduler = () => scheduler.poke()
  // One budget for every background lookup (fleet scans and campaigns), shared with every other process.
  // A burst of a hundredth of a second's tokens (one below 100 per second), so the rate holds over any window.
  const rps = app.config.reachability.upstreamRps
  const upstreamBudget = new UpstreamRateLimiter(app.store, rps, 'upstream', Math.max(1, Math.floor(rps / 100)))
  const refresh = new RefreshRunner({
    store: app.store,
    reachability: app.reachability,
    limiter: upstreamBudget,
    concurrency: app.config.reachability.refreshConcurrency,
    // A batch held by a process that died is taken again after the same time as a delivery job.
    leaseMs: workers.visibilityTimeoutMs,
    pollMs: fallback.pollMs,
    log: app.log,
  })
  app.pokeRefresh = () => refresh.poke()
  const campaignRunner = new CampaignRunner({
    store: app.store,
    notifications: app.notifications,
    reachability: app.reachability,
    limiter: upstreamBudget,
    concurrency: workers.concurrency,
    chunkSize: 200,
    leaseMs: workers.visibilityTimeoutMs,
    countedKeysTtlSeconds: delivery.campaignIdempotencyTtlSeconds,
    // A recipient's idempotency record outlives any pause of its campaign (whose record is kept this long).
    retentionSeconds: delivery.retentionSeconds,
    onProcessed: recordCampaignRecipients,
    onFinalAtAccept: recordCampaignFinal,
    pollMs: workers.idlePollMs,
    log: app.log,
  })
  app.pokeCampaigns = () => campaignRunner.poke()
  const countSweeper = new CampaignCountSweeper({ store: app.store, log: app.log })
  app.addHook('onReady', async () => {
    campaignRunner.start()
    countSweeper.start()
    refresh.start()
    worker.start()
    scheduler.start()
    app.log.info({ consumer: worker.consumer, scheduler: scheduler.id }, 'delivery worker and fallback scheduler started')
  })
  // Runs before the store closes (hooks run in reverse order of registration). Every loop is told to stop at once:
  // one after the other, the campaign runner would go on making notifications while the workers drained.
  app.addHook('onClose', async () => {
    await Promise.all([campaignRunner.stop(), refresh.stop(), worker.stop(), scheduler.stop(), countSweeper.stop()])
    await callbacks.close()
  })
}, { name: 'workers', fastify: '5.x', dependencies: ['config', 'store', 'notifications', 'campaigns'] })
