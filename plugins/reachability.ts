import fp from 'fastify-plugin'
import type { AccessTokenProvider } from '../src/auth/oauth-token.js'
import { circuitMetrics } from '../src/metrics/circuits.js'
import { MeteredUpstream, recordLookup } from '../src/metrics/reachability.js'
import { ReachabilityService } from '../src/reachability/service.js'
import { camaraAccessTokens } from '../src/reachability/upstreams/camara-auth.js'
import { CircuitBreakerUpstream } from '../src/reachability/upstreams/circuit-breaker.js'
import { createUpstream } from '../src/reachability/upstreams/index.js'
import type { ReachabilityUpstream } from '../src/reachability/upstreams/upstream.js'

declare module 'fastify' {
  interface FastifyInstance {
    reachability: ReachabilityService
    /** The CAMARA access tokens, one provider for the upstream and the subscriptions client; null without CAMARA. */
    camaraTokens: AccessTokenProvider | null
  }
}

export default fp<{ upstream?: ReachabilityUpstream }>(async (app, options) => {
  const { reachability } = app.config
  // One provider, so one token request per token lifetime. Closed after the upstream here, and after the subscriptions
  // client too: onClose hooks run in reverse order of registration, and the notifications plugin registers later.
  const camaraTokens = reachability.provider === 'camara' ? camaraAccessTokens(app.config, app.log) : null
  app.decorate('camaraTokens', camaraTokens)
  const adapter = options.upstream ?? createUpstream(app.config, camaraTokens)
  app.addHook('onClose', async () => {
    if (!options.upstream) await adapter.close()
    await camaraTokens?.close()
  })
  // The breaker outside the timing: calls it turns away are counted as rejections, not as upstream calls.
  const upstream = new CircuitBreakerUpstream(new MeteredUpstream(adapter), { ...app.config.breaker, observer: circuitMetrics })
  await upstream.verifySetup?.()
  // The whole budget of one lookup: each attempt's timeout and the backoff between them.
  const deadlineMs = reachability.timeoutMs * (reachability.retries + 1) + reachability.retryMaxMs * reachability.retries
  app.decorate('reachability', new ReachabilityService({
    store: app.store,
    upstream,
    policy: reachability.ttl,
    maxStaleSeconds: reachability.maxStaleSeconds,
    deadlineMs,
    ...(reachability.provider === 'vonage' ? { defaultPurpose: app.config.vonage.purpose } : {}),
    onResult: recordLookup,
  }))
  app.log.info({ upstream: upstream.name }, `reachability upstream: ${upstream.name}`)
}, { name: 'reachability', fastify: '5.x', dependencies: ['config', 'store'] })
