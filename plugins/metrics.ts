import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import fp from 'fastify-plugin'
import type { ZodTypeProvider } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { observeHttpRequest } from '../src/metrics/http.js'
import { QueueGauges } from '../src/metrics/queues.js'
import { collectProcessMetrics, register } from '../src/metrics/registry.js'
import { QueueOps } from '../src/queue/ops.js'
import { problems } from '../routes/schemas/problem.js'
import { bareProblem, clientErrorResponse, PROBLEM_CONTENT_TYPE, type Problem } from './errors.js'

declare module 'fastify' {
  interface FastifyInstance {
    metrics: {
      /** Every metric as Prometheus text, the queue gauges read afresh (or from their short cache). */
      scrape (): Promise<string>
      /** Serves GET /metrics alone, without auth, on a port of its own (METRICS_PORT); closed with the app. Resolves to its URL. */
      listen (port: number, host: string): Promise<string>
    }
  }
}

export interface MetricsPluginOptions {
  /** Serve GET /metrics on the app's own port, unless METRICS_PORT moves it (default true; false for the worker process). */
  route?: boolean
  /** How long a reading of the queue depths is served again (default 5 s). */
  queueStateCacheMs?: number
}

/**
 * Prometheus metrics: process metrics, HTTP request durations by route pattern, and the queue depths, read from the
 * store on scrape. The domain's own metrics (src/metrics/) are recorded wherever they happen, in the default registry.
 */
export default fp<MetricsPluginOptions>(async (app, options) => {
  collectProcessMetrics()
  const ops = new QueueOps(app.store)
  const queues = new QueueGauges({ read: () => ops.state(), cacheMs: options.queueStateCacheMs ?? 5000 })
  const scrape = async (): Promise<string> => {
    await queues.refresh().catch((err: unknown) => app.log.warn({ err }, 'metrics: the queue state cannot be read; the queue gauges keep their last values'))
    return register.metrics()
  }

  let server: Server | undefined
  const listen = async (port: number, host: string): Promise<string> => {
    const listener = createServer((req, res) => {
      // Node sends no body to a HEAD, whatever is written: the problem's headers alone, as on the main port.
      const refuse = (problem: Problem, headers: Record<string, string> = {}) => {
        const body = JSON.stringify(problem)
        res.writeHead(problem.status, { 'content-type': PROBLEM_CONTENT_TYPE, 'content-length': Buffer.byteLength(body), ...headers }).end(body)
      }
      if (req.url?.split('?')[0] !== '/metrics') {
        refuse(bareProblem(404, 'not-found', 'Not found', path => `no route for ${req.method} ${path}: only GET /metrics is served on this port`, req.url))
        return
      }
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        refuse(bareProblem(405, 'method-not-allowed', 'Method not allowed', () => `${req.method} is not answered here: send GET (or HEAD)`, req.url), { allow: 'GET, HEAD' })
        return
      }
      scrape().then(
        body => res.writeHead(200, { 'content-type': register.contentType }).end(req.method === 'HEAD' ? undefined : body),
        (err: unknown) => {
          app.log.error({ err }, 'metrics: scrape failed')
          refuse(bareProblem(500, 'internal-error', 'Internal error', () => 'the metrics could not be gathered; the logs say why', req.url))
        })
    })
    // A request the HTTP parser refuses gets a problem document too (Node's own answer has no body).
    listener.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
      if (err.code === 'ECONNRESET' || !socket.writable) {
        socket.destroy()
        return
      }
      socket.end(clientErrorResponse(err.code), () => socket.destroy())
    })
    await new Promise<void>((resolve, reject) => {
      listener.once('error', reject)
      listener.listen(port, host, () => resolve())
    })
    server = listener
    const { address, port: bound } = listener.address() as AddressInfo
    return `http://${address.includes(':') ? `[${address}]` : address}:${bound}/metrics`
  }
  app.decorate('metrics', { scrape, listen })
  app.addHook('onClose', async () => {
    if (!server) return
    const closing = new Promise<void>(resolve => server!.close(() => resolve()))
    server.closeAllConnections()
    await closing
  })

  // A callback hook: it runs on every request. The route pattern, never the raw URL, keeps the label set bounded.
  app.addHook('onResponse', (request, reply, done) => {
    observeHttpRequest(request.method, request.routeOptions.url, reply.statusCode, reply.elapsedTime / 1000)
    done()
  })

  const { auth, port } = app.config.metrics
  if (options.route === false || port !== undefined) return
  if (auth === 'ops' && !app.hasDecorator('requireScope')) throw new Error('METRICS_AUTH=ops needs the auth plugin registered before the metrics plugin')
  app.withTypeProvider<ZodTypeProvider>().get('/metrics', {
    // HEAD too, as on the METRICS_PORT listener: a scrape reads the store, writes nothing and asks no upstream.
    config: { head: true },
    schema: {
      tags: ['ops'],
      operationId: 'metrics',
      summary: 'Prometheus metrics',
      description: 'Prometheus text format: HTTP request durations by route and status, reachability lookups by source and status code, ' +
        'upstream call durations and errors, routing decisions by channel and reason, outbox and fallback-queue depths and age ' +
        '(read from the store at most every 5 s), deliveries by channel, provider and outcome, circuit breaker states and rejections, ' +
        'Node process metrics. Needs a token with the ops scope when METRICS_AUTH=ops (the default with NODE_ENV=production); ' +
        'with METRICS_PORT set it is served on that port only, without auth.',
      // Optional where METRICS_AUTH is none, so Swagger UI sends a token it holds either way.
      security: auth === 'ops' ? [{ bearerAuth: [] }] : [{}, { bearerAuth: [] }],
      response: {
        200: {
          description: 'Every metric, in the Prometheus text exposition format 0.0.4',
          content: { 'text/plain': { schema: z.string().meta({ description: 'Prometheus text exposition format: # HELP and # TYPE lines, then one sample per line' }) } },
        },
        401: { ...problems[401], description: 'With METRICS_AUTH=ops: no bearer token, or the token was refused' },
        403: { ...problems[403], description: 'With METRICS_AUTH=ops: the token lacks the ops scope' },
      },
    },
    ...(auth === 'ops' ? { onRequest: app.requireScope('ops') } : {}),
  }, async (_request, reply) => {
    const body = await scrape()
    return reply.type(register.contentType).send(body)
  })
}, { name: 'metrics', fastify: '5.x', dependencies: ['config', 'store'] })
