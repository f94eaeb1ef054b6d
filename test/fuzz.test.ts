import { createHash } from 'node:crypto'
import diagnostics from 'node:diagnostics_channel'
import t from 'tap'
import fc from 'fast-check'
import type { FastifyInstance, InjectOptions, RouteOptions } from 'fastify'
import { Redis } from 'ioredis'
import { SignJWT } from 'jose'
import { buildWorker } from '../src/app.js'
import { SandboxPushChannel, SandboxSmsChannel } from '../src/channels/sandbox.js'
import { SandboxUpstream } from '../src/reachability/upstreams/sandbox.js'
import { buildTestApp, testConfig } from './helpers/app.js'
import { dropPrefix, REDIS_URL, redisAvailable, uniquePrefix } from './helpers/redis.js'
import { CountingUpstream } from './helpers/upstream.js'

// Every route, with random and malformed paths, queries, headers and bodies: never a 5xx; and a request
// that is refused (4xx), or is a HEAD whatever its answer, stores, queues, sends and asks the upstream nothing.

const haveRedis = await redisAvailable()
// A database of its own: the store is read whole before and after every request, and db 0 of a shared Redis holds many keys.
const FUZZ_REDIS_URL = (() => {
  const url = new URL(REDIS_URL)
  url.pathname = '/11'
  return url.toString()
})()
const RUNS = Number(process.env.FUZZ_RUNS ?? 100)
const SINK_TOKEN = 'camara-sink-token-for-the-fuzz-test'
const VONAGE_SECRET = 'vonage-signature-secret-for-the-fuzz'
const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])

/** Valid bodies to mutate, so that the fuzz also reaches past the first check. */
const VALID_BODIES: Record<string, unknown> = {
  '/v1/notifications': {
    to: '+990123400',
    message: { sms: { text: 'Your code is 123456' }, push: { title: 'Sign-in code', body: 'Your code is 123456', data: { k: 'v' } } },
    push_token: 'fcm-token', routing: { prefer: 'push', channels: ['push', 'sms'], on_unreachable: 'queue', ttl_seconds: 3600 },
    client_ref: 'order-1', metadata: { order: '1' },
  },
  '/v1/reachability/batch': { phone_numbers: ['+990123400', '+990123411'], max_age: 60 },
  '/identity-insights/v1/requests': { phone_number: '+990123400', purpose: 'FraudPreventionAndDetection', insights: { reachability: {} } },
  '/v0.1/identity-insights': { phone_number: '+990123400', insights: { reachability: {} } },
  '/v1/queue/dead/:id/retry': { ttl_seconds: 3600 },
  '/v1/webhooks/vonage/messages': { message_uuid: 'm-1', to: '990123411', timestamp: '2026-11-25T10:00:00Z', status: 'delivered', client_ref: 'ntf_07_00000000000000000000000000000000' },
  '/v1/webhooks/camara': {
    id: 'ev-1', source: 'https://operator.example/s/1', type: 'org.camaraproject.device-reachability-status-subscriptions.v0.reachability-data',
    specversion: '1.0', time: '2026-11-25T10:41:38.657Z', data: { device: { phoneNumber: '+990123444' }, subscriptionId: 's-1' },
  },
}

const NASTY_STRINGS = [
  '', ' ', '__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', '../../../../etc/passwd', '..%2f..%2fetc%2fpasswd',
  '%00', '\u0000', '%', '%E0%A4%A', '+990123400', '990123400', '+447911123456', '+99', '+', '٣٤٥٦٧٨٩٠١٢', '😀'.repeat(50),
  'ntf_07_00000000000000000000000000000000', 'null', 'undefined', 'NaN', '-1', '1e308', '0x10', '[]', '{}', 'true', '<script>alert(1)</script>',
  "' OR 1=1 --", '${jndi:ldap://x}', 'a'.repeat(5000),
]
const nastyString = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...NASTY_STRINGS) },
  { weight: 3, arbitrary: fc.string({ unit: 'grapheme', maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 1, arbitrary: fc.string({ minLength: 2000, maxLength: 20_000 }) },
)
const anyJson = fc.jsonValue({ maxDepth: 4 })
const PROTO_KEYS = ['__proto__', 'constructor', 'prototype']

/** One change to a valid value: a field replaced by anything, removed, or an extra (often prototype-polluting) key added. */
function mutate (value: unknown): fc.Arbitrary<unknown> {
  if (value === null || typeof value !== 'object') return fc.oneof(anyJson, nastyString, fc.constant(value))
  const entries = Array.isArray(value) ? value.map((v, i) => [String(i), v] as const) : Object.entries(value)
  const rebuild = (change: (copy: Record<string, unknown>) => void) => {
    const copy: Record<string, unknown> = Array.isArray(value) ? [...value] as unknown as Record<string, unknown> : { ...value as Record<string, unknown> }
    change(copy)
    return copy
  }
  const options: fc.Arbitrary<unknown>[] = [
    fc.tuple(fc.oneof(fc.constantFrom(...PROTO_KEYS), fc.string({ maxLength: 20 })), anyJson)
      .map(([key, extra]) => rebuild(copy => { Object.defineProperty(copy, key, { value: extra, enumerable: true, configurable: true, writable: true }) })),
  ]
  if (entries.length > 0) {
    options.push(fc.constantFrom(...entries.map(([k]) => k)).map(key => rebuild(copy => { delete copy[key] })))
    options.push(fc.constantFrom(...entries).chain(([key, inner]) => mutate(inner).map(changed => rebuild(copy => { copy[key] = changed }))))
  }
  return fc.oneof(...options)
}

function bodyFor (url: string): fc.Arbitrary<{ payload?: string, contentType?: string }> {
  const valid = VALID_BODIES[url]
  const json = (value: unknown) => JSON.stringify(value) ?? 'null'
  const contentType = fc.oneof(
    { weight: 6, arbitrary: fc.constant(url === '/v1/webhooks/camara' ? 'application/cloudevents+json' : 'application/json') },
    { weight: 1, arbitrary: fc.constantFrom('application/json; charset=utf-8', 'text/plain', 'application/x-www-form-urlencoded', 'application/x-ndjson',
      'multipart/form-data; boundary=x', 'application/cloudevents+json', 'application/json; charset=latin1', 'application/xml', '*/*', 'json', ';;;') },
    { weight: 1, arbitrary: fc.string({ unit: 'grapheme-ascii', maxLength: 40 }) },
  )
  const payload = fc.oneof(
    { weight: valid ? 6 : 1, arbitrary: valid ? mutate(valid).map(json) : anyJson.map(json) },
    { weight: 2, arbitrary: anyJson.map(json) },
    { weight: 1, arbitrary: fc.constantFrom(
      '{"__proto__": {"polluted": true}}', '{"constructor": {"prototype": {"polluted": true}}}', '{"a": 1,}', '{', '[', '"', '{"a": 1}{"b": 2}',
      '\u0000', 'null', '', '1'.repeat(400), `{"phone_numbers": [${Array(2000).fill('"+990123400"').join(',')}]}`) },
    { weight: 1, arbitrary: fc.string({ unit: 'grapheme', maxLength: 200 }) },
    { weight: 1, arbitrary: fc.string({ minLength: 20_000, maxLength: 80_000 }).map(s => json({ pad: s })) },
  )
  return fc.record({ payload: fc.option(payload, { nil: undefined, freq: 10 }), contentType: fc.option(contentType, { nil: undefined, freq: 10 }) })
}

function pathFor (url: string): fc.Arbitrary<string> {
  const parts = url.split(/(:[A-Za-z_]+|\*)/)
  const pieces = parts.map(part => part.startsWith(':') || part === '*'
    ? fc.oneof(
      { weight: 5, arbitrary: nastyString.map(s => encodeURIComponent(s)) },
      { weight: 1, arbitrary: fc.constantFrom('%E0%A4%A', '%', '%zz', '..%2F..%2F', '%2e%2e/%2e%2e/etc/passwd', 'a/b/c', '.') },
    )
    : fc.constant(part))
  return fc.tuple(...pieces).map(p => p.join(''))
}

const query = fc.option(fc.dictionary(
  fc.oneof(fc.constantFrom('max_age', 'limit', 'cursor', '__proto__', 'constructor', '__proto__[polluted]', 'constructor[prototype][polluted]'), fc.string({ maxLength: 10 })),
  fc.oneof(nastyString, fc.integer().map(String), fc.constantFrom('-1', '86401', '1.5', '1e3', '0x10', '')),
  { maxKeys: 4 },
).map(q => new URLSearchParams(q).toString()), { nil: undefined })

const headerValue = fc.string({ unit: 'grapheme-ascii', maxLength: 300 })

interface Snapshot { redis: string, upstream: number, sms: number, push: number }

/** The keys under ARGV[1] but those under ARGV[2], sorted: their count, and a SHA-1 of each key and its DUMP. */
const SNAPSHOT = `local keys, cursor = {}, '0'
repeat
  local found = redis.call('SCAN', cursor, 'MATCH', ARGV[1] .. '*', 'COUNT', 1000)
  cursor = found[1]
  for _, key in ipairs(found[2]) do
    if string.sub(key, 1, #ARGV[2]) ~= ARGV[2] then keys[#keys + 1] = key end
  end
until cursor == '0'
table.sort(keys)
local parts = {}
for _, key in ipairs(keys) do
  parts[#parts + 1] = key
  parts[#parts + 1] = redis.call('DUMP', key) or ''
end
return #keys .. ':' .. redis.sha1hex(table.concat(parts, '\\0'))`

t.test('every route, fuzzed: never a 5xx; a refused request, or any HEAD, stores, queues, sends and asks nothing', { skip: haveRedis ? false : `no Redis at ${REDIS_URL}` }, async t => {
  const prefix = uniquePrefix()
  const upstream = new CountingUpstream(new SandboxUpstream({ comebackSeconds: 1 }))
  const sms = new SandboxSmsChannel({ log: () => {} })
  const push = new SandboxPushChannel({ log: () => {} })
  const env = {
    REDIS_URL: FUZZ_REDIS_URL, REDIS_KEY_PREFIX: prefix, QUEUE_SHARDS: '2', CAMARA_SINK_TOKEN: SINK_TOKEN, VONAGE_SIGNATURE_SECRET: VONAGE_SECRET,
    // The limiter runs on every request but never refuses: a 429 would end a case before it reaches anything.
    RATE_LIMIT_NOTIFICATIONS_PER_MINUTE: '1000000', RATE_LIMIT_REACHABILITY_PER_MINUTE: '1000000', RATE_LIMIT_OPS_PER_MINUTE: '1000000', RATE_LIMIT_DEFAULT_PER_MINUTE: '1000000',
  }
  const routes: RouteOptions[] = []
  const capture = (message: unknown) => { (message as { fastify: FastifyInstance }).fastify.addHook('onRoute', route => { routes.push(route) }) }
  diagnostics.subscribe('fastify.initialization', capture)
  let built
  try {
    built = await buildTestApp(env, { upstream, channels: { sms, push } })
  } finally {
    diagnostics.unsubscribe('fastify.initialization', capture)
  }
  const { app, bearer } = built
  const redis = new Redis(FUZZ_REDIS_URL)
  t.teardown(async () => {
    await app.close()
    redis.disconnect()
    await dropPrefix(prefix, FUZZ_REDIS_URL)
  })
  const tokens = [await bearer(), await bearer(), await bearer(), await bearer('reachability:read'), await bearer('ops', 'operator')]

  /**
   * Every key under the prefix and its exact value (DUMP), but the rate limiter's counters: their count and a digest,
   * made in Redis by one script (a DUMP round trip per key made the run slower with every notification accepted).
   */
  const snapshot = async (): Promise<Snapshot> => {
    const digest = await redis.eval(SNAPSHOT, 0, prefix, `${prefix}{rl:`) as string
    return { redis: digest, upstream: upstream.calls.length, sms: sms.deliveries().length, push: push.deliveries().length }
  }

  const sign = async (body: string) => new SignJWT({ payload_hash: createHash('sha256').update(body).digest('hex') })
    .setProtectedHeader({ alg: 'HS256' }).setIssuedAt().sign(new TextEncoder().encode(VONAGE_SECRET))

  const seen = new Set<string>()
  const fuzzed = routes
    .flatMap(r => [r.method].flat().map(method => ({ method, url: r.url })))
    .filter(r => !seen.has(`${r.method} ${r.url}`) && seen.add(`${r.method} ${r.url}`))
  t.ok(fuzzed.filter(r => r.method !== 'HEAD').length >= 15, `${fuzzed.length} routes: ${fuzzed.map(r => `${r.method} ${r.url}`).join(', ')}`)
  t.ok(fuzzed.some(r => r.method === 'HEAD' && r.url === '/v1/reachability/:phone_number'), 'HEAD routes too')
  // A path that is no route at all goes to the not-found handler.
  fuzzed.push({ method: 'GET', url: '/*' }, { method: 'HEAD', url: '/*' }, { method: 'POST', url: '/v1/*' })

  let accepted = 0
  let refused = 0
  const started = Date.now()
  for (const route of fuzzed) {
    const request = fc.record({
      path: pathFor(route.url),
      query,
      body: BODY_METHODS.has(route.method) ? bodyFor(route.url) : fc.option(bodyFor(route.url), { nil: undefined, freq: 5 }),
      auth: fc.oneof(
        { weight: 8, arbitrary: fc.constantFrom(...tokens) },
        { weight: 1, arbitrary: fc.constantFrom(undefined, '', 'Bearer', 'Bearer a.b.c', `Bearer ${SINK_TOKEN}`, 'Basic dXNlcjpwYXNz', `Bearer ${'x'.repeat(9000)}`) },
        { weight: 1, arbitrary: headerValue },
      ),
      signed: fc.boolean(),
      extra: fc.dictionary(fc.constantFrom('idempotency-key', 'x-request-id', 'content-length', 'transfer-encoding', 'accept', 'x-forwarded-for', 'origin'), headerValue, { maxKeys: 3 }),
    })
    await fc.assert(fc.asyncProperty(request, async ({ path, query: q, body, auth, signed, extra }) => {
      const url = q ? `${path}?${q}` : path
      const headers: Record<string, string> = {}
      for (const [name, value] of Object.entries(extra)) if (name !== 'content-length' && name !== 'transfer-encoding') headers[name] = value
      if (auth !== undefined) headers.authorization = auth
      if (route.url === '/v1/webhooks/camara' && signed) headers.authorization = `Bearer ${SINK_TOKEN}`
      if (route.url === '/v1/webhooks/vonage/messages' && signed && body?.payload !== undefined) headers.authorization = `Bearer ${await sign(body.payload)}`
      if (body?.contentType !== undefined) headers['content-type'] = body.contentType
      const options: InjectOptions = { method: route.method as InjectOptions['method'], url, headers, ...(body?.payload !== undefined ? { payload: body.payload } : {}) }

      const before = await snapshot()
      const res = await app.inject(options)
      const where = `${route.method} ${url.slice(0, 200)} → ${res.statusCode} ${res.body.slice(0, 300)}`
      if (res.statusCode >= 500) throw new Error(`a 5xx: ${where}`)
      if (res.statusCode >= 400 || route.method === 'HEAD') {
        if (res.statusCode >= 400) refused++
        const what = res.statusCode >= 400 ? 'a refused request' : 'a HEAD'
        const after = await snapshot()
        if (after.redis !== before.redis) throw new Error(`${what} changed the store: ${where}`)
        if (after.upstream !== before.upstream) throw new Error(`${what} asked the upstream: ${where}`)
        if (after.sms !== before.sms || after.push !== before.push) throw new Error(`${what} sent something: ${where}`)
        if (res.statusCode >= 400 && res.headers['content-type'] !== 'application/problem+json; charset=utf-8') throw new Error(`a refusal that is not a problem document: ${where}`)
      } else if (route.url === '/v1/notifications' && res.statusCode === 202) {
        accepted++
      }
    }), { numRuns: RUNS })
  }
  t.pass(`${fuzzed.length} routes × ${RUNS} runs in ${((Date.now() - started) / 1000).toFixed(1)} s: ${refused} refused, ${accepted} notifications accepted`)

  t.same(Object.keys(Object.prototype), [], 'nothing polluted Object.prototype')
  t.equal(({} as Record<string, unknown>).polluted, undefined)
  t.equal(sms.deliveries().length + push.deliveries().length, 0, 'nothing was sent while the workers were off')

  // What was queued is exactly what was accepted: a worker on the same store sends that and nothing more.
  const worker = await buildWorker({ config: testConfig(env), logger: false, upstream, channels: { sms, push } })
  await worker.ready()
  const deadline = Date.now() + 10_000
  while (sms.deliveries().length + push.deliveries().length < accepted && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 50))
  await new Promise(resolve => setTimeout(resolve, 300))
  await worker.close()
  t.ok(sms.deliveries().length + push.deliveries().length <= accepted,
    `sent ${sms.deliveries().length + push.deliveries().length} for ${accepted} accepted notifications`)
})
