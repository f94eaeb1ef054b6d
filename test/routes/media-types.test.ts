import { createHash } from 'node:crypto'
import { SignJWT } from 'jose'
import t, { type Test } from 'tap'
import { ALL_SCOPES } from '../../src/auth/inbound.js'
import { campaignApp, message } from '../campaigns/app.js'

// Fastify's default text/plain parser handed a string to any route: a campaign's pause or a dead letter's DELETE
// acted on it, a JSON route answered 400 instead of 415. Every body is JSON (or a campaign's NDJSON) now.

const SIGNATURE_SECRET = 'vonage-signature-secret-for-media-type-tests'
const SINK_TOKEN = 'camara-sink-token-for-media-type-tests'

interface Operation { responses: Record<string, unknown> }
type Paths = Record<string, Record<string, Operation>>

async function setup (t: Test) {
  const s = await campaignApp(t, 'memory', { VONAGE_SIGNATURE_SECRET: SIGNATURE_SECRET, CAMARA_SINK_TOKEN: SINK_TOKEN })
  await s.app.ready()
  const everything = `Bearer ${await s.app.auth.issue({ sub: 'media-types', scope: ALL_SCOPES, ttlSeconds: 600 })}`
  return { ...s, everything, paths: (s.app.swagger() as unknown as { paths: Paths }).paths }
}

const signed = async (body: string) => `Bearer ${await new SignJWT({ payload_hash: createHash('sha256').update(body).digest('hex') })
  .setProtectedHeader({ alg: 'HS256' }).setIssuedAt().sign(new TextEncoder().encode(SIGNATURE_SECRET))}`

t.test('every operation that reads a body refuses text/plain and XML with a 415 problem, and documents 413 and 415', async t => {
  const s = await setup(t)
  let checked = 0
  for (const [path, operations] of Object.entries(s.paths)) {
    for (const [method, operation] of Object.entries(operations)) {
      if (!['post', 'put', 'patch', 'delete'].includes(method)) continue
      t.ok(operation.responses['400'] && operation.responses['413'] && operation.responses['415'], `${method} ${path} documents 400, 413 and 415`)
      const url = path.replace(/\{[^}]+\}/g, 'x1')
      for (const [contentType, payload] of [['text/plain', '{"ttl_seconds":60}'], ['application/xml', '<a/>']]) {
        const authorization = path.startsWith('/v1/webhooks/vonage') ? await signed(payload!)
          : path.startsWith('/v1/webhooks/camara') ? `Bearer ${SINK_TOKEN}` : s.everything
        const res = await s.app.inject({ method: method.toUpperCase() as 'POST', url, headers: { authorization, 'content-type': contentType! }, payload })
        t.equal(res.statusCode, 415, `${method} ${path} with ${contentType}: ${res.body.slice(0, 200)}`)
        t.equal(res.headers['content-type'], 'application/problem+json; charset=utf-8')
        t.match(res.json(), { type: /\/unsupported-media-type$/, status: 415, detail: new RegExp(`Content-Type "${contentType!.replace('/', '\\/')}"`) })
        checked++
      }
    }
  }
  t.ok(checked >= 20, `${checked} requests`)
})

t.test('a campaign action sent a text/plain body changes nothing', async t => {
  const s = await setup(t)
  const created = await s.post({ name: 'plain', message, recipients: [{ to: '+447911100001', vars: { name: 'A' } }] })
  t.equal(created.statusCode, 202, created.body)
  const id = created.json().id as string
  for (const action of ['pause', 'cancel']) {
    const res = await s.app.inject({ method: 'POST', url: `/v1/campaigns/${id}/${action}`, headers: { authorization: s.auth, 'content-type': 'text/plain' }, payload: 'please' })
    t.equal(res.statusCode, 415, action)
  }
  const after = await s.app.inject({ url: `/v1/campaigns/${id}`, headers: { authorization: s.auth } })
  t.match(after.json(), { status: /^(running|completed)$/ }, 'neither paused nor cancelled')
})

t.test('Vonage webhooks: a forged request is 401 whatever its Content-Type; a signed one that is not JSON is 415', async t => {
  const s = await setup(t)
  const url = '/v1/webhooks/vonage/messages'
  for (const contentType of ['text/plain', 'application/xml', 'application/x-www-form-urlencoded', undefined]) {
    const forged = await s.app.inject({ method: 'POST', url, headers: { authorization: 'Bearer abc.def.ghi', ...(contentType ? { 'content-type': contentType } : {}) }, payload: 'status=delivered' })
    t.equal(forged.statusCode, 401, `forged, ${contentType ?? 'no Content-Type'}`)
    t.match(forged.json(), { type: /\/unauthorized$/, detail: /signature/ })
    const good = await s.app.inject({ method: 'POST', url, headers: { authorization: await signed('status=delivered'), ...(contentType ? { 'content-type': contentType } : {}) }, payload: 'status=delivered' })
    t.equal(good.statusCode, 415, `signed, ${contentType ?? 'no Content-Type'}`)
  }
})
