import fp from 'fastify-plugin'
import { CallbackSender } from '../src/notifications/callbacks.js'
import { DeliveryWorker } from '../src/queue/delivery-worker.js'

declare module 'fastify' {
  interface FastifyInstance {
    deliveryWorker: DeliveryWorker | null
  }
}

/** Runs the background workers in this process when WORKERS=on (the embedded default, and `npm run worker`). */
export default fp<{ force?: boolean }>(async (app, options) => {
  const { workers, delivery, channels, callbackSigningSecret } = app.config
  if (!workers.enabled && !options.force) {
    app.decorate('deliveryWorker', null)
    return
  }
  const callbacks = new CallbackSender({ secret: callbackSigningSecret, timeoutMs: channels.timeoutMs })
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
  })
  app.decorate('deliveryWorker', worker)
  app.pokeWorkers = () => worker.poke()
  app.addHook('onReady', async () => {
    worker.start()
    app.log.info({ consumer: worker.consumer }, 'delivery worker started')
  })
  // Runs before the store closes (hooks run in reverse order of registration).
  app.addHook('onClose', async () => {
    await worker.stop()
    await callbacks.close()
  })
}, { name: 'workers', fastify: '5.x', dependencies: ['config', 'store', 'notifications'] })
