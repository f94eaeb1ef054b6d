import t, { type Test } from 'tap'
import type { LightMyRequestResponse } from 'fastify'
import { buildTestApp } from '../helpers/app.js'

// Fastify refuses a malformed URL or a too-long path parameter (frameworkErrors) before any onRequest hook runs.

async function setup (t: Test) {
  const test = await buildTestApp()
  t.teardown(() => test.app.close())
  return test
}

function securityHeaders (t: Test, res: LightMyRequestResponse, what: string) {
  t.equal(res.headers['cache-control'], 'no-store', `${what}: not cached`)
  t.equal(res.headers['content-security-policy'], "default-src 'none';base-uri 'none';form-action 'none';frame-ancestors 'none'", `${what}: a CSP that allows nothing`)
  t.equal(res.headers['x-content-type-options'], 'nosniff', `${what}: nosniff`)
  t.equal(res.headers['x-frame-options'], 'DENY', `${what}: never framed`)
  t.equal(res.headers['referrer-policy'], 'no-referrer', `${what}: no referrer`)
  t.equal(res.headers['cross-origin-resource-policy'], 'same-origin', `${what}: CORP`)
}

t.test('a malformed URL and a too-long path parameter carry the API\'s security headers', async t => {
  const { app, bearer } = await setup(t)
  const auth = await bearer('reachability:read')
  const badUrl = await app.inject({ url: '/v1/reachability/%ZZ', headers: { authorization: auth } })
  t.equal(badUrl.statusCode, 400)
  t.equal(badUrl.headers['content-type'], 'application/problem+json; charset=utf-8')
  t.match(badUrl.json(), { type: /bad-request$/, status: 400, instance: '/v1/reachability/%ZZ' })
  securityHeaders(t, badUrl, 'bad URL')
  t.ok(badUrl.headers['x-request-id'])

  const tooLong = await app.inject({ url: `/v1/reachability/${'9'.repeat(200)}`, headers: { authorization: auth } })
  t.equal(tooLong.statusCode, 414)
  t.match(tooLong.json(), { type: /uri-too-long$/, status: 414 })
  securityHeaders(t, tooLong, 'too-long parameter')

  const normal = await app.inject({ url: '/v1/nothing-here' })
  for (const name of Object.keys(app.apiSecurityHeaders)) {
    t.equal(badUrl.headers[name], normal.headers[name], `${name} as on any other answer`)
  }
})

t.test('a URL of many KB is not echoed back whole', async t => {
  const { app, bearer } = await setup(t)
  const auth = await bearer('reachability:read')
  const url = `/v1/reachability/${'9'.repeat(10_000)}?x=${'y'.repeat(1000)}`
  const tooLong = await app.inject({ url, headers: { authorization: auth } })
  t.equal(tooLong.statusCode, 414)
  const problem = tooLong.json()
  t.ok(problem.detail.length <= 201, `detail is cut (${problem.detail.length} characters)`)
  t.ok(problem.instance.length <= 201, `instance is cut (${problem.instance.length} characters)`)
  t.ok(problem.instance.startsWith('/v1/reachability/999'), 'instance still begins with the URL')
  t.ok(tooLong.body.length < 1000, `the whole answer is small (${tooLong.body.length} bytes)`)

  const badUrl = await app.inject({ url: `/v1/reachability/%ZZ${'9'.repeat(10_000)}`, headers: { authorization: auth } })
  t.equal(badUrl.statusCode, 400)
  t.ok(badUrl.body.length < 1000, `a bad URL's answer is small (${badUrl.body.length} bytes)`)

  const missing = await app.inject({ url: `/v1/nothing-here/${'z'.repeat(10_000)}` })
  t.equal(missing.statusCode, 404)
  t.ok(missing.body.length < 1000, `a 404's answer is small (${missing.body.length} bytes)`)
  t.match(missing.json().detail, /^no route for GET \/v1\/nothing-here\/z+…$/)
})
