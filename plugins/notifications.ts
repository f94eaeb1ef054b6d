import fp from 'fastify-plugin'
import type { Channels } from '../src/channels/channel.js'
import { createChannels } from '../src/channels/index.js'
import { NotificationService } from '../src/notifications/service.js'

declare module 'fastify' {
  interface FastifyInstance {
    notifications: NotificationService
    channels: Channels
    /** Wakes this process's delivery worker (set by the workers plugin; a no-op without workers). */
    pokeWorkers: () => void
  }
}

export default fp<{ channels?: Channels }>(async (app, options) => {
  const channels = options.channels ?? createChannels(app.config, (obj, msg) => app.log.info(obj, msg))
  if (!options.channels) app.addHook('onClose', async () => { await Promise.all([channels.sms.close(), channels.push.close()]) })
  app.decorate('channels', channels)
  app.decorate('pokeWorkers', () => {})
  const { delivery, fallback } = app.config
  app.decorate('notifications', new NotificationService({
    store: app.store,
    reachability: app.reachability,
    retentionSeconds: delivery.retentionSeconds,
    idempotencyTtlSeconds: delivery.idempotencyTtlSeconds,
    firstRecheckSeconds: fallback.firstCheckSeconds,
    onEnqueued: () => app.pokeWorkers(),
  }))
}, { name: 'notifications', fastify: '5.x', dependencies: ['config', 'store', 'reachability'] })
