import fp from 'fastify-plugin'
import type { Channels } from '../src/channels/channel.js'
import { withCircuitBreakers } from '../src/channels/circuit-breaker.js'
import { createChannels } from '../src/channels/index.js'
import { circuitMetrics } from '../src/metrics/circuits.js'
import { recordRoutingDecision } from '../src/metrics/notifications.js'
import { CallbackPolicy } from '../src/notifications/callback-policy.js'
import { NotificationService } from '../src/notifications/service.js'
import { CamaraSubscriptions } from '../src/reachability/events/camara-subscriptions.js'
import { ReachabilityEvents } from '../src/reachability/events/reachability-events.js'

declare module 'fastify' {
  interface FastifyInstance {
    notifications: NotificationService
    channels: Channels
    /** Wakes this process's delivery worker (set by the workers plugin; a no-op without workers). */
    pokeWorkers: () => void
    /** Wakes this process's fallback scheduler (likewise). */
    pokeScheduler: () => void
    /** Wakes this process's refresh runner (likewise). */
    pokeRefresh: () => void
    reachabilityEvents: ReachabilityEvents
  }
}

export default fp<{ channels?: Channels }>(async (app, options) => {
  const adapters = options.channels ?? createChannels(app.config, (obj, msg) => app.log.info(obj, msg))
  if (!options.channels) app.addHook('onClose', async () => { await Promise.all([adapters.sms.close(), adapters.push.close()]) })
  app.decorate('channels', withCircuitBreakers(adapters, { ...app.config.breaker, observer: circuitMetrics }))
  app.decorate('pokeWorkers', () => {})
  app.decorate('pokeScheduler', () => {})
  app.decorate('pokeRefresh', () => {})
  const { delivery, fallback, camara, reachability, publicBaseUrl } = app.config
  const subscriptions = camara.subscriptionsUrl && app.camaraTokens
    ? new CamaraSubscriptions({
      baseUrl: camara.subscriptionsUrl,
      tokens: app.camaraTokens,
      timeoutMs: reachability.timeoutMs,
      retries: reachability.retries,
      retryBaseMs: reachability.retryBaseMs,
      retryMaxMs: reachability.retryMaxMs,
    })
    : null
  if (subscriptions) app.addHook('onClose', async () => subscriptions.close())
  const events = new ReachabilityEvents({
    store: app.store,
    reachability: app.reachability,
    subscriptions,
    sinkUrl: `${publicBaseUrl ?? ''}/v1/webhooks/camara`,
    sinkToken: camara.sinkToken ?? '',
    onWake: () => app.pokeScheduler(),
    log: app.log,
  })
  app.decorate('reachabilityEvents', events)
  app.decorate('notifications', new NotificationService({
    store: app.store,
    reachability: app.reachability,
    retentionSeconds: delivery.retentionSeconds,
    idempotencyTtlSeconds: delivery.idempotencyTtlSeconds,
    firstRecheckSeconds: fallback.firstCheckSeconds,
    onEnqueued: () => app.pokeWorkers(),
    onQueued: n => events.watch(n.request.to, n.id, Date.parse(n.expires_at)),
    onRouted: recordRoutingDecision,
    callbackPolicy: new CallbackPolicy({ signed: app.config.callbackSigningSecret !== undefined, allowedHosts: app.config.callbackAllowedHosts }),
  }))
}, { name: 'notifications', fastify: '5.x', dependencies: ['config', 'store', 'reachability'] })
