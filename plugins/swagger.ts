import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import fp from 'fastify-plugin'
import { jsonSchemaTransform, jsonSchemaTransformObject } from 'fastify-type-provider-zod'

// The version of the HTTP contract (the /v1 of the paths), not of the package.
const API_VERSION = '1.0.0'

export default fp(async (app) => {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'reachroute',
        version: API_VERSION,
        description: 'Delivers a customer notification over the channel that will actually reach the phone. ' +
          'Asks whether a phone is on the mobile network right now, and for DATA, SMS, both or nothing, then routes accordingly. ' +
          'Every /v1 route needs `Authorization: Bearer <JWT>` with the scope named on the route. Errors are RFC 9457 problem documents.',
      },
      tags: [
        { name: 'reachability', description: 'Is a phone on the network, and for what (scope reachability:read)' },
        { name: 'vonage-compatible', description: 'Vonage Identity Insights request and answer shapes, served through reachroute' },
        { name: 'notifications', description: 'Notify a customer over the channel that reaches the phone (scopes notifications:write, notifications:read)' },
        { name: 'campaigns', description: 'One message to many recipients, each routed by reachability, on lanes of their own (scopes campaigns:write, campaigns:read)' },
        { name: 'reports', description: 'Contact hygiene and IoT fleet reports, fleet scans (scope reports:read)' },
        { name: 'queue', description: 'The fallback queue, outboxes and dead letters (scope ops)' },
        { name: 'webhooks', description: 'Status webhooks from providers, verified by their signatures' },
        { name: 'ops', description: 'Health and readiness' },
      ],
      components: {
        securitySchemes: {
          bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'A JWT whose "scope" claim lists the scopes, space separated' },
          sinkToken: { type: 'http', scheme: 'bearer', description: 'The CAMARA sink access token (CAMARA_SINK_TOKEN) given to the operator at subscription' },
          vonageSignature: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'Vonage\'s HS256 webhook signature under VONAGE_SIGNATURE_SECRET, with payload_hash = SHA-256 of the body' },
        },
      },
    },
    transform: jsonSchemaTransform,
    transformObject: jsonSchemaTransformObject,
  })
  if (!app.config.docsEnabled) return
  if (app.config.docsAuth === 'ops') {
    // Every docs route needs the ops scope, Swagger UI's own files included: nothing of the docs is served without it.
    const guard = app.requireScope('ops')
    app.addHook('onRoute', route => {
      if (isDocsRoute(route.url)) route.onRequest = [...[route.onRequest ?? []].flat(), guard]
    })
  }
  // No validator badge: it would send the spec's URL to validator.swagger.io.
  await app.register(swaggerUi, { routePrefix: '/docs', uiConfig: { persistAuthorization: true, tryItOutEnabled: false, validatorUrl: null } })
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger())
}, { name: 'swagger', fastify: '5.x', dependencies: ['config', 'auth'] })

/** Swagger UI's routes (its page, files and spec) and /openapi.json. */
export function isDocsRoute (url: string): boolean {
  return url === '/docs' || url.startsWith('/docs/') || url === '/openapi.json'
}
