import fp from 'fastify-plugin'
import { CampaignService } from '../src/campaigns/service.js'

declare module 'fastify' {
  interface FastifyInstance {
    campaigns: CampaignService
    /** Wakes this process's campaign runner (set by the workers plugin; a no-op without workers). */
    pokeCampaigns: () => void
  }
}

export default fp(async (app) => {
  const { delivery } = app.config
  app.decorate('pokeCampaigns', () => {})
  const campaigns = new CampaignService({
    store: app.store,
    retentionSeconds: delivery.retentionSeconds,
    idempotencyTtlSeconds: delivery.idempotencyTtlSeconds,
    // The recipients are read in within the request's time: the key is held that long, and a minute to start it.
    idempotencyClaimSeconds: Math.ceil(app.config.requestTimeoutMs / 1000) + 60,
    onStarted: () => app.pokeCampaigns(),
    onIdempotencyUnsaved: (campaign, err) => app.log.warn({ err, campaign }, 'campaign started, but its answer could not be kept under its Idempotency-Key (err says why): a retry with the key is a 409 while the claim lasts, and may start the campaign again after'),
  })
  app.decorate('campaigns', campaigns)
}, { name: 'campaigns', fastify: '5.x', dependencies: ['config', 'store'] })
