import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import authPlugin from '../plugins/auth.js'
import campaignsPlugin from '../plugins/campaigns.js'
import configPlugin from '../plugins/config.js'
import errorsPlugin, { clientErrorResponse, sendProblem, toProblem } from '../plugins/errors.js'
import headRequestsPlugin from '../plugins/head-requests.js'
import metricsPlugin from '../plugins/metrics.js'
import noBodyPlugin from '../plugins/no-body.js'
import notificationsPlugin from '../plugins/notifications.js'
import reachabilityPlugin from '../plugins/reachability.js'
import rateLimitPlugin from '../plugins/rate-limit.js'
import securityHeadersPlugin from '../plugins/security-headers.js'
import { serializerCompiler } from '../plugins/serializer.js'
import storePlugin from '../plugins/store.js'
import swaggerPlugin from '../plugins/swagger.js'
import workersPlugin from '../plugins/workers.js'
import healthRoutes from '../routes/health/index.js'
import campaignRoutes from '../routes/v1/campaigns/index.js'
import identityInsightsRoutes from '../routes/identity-insights/index.js'
import notificationRoutes from '../routes/v1/notifications/index.js'
import queueRoutes from '../routes/v1/queue/index.js'
import reportRoutes from '../routes/v1/reports/index.js'
import camaraWebhookRoutes from '../routes/webhooks/camara.js'
import vonageWebhookRoutes from '../routes/webhooks/vonage.js'
import reachabilityRoutes from '../routes/v1/reachability/index.js'
import type { Channels } from './channels/channel.js'
import { ShuttingDownError } from './domain/errors.js'
import { parseJsonBody, utf8Body } from './http/json-body.js'
import { headersProblem } from './http/request-headers.js'
import type { Config } from './config.js'
import { validatorCompiler } from './http/validator.js'
import { loggerOptions, requestLogger } from './logging.js'
import type { ReachabilityUpstream } from './reachability/upstreams/upstream.js'
import type { Store } from './store/store.js'

export interface AppOptions {
  config: Config
  logger?: FastifyServerOptions['logger']
  /** Replacements for tests; by default each is built from the config. */
  store?: Store
  upstream?: ReachabilityUpstream
  channels?: Channels
}

const REQUEST_ID = /^[\w.:@/+=-]{1,128}$/

/** The background workers alone, for `npm run worker`: no routes, nothing listens. */
export async function buildWorker (options: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({ logger: loggerOptions(options.config.logLevel, options.logger) })
  await app.register(configPlugin, { config: options.config })
  await app.register(storePlugin, options.store ? { store: options.store } : {})
  await app.register(metricsPlugin, { route: false })
  await app.register(reachabilityPlugin, options.upstream ? { upstream: options.upstream } : {})
  await app.register(notificationsPlugin, options.channels ? { channels: options.channels } : {})
  await app.register(campaignsPlugin)
  await app.register(workersPlugin, { force: true })
  return app
}

/** Builds the whole service without listening: server.ts starts it, tests inject into it. */
export async function buildApp (options: AppOptions): Promise<FastifyInstance> {
  const { config } = options
  const app = Fastify({
    logger: loggerOptions(config.logLevel, options.logger),
    // The caller's X-Request-Id names the request when it is a plausible id (it goes into every log line); else a new UUID.
    requestIdHeader: false,
    childLoggerFactory: requestLogger,
    genReqId: request => {
      const given = request.headers['x-request-id']
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : crypto.randomUUID()
    },
    bodyLimit: 1024 * 1024,
    // A request (headers and body) must arrive within REQUEST_TIMEOUT_MS, or it is a 408 (the clientErrorHandler
    // below) and the connection is closed: a stalled body holds no socket or handler for ever. Node checks the
    // open requests every connectionsCheckingInterval, so a tenth of the timeout keeps it within 10% late.
    requestTimeout: config.requestTimeoutMs,
    http: {
      requestTimeout: config.requestTimeoutMs,
      headersTimeout: Math.min(60_000, config.requestTimeoutMs),
      connectionsCheckingInterval: Math.min(30_000, Math.ceil(config.requestTimeoutMs / 10)),
    },
    // Requests that arrive while the server drains get our own 503 problem (the onRequest hook below).
    return503OnClosing: false,
    routerOptions: { ignoreTrailingSlash: true },
    // Malformed URLs are refused before any hook runs: still a problem document naming the request, with the
    // headers the security-headers plugin's onRequest hook would have set.
    frameworkErrors: (err, request, reply) => {
      reply.headers(app.apiSecurityHeaders).header('x-request-id', request.id)
      sendProblem(reply, toProblem(err, request).problem)
    },
    // A request the HTTP parser refuses (headers too large, a bad header, Content-Length with Transfer-Encoding)
    // gets a problem document too, written to the socket: no request or reply exists for it.
    clientErrorHandler: (err, socket) => {
      if (err.code === 'ECONNRESET' || socket.destroyed) return
      app.log.debug({ code: err.code }, 'client error')
      // Not into an answer already under way (a pipelined request's): that would corrupt it for the client.
      const inFlight = (socket as { _httpMessage?: { headersSent?: boolean } })._httpMessage?.headersSent === true
      if (!socket.writable || inFlight) {
        socket.destroy()
        return
      }
      socket.end(clientErrorResponse(err.code, app.apiSecurityHeaders), () => socket.destroy())
    },
  }).withTypeProvider<ZodTypeProvider>()
  // Every body is JSON (or a campaign's NDJSON): text/plain is a 415 like any other type, not a string handed to a
  // route (a campaign action or a dead letter's DELETE would act on it).
  app.removeContentTypeParser('text/plain')
  // JSON as Fastify parses it, with problems that say where it breaks or which key was refused.
  app.removeContentTypeParser('application/json')
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (request, body, done) => {
    // An empty body (sent chunked: its headers said one follows) is none to a route that takes none (plugins/no-body.ts).
    if ((body as Buffer).length === 0 && request.routeOptions.config.emptyBodyIsNone === true) {
      done(null, undefined)
      return
    }
    let parsed: unknown
    try {
      parsed = parseJsonBody(utf8Body(body as Buffer))
    } catch (err) {
      done(err as Error, undefined)
      return
    }
    done(null, parsed)
  })
  app.setValidatorCompiler(validatorCompiler)
  app.setSerializerCompiler(serializerCompiler)
  let closing = false
  app.addHook('preClose', done => {
    closing = true
    done()
  })
  // A callback hook, not an async one: this runs on every request. (Headers no route takes are refused here too,
  // and a method a path does not take, not in hooks of their own: a few property reads, where another hook would
  // cost every request its call.)
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id)
    done(closing ? new ShuttingDownError() : headersProblem(request.headers, request.raw.rawHeaders) ?? (request.is404 ? app.methodNotAllowed(request) : undefined))
  })

  await app.register(configPlugin, { config })
  await app.register(errorsPlugin)
  await app.register(storePlugin, options.store ? { store: options.store } : {})
  await app.register(authPlugin)
  // Before every route: their onRoute hooks set each route's rate limit and headers, the docs' included.
  await app.register(rateLimitPlugin)
  await app.register(securityHeadersPlugin)
  // Before swagger too: it marks the HEAD routes the spec documents.
  await app.register(headRequestsPlugin)
  await app.register(noBodyPlugin)
  await app.register(swaggerPlugin)
  await app.register(reachabilityPlugin, options.upstream ? { upstream: options.upstream } : {})
  await app.register(notificationsPlugin, options.channels ? { channels: options.channels } : {})
  await app.register(campaignsPlugin)
  await app.register(workersPlugin)
  await app.register(metricsPlugin)

  await app.register(healthRoutes)
  await app.register(reachabilityRoutes, { prefix: '/v1/reachability' })
  await app.register(notificationRoutes, { prefix: '/v1/notifications' })
  await app.register(queueRoutes, { prefix: '/v1/queue' })
  await app.register(reportRoutes, { prefix: '/v1/reports' })
  await app.register(campaignRoutes, { prefix: '/v1/campaigns' })
  await app.register(vonageWebhookRoutes, { prefix: '/v1/webhooks/vonage' })
  await app.register(camaraWebhookRoutes, { prefix: '/v1/webhooks/camara' })
  await app.register(identityInsightsRoutes)
  return app
}
