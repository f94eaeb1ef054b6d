import diagnostics from 'node:diagnostics_channel'
import { Readable } from 'node:stream'
import t from 'tap'
import type { FastifyInstance, RouteOptions } from 'fastify'
import { buildTestApp } from '../helpers/app.js'

// Each route that takes a body reads at most what its content needs: one byte more is a 413 problem.

const SINK_TOKEN = 'camara-sink-token-for-the-body-test'
const KB = 1024

interface Case {
  method: 'POST' | 'DELETE'
  url: string
  limit: number
  /** The route's auth, passed so that the limit is what answers. */
  auth: 'bearer' | 'sink' | 'signature'
  contentType?: string
}

const CASES: Case[] = [
  { method: 'POST', url: '/v1/notifications', limit: 64 * KB, auth: 'bearer' },
  { method: 'POST', url: '/v1/reachability/batch', limit: 64 * KB, auth: 'bearer' },
  { method: 'POST', url: '/identity-insights/v1/requests', limit: 8 * KB, auth: 'bearer' },
  { method: 'POST', url: '/v0.1/identity-insights', limit: 8 * KB, auth: 'bearer' },
  { method: 'POST', url: '/v1/queue/dead/ntf_07_00000000000000000000000000000000/retry', limit: KB, auth: 'bearer' },
  { method: 'DELETE', url: '/v1/queue/dead/ntf_07_00000000000000000000000000000000', limit: KB, auth: 'bearer' },
  { method: 'POST', url: '/v1/webhooks/vonage/messages', limit: 16 * KB, auth: 'signature' },
  { method: 'POST', url: '/v1/webhooks/camara', limit: 16 * KB, auth: 'sink', contentType: 'application/cloudevents+json' },
]

/** A JSON object of exactly `bytes` bytes. */
function jsonOfSize (bytes: number): string {
  const shell = '{"pad":""}'
  return `{"pad":"${'x'.repeat(bytes - shell.length)}"}`
}

async function capturingApp (): Promise<{ app: FastifyInstance, bearer: () => Promise<string>, routes: RouteOptions[] }> {
  const routes: RouteOptions[] = []
  const capture = (message: unknown) => {
    (message as { fastify: FastifyInstance }).fastify.addHook('onRoute', route => { routes.push(route) })
  }
  diagnostics.subscribe('fastify.initialization', capture)
  try {
    const { app, bearer } = await buildTestApp({ CAMARA_SINK_TOKEN: SINK_TOKEN, VONAGE_SIGNATURE_SECRET: 'vonage-signature-secret-0123456789',
      CALLBACK_SIGNING_SECRET: 'callback-signing-secret-0123456789' })
    return { app, bearer: () => bearer(), routes }
  } finally {
    diagnostics.unsubscribe('fastify.initialization', capture)
  }
}

const { app, bearer, routes } = await capturingApp()
t.teardown(() => app.close())
const authorization = await bearer()
const headersFor = (c: Case) => ({
  'content-type': c.contentType ?? 'application/json',
  authorization: c.auth === 'sink' ? `Bearer ${SINK_TOKEN}` : c.auth === 'signature' ? 'Bearer signature.checked.after-the-body' : authorization,
})

t.test('each route declares the limit its content needs', async t => {
  for (const c of CASES) {
    const path = c.url.replace(/ntf_07_0+/, ':id')
    const route = routes.find(r => r.method === c.method && r.url === path)
    t.equal(route?.bodyLimit, c.limit, `${c.method} ${path}: ${c.limit} bytes`)
  }
  const bodyMethods = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])
  for (const route of routes) {
    const methods = [route.method].flat()
    if (!methods.some(m => bodyMethods.has(m))) continue
    const known = CASES.some(c => c.url.replace(/ntf_07_0+/, ':id') === route.url)
    const explicit = route.bodyLimit !== undefined
    t.ok(explicit, `${methods.join(',')} ${route.url} declares its own bodyLimit`,
      explicit || known ? {} : { todo: 'a route this test does not list yet: give it a bodyLimit fitting its content' })
  }
})

t.test('one byte over the limit is a 413 problem; at the limit the body is read', async t => {
  for (const c of CASES) {
    const over = await app.inject({ method: c.method, url: c.url, headers: headersFor(c), payload: jsonOfSize(c.limit + 1) })
    t.equal(over.statusCode, 413, `${c.method} ${c.url} with ${c.limit + 1} bytes`)
    t.equal(over.headers['content-type'], 'application/problem+json; charset=utf-8')
    t.match(over.json(), { type: 'https://reachroute.dev/problems/payload-too-large', status: 413, title: 'Body is too large' })
    t.match(over.json().detail, new RegExp(`^the body is over this operation's limit of ${c.limit} bytes \\(${c.limit / KB} KiB\\)`), `${c.method} ${c.url}: the detail gives the limit`)
    const at = await app.inject({ method: c.method, url: c.url, headers: headersFor(c), payload: jsonOfSize(c.limit) })
    t.not(at.statusCode, 413, `${c.method} ${c.url} with ${c.limit} bytes is read (${at.statusCode})`)
    t.ok(at.statusCode < 500)
  }
})

t.test('a streamed body without Content-Length is cut off at the limit too', async t => {
  const chunks = Array.from({ length: 80 }, () => 'x'.repeat(KB))
  const res = await app.inject({
    method: 'POST', url: '/v1/notifications', headers: { 'content-type': 'application/json', authorization },
    payload: Readable.from(['{"pad":"', ...chunks, '"}']),
  })
  t.equal(res.statusCode, 413)
  t.match(res.json().detail, /^the body is over this operation's limit of 65536 bytes \(64 KiB\)/)
})

t.test('the largest real bodies fit', async t => {
  const batch = JSON.stringify({ phone_numbers: Array.from({ length: 1000 }, (_, i) => `+44 (0) 7911 ${String(i).padStart(6, '0')} 000000`.slice(0, 32)) }, null, 2)
  t.ok(batch.length < 64 * KB, `1000 numbers of 32 characters, pretty-printed: ${batch.length} bytes`)
  const batchRes = await app.inject({ method: 'POST', url: '/v1/reachability/batch', headers: { 'content-type': 'application/json', authorization }, payload: batch })
  t.equal(batchRes.statusCode, 200)
  t.equal(batchRes.json().results.length, 1000)

  const notification = JSON.stringify({
    to: '+990123400',
    message: { sms: { text: 's'.repeat(1000) }, push: { title: 't'.repeat(200), body: 'b'.repeat(2000), data: Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`key${i}`, 'v'.repeat(1000)])) } },
    push_token: 'p'.repeat(4096),
    routing: { prefer: 'push', channels: ['push', 'sms'], on_unreachable: 'queue', on_unknown: 'sms', on_expiry: 'expire', ttl_seconds: 86400, max_age: 60 },
    client_ref: 'c'.repeat(100),
    callback_url: `https://example.com/${'u'.repeat(2000)}`,
    metadata: Object.fromEntries(Array.from({ length: 20 }, (_, i) => [`k${i}`.padEnd(64, 'k'), 'm'.repeat(500)])),
  }, null, 2)
  t.ok(notification.length < 64 * KB, `a notification with every field near its maximum and 10 KB of push data: ${notification.length} bytes`)
  const res = await app.inject({ method: 'POST', url: '/v1/notifications', headers: { 'content-type': 'application/json', authorization }, payload: notification })
  t.equal(res.statusCode, 202)
})

t.test('text lengths count characters (code points), as the OpenAPI document\'s maxLength does, not UTF-16 units', async t => {
  // 1,000 emoji are 2,000 UTF-16 units: a valid SMS text of 1 to 1000 characters.
  const text = '\u{1F4E6}'.repeat(1000)
  const res = await app.inject({ method: 'POST', url: '/v1/notifications', headers: { authorization }, payload: { to: '+990123400', message: { sms: { text } } } })
  t.equal(res.statusCode, 202)
  const stored = await app.inject({ url: `/v1/notifications/${res.json().id}`, headers: { authorization } })
  t.equal(stored.statusCode, 200)
})
