// bench/notify-layers: the stack of POST /v1/notifications built up one layer at a time (LAYER=1..6), each a
// process of its own, to show what each layer costs beside bare Fastify. Layer 1 is the yardstick: one
// Lua round trip (cache GET, idempotency SET NX, XADD). The service's own modules come from dist/ (built first).
import Fastify from 'fastify'
import rateLimit from '@fastify/rate-limit'
import { validatorCompiler } from '../dist/src/http/validator.js'
import { Redis } from 'ioredis'
import { serializerCompiler } from '../dist/plugins/serializer.js'
import { AcceptAnswerSchema, NotificationBody } from '../dist/routes/schemas/notification.js'
import { RedisWindowCounter } from '../dist/src/http/rate-limit.js'
import { loggerOptions, requestLogger } from '../dist/src/logging.js'
import { observeHttpRequest } from '../dist/src/metrics/http.js'
import { NOTIFY_NUMBER } from './lib/notify-request.mjs'

const layer = Number(process.env.LAYER)
const prefix = process.env.PREFIX
const redis = new Redis(process.env.REDIS_URL, { enableAutoPipelining: true })
redis.defineCommand('accept', {
  numberOfKeys: 3,
  lua: `local cached = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[2], ARGV[1], 'NX', 'EX', 60)
redis.call('XADD', KEYS[3], 'MAXLEN', '~', 10000, '*', 'job', ARGV[2])
return cached`,
})
const [cacheKey, streamKey] = [`${prefix}{l}:cache`, `${prefix}{l}:outbox`]
await redis.set(cacheKey, JSON.stringify({ is_reachable: true, connectivity: ['DATA', 'SMS'] }), 'EX', 3600)

const app = Fastify({
  logger: layer >= 4 ? loggerOptions('warn') : false,
  ...(layer >= 4 ? { childLoggerFactory: requestLogger } : {}),
  requestIdHeader: false,
  ...(layer >= 2 ? { genReqId: () => crypto.randomUUID() } : {}),
})
app.setValidatorCompiler(validatorCompiler)
app.setSerializerCompiler(serializerCompiler)
if (layer >= 2) {
  // The headers the service sends on every API answer (plugins/security-headers.ts and the request id).
  const headers = {
    'content-security-policy': "default-src 'none';base-uri 'none';form-action 'none';frame-ancestors 'none'",
    'cross-origin-opener-policy': 'same-origin', 'cross-origin-resource-policy': 'same-origin', 'origin-agent-cluster': '?1',
    'referrer-policy': 'no-referrer', 'x-content-type-options': 'nosniff', 'x-dns-prefetch-control': 'off', 'x-download-options': 'noopen',
    'x-frame-options': 'DENY', 'x-permitted-cross-domain-policies': 'none', 'x-xss-protection': '0', 'cache-control': 'no-store',
  }
  app.addHook('onRequest', (request, reply, done) => {
    reply.header('x-request-id', request.id)
    reply.headers(headers)
    done()
  })
}
if (layer >= 5) {
  const counter = new RedisWindowCounter(redis, prefix)
  await app.register(rateLimit, {
    global: false, hook: 'preParsing', enableDraftSpec: true, skipOnError: true,
    store: function SharedCounter () { return counter },
    keyGenerator: () => 'notifications:sub:bench',
  })
}
if (layer >= 6) {
  app.addHook('onResponse', (request, reply, done) => {
    observeHttpRequest(request.method, request.routeOptions.url, reply.statusCode, reply.elapsedTime / 1000)
    done()
  })
}

app.get('/healthz', async () => ({ status: 'ok' }))
const reachability = {
  phone_number: NOTIFY_NUMBER, is_reachable: true, connectivity: ['DATA', 'SMS'], latest_status_at: new Date().toISOString(),
  status: { code: 'OK', message: 'Success' }, checked_at: new Date().toISOString(), source: 'cache',
}
let n = 0
app.post('/v1/notifications', {
  ...(layer >= 5 ? { config: { rateLimit: { max: 1_000_000_000, timeWindow: 60_000 } } } : {}),
  schema: {
    ...(layer >= 3 ? { body: NotificationBody } : {}),
    ...(layer >= 2 ? { response: { 202: AcceptAnswerSchema } } : {}),
  },
}, async (request, reply) => {
  const id = `ntf_00_${process.pid}_${n++}`
  await redis.accept(cacheKey, `${prefix}{l}:idem:${id}`, streamKey, id, JSON.stringify(request.body))
  if (layer < 2) return reply.code(202).send({ id, status: 'queued', channel: 'push' })
  return reply.code(202).send({
    id, status: 'queued', channel: 'push', reason: 'connected for DATA and SMS; push preferred and a push token was given',
    reachability, client_ref: 'bench', metadata: null, created_at: new Date().toISOString(),
  })
})
await app.listen({ port: Number(process.env.PORT), host: '127.0.0.1' })
