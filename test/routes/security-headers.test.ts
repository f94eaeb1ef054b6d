import t, { type Test } from 'tap'
import type { LightMyRequestResponse } from 'fastify'
import { buildTestApp } from '../helpers/app.js'

async function setup (t: Test, env: Record<string, string | undefined> = {}) {
  const test = await buildTestApp(env)
  t.teardown(() => test.app.close())
  return test
}

function apiHeaders (t: Test, res: LightMyRequestResponse, what: string) {
  t.equal(res.headers['x-content-type-options'], 'nosniff', `${what}: nosniff`)
  t.equal(res.headers['x-frame-options'], 'DENY', `${what}: never framed`)
  t.equal(res.headers['referrer-policy'], 'no-referrer', `${what}: no referrer`)
  t.equal(res.headers['content-security-policy'], "default-src 'none';base-uri 'none';form-action 'none';frame-ancestors 'none'", `${what}: a CSP that allows nothing`)
  t.equal(res.headers['cache-control'], 'no-store', `${what}: not cached`)
  t.equal(res.headers['cross-origin-resource-policy'], 'same-origin', `${what}: CORP`)
  t.notOk(res.headers['x-powered-by'], `${what}: no X-Powered-By`)
}

t.test('a JSON API\'s headers on answers, problems and unknown routes; no HSTS unless configured', async t => {
  const { app, bearer } = await setup(t)
  const ok = await app.inject({ url: '/v1/reachability/+990123400', headers: { authorization: await bearer() } })
  t.equal(ok.statusCode, 200)
  apiHeaders(t, ok, '200')
  t.notOk(ok.headers['strict-transport-security'], 'plain HTTP by default: no HSTS')
  const unauthorized = await app.inject({ url: '/v1/reachability/+990123400' })
  t.equal(unauthorized.statusCode, 401)
  apiHeaders(t, unauthorized, '401')
  const missing = await app.inject({ url: '/v1/nothing-here' })
  t.equal(missing.statusCode, 404)
  apiHeaders(t, missing, '404')
  const health = await app.inject({ url: '/healthz' })
  apiHeaders(t, health, '/healthz')
})

t.test('HSTS_MAX_AGE_SECONDS sends Strict-Transport-Security, and the docs\' CSP upgrades insecure requests', async t => {
  const { app } = await setup(t, { HSTS_MAX_AGE_SECONDS: '31536000' })
  const res = await app.inject({ url: '/healthz' })
  t.equal(res.headers['strict-transport-security'], 'max-age=31536000; includeSubDomains')
  const docs = await app.inject({ url: '/docs' })
  t.match(docs.headers['content-security-policy'], /upgrade-insecure-requests/)
})

t.test('/docs keeps working: its own CSP allows only its own files, which are all served', async t => {
  const { app } = await setup(t)
  const page = await app.inject({ url: '/docs/' })
  t.equal(page.statusCode, 200)
  const csp = String(page.headers['content-security-policy'])
  t.match(csp, /default-src 'self'/)
  t.match(csp, /script-src 'self'(;|$)/, 'no inline or remote scripts')
  t.match(csp, /style-src 'self' 'unsafe-inline'(;|$)/, 'Swagger UI\'s highlighting sets inline styles')
  t.match(csp, /frame-ancestors 'none'/)
  t.equal(page.headers['x-frame-options'], 'DENY')
  t.notOk(/<script(?![^>]*\bsrc=)[^>]*>/i.test(page.body), 'no inline script the CSP would block')
  const assets = [...page.body.matchAll(/(?:src|href)="([^"]+)"/g)].map(m => m[1]!)
  t.ok(assets.length >= 5, `the page names its files: ${assets.join(', ')}`)
  for (const asset of assets) {
    t.notOk(/^(https?:)?\/\//.test(asset), `${asset} is on this origin`)
    const res = await app.inject({ url: new URL(asset, 'http://localhost/docs/').pathname })
    t.equal(res.statusCode, 200, `${asset} is served`)
  }
  const initializer = await app.inject({ url: '/docs/static/swagger-initializer.js' })
  t.match(initializer.body, /validatorUrl":\s*null|"validatorUrl":null/, 'no validator badge: the spec URL is not sent to validator.swagger.io')
  const spec = await app.inject({ url: '/docs/json' })
  t.equal(spec.statusCode, 200)
  t.equal(spec.json().openapi, '3.1.0')
})

const DOCS_URLS = ['/docs', '/docs/', '/docs/json', '/docs/yaml', '/docs/static/swagger-ui.css', '/docs/static/swagger-initializer.js', '/openapi.json']

t.test('DOCS_AUTH=ops: every docs route, Swagger UI\'s files included, needs a token with the ops scope', async t => {
  const { app, bearer } = await setup(t, { DOCS_AUTH: 'ops' })
  const ops = await bearer('ops')
  const notOps = await bearer('reachability:read notifications:write')
  for (const url of DOCS_URLS) {
    const anonymous = await app.inject({ url })
    t.equal(anonymous.statusCode, 401, `${url} without a token`)
    t.equal(anonymous.headers['content-type'], 'application/problem+json; charset=utf-8')
    t.equal((await app.inject({ url, headers: { authorization: notOps } })).statusCode, 403, `${url} without the ops scope`)
    t.equal((await app.inject({ url, headers: { authorization: ops } })).statusCode, 200, `${url} with the ops scope`)
  }
})

t.test('DOCS_AUTH=none (the default): the docs need no token', async t => {
  const { app } = await setup(t)
  for (const url of DOCS_URLS) t.equal((await app.inject({ url })).statusCode, 200, url)
})

t.test('X-Request-Id: a plausible id names the request and comes back; anything else is replaced by a new one', async t => {
  const { app } = await setup(t)
  const given = await app.inject({ url: '/healthz', headers: { 'x-request-id': 'caller-7f3a:req.42' } })
  t.equal(given.headers['x-request-id'], 'caller-7f3a:req.42')
  for (const bad of ['x'.repeat(129), 'has spaces in it', 'quote"s', '']) {
    const res = await app.inject({ url: '/healthz', headers: { 'x-request-id': bad } })
    t.match(res.headers['x-request-id'], /^[0-9a-f-]{36}$/, JSON.stringify(bad.slice(0, 20)))
  }
  const problem = await app.inject({ url: '/v1/queue', headers: { 'x-request-id': 'trace-1' } })
  t.equal(problem.json().request_id, 'trace-1', 'the problem document names it too')
})
