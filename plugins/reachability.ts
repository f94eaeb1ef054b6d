import fp from 'fastify-plugin'
import { ReachabilityService } from '../src/reachability/service.js'
import { createUpstream } from '../src/reachability/upstreams/index.js'
import type { ReachabilityUpstream } from '../src/reachability/upstreams/upstream.js'

declare module 'fastify' {
  interface FastifyInstance {
    reachability: ReachabilityService
  }
}

export default fp<{ upstream?: ReachabilityUpstream }>(async (app, options) => {
  const { reachability } = app.config
  const upstream = options.upstream ?? createUpstream(app.config)
  if (!options.upstream) app.addHook('onClose', async () => upstream.close())
  await upstream.verifySetup?.()
  // The whole budget of one lookup: each attempt's timeout and the backoff between them.
  const deadlineMs = reachability.timeoutMs * (reachability.retries + 1) + reachability.retryMaxMs * reachability.retries
  app.decorate('reachability', new ReachabilityService({
    store: app.store,
    upstream,
    policy: reachability.ttl,
    maxStaleSeconds: reachability.maxStaleSeconds,
    deadlineMs,
  }))
  app.log.info({ upstream: upstream.name }, `reachability upstream: ${upstream.name}`)
}, { name: 'reachability', fastify: '5.x', dependencies: ['config', 'store'] })
