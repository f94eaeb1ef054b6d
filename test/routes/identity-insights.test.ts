import t, { type Test } from 'tap'
import { SandboxUpstream } from '../../src/reachability/upstreams/sandbox.js'
import { buildTestApp } from '../helpers/app.js'
import { CountingUpstream } from '../helpers/upstream.js'

// The Vonage-compatible gateway: Vonage's request body in, exactly Vonage's answer shape out.

const PATHS = ['/identity-insights/v1/requests', '/v0.1/identity-insights']
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/
const PROBLEM = 'application/problem+json; charset=utf-8'

/** The body of the curl example in Vonage's Identity Insights documentation. */
const vonageBody = (phoneNumber: string) => ({ phone_number: phoneNumber, purpose: 'FraudPreventionAndDetection', insights: { reachability: {} } })

async function setup (t: Test) {
  const upstream = new CountingUpstream(new SandboxUpstream({ comebackSeconds: 20 }))
  const { app, bearer } = await buildTestApp({}, { upstream })
  t.teardown(() => app.close())
  const authorization = await bearer('reachability:read')
  const post = async (url: string, payload: unknown, headers: Record<string, string> = { authorization }) =>
    app.inject({ method: 'POST', url, headers: { 'content-type': 'application/json', ...headers }, payload: JSON.stringify(payload) })
  return { app, upstream, bearer, authorization, post }
}

for (const path of PATHS) {
  t.test(`POST ${path}`, async t => {
    t.test('Vonage\'s own curl body answers exactly the Vonage shape', async t => {
      const { post } = await setup(t)
      const res = await post(path, vonageBody('+990123400'))
      t.equal(res.statusCode, 200)
      t.match(res.headers['content-type'], /^application\/json/)
      const body = res.json()
      t.same(Object.keys(body).sort(), ['insights', 'request_id'])
      t.match(body.request_id, UUID)
      t.same(Object.keys(body.insights), ['reachability'])
      const { reachability } = body.insights
      t.same(Object.keys(reachability).sort(), ['connectivity', 'is_reachable', 'latest_status_at', 'status'])
      t.same(reachability.connectivity, ['DATA', 'SMS'])
      t.equal(reachability.is_reachable, true)
      t.ok(Date.parse(reachability.latest_status_at), 'latest_status_at is a date')
      t.same(reachability.status, { code: 'OK', message: 'Success' })
    })

    t.test('each request has its own request_id', async t => {
      const { post } = await setup(t)
      const ids = new Set<string>()
      for (let i = 0; i < 3; i++) ids.add((await post(path, vonageBody('+990123400'))).json().request_id)
      t.equal(ids.size, 3)
    })

    t.test('an SMS-only number, given without "+"', async t => {
      const { post } = await setup(t)
      const res = await post(path, vonageBody('990123411'))
      t.same(res.json().insights.reachability.connectivity, ['SMS'])
    })

    t.test('purpose may be left out', async t => {
      const { post } = await setup(t)
      const res = await post(path, { phone_number: '+990123422', insights: { reachability: {} } })
      t.equal(res.statusCode, 200)
      t.same(res.json().insights.reachability.connectivity, ['DATA'])
    })

    t.test('not reachable: connectivity is absent', async t => {
      const { post } = await setup(t)
      const { reachability } = (await post(path, vonageBody('+990123433'))).json().insights
      t.same(Object.keys(reachability).sort(), ['is_reachable', 'latest_status_at', 'status'])
      t.equal(reachability.is_reachable, false)
      t.same(reachability.status, { code: 'OK', message: 'Success' })
    })

    t.test('a not-OK status code answers only the status', async t => {
      const { post } = await setup(t)
      const notOk: [string, string][] = [['+990123499', 'NOT_FOUND'], ['+990123455', 'NO_COVERAGE'], ['+990123466', 'SUPPLIER_ERROR'], ['+990555', 'INVALID_NUMBER_FORMAT']]
      for (const [phoneNumber, code] of notOk) {
        const res = await post(path, vonageBody(phoneNumber))
        t.equal(res.statusCode, 200, phoneNumber)
        const { reachability } = res.json().insights
        t.same(Object.keys(reachability), ['status'], `${phoneNumber}: only the status`)
        t.equal(reachability.status.code, code)
        t.type(reachability.status.message, 'string')
      }
    })

    t.test('served through the same cache: a second call does not reach the upstream', async t => {
      const { post, upstream, app, authorization } = await setup(t)
      await post(path, vonageBody('+990123400'))
      const second = await post(path, vonageBody('990123400'))
      t.equal(second.statusCode, 200)
      t.same(second.json().insights.reachability.connectivity, ['DATA', 'SMS'])
      t.equal(upstream.callsFor('+990123400'), 1)
      const viaV1 = await app.inject({ url: '/v1/reachability/+990123400', headers: { authorization } })
      t.equal(viaV1.json().source, 'cache', 'the /v1 route reads the same cache entry')
      t.equal(upstream.callsFor('+990123400'), 1)
    })

    t.test('an upstream failure is a 503 problem', async t => {
      const { post } = await setup(t)
      const res = await post(path, vonageBody('+990123488'))
      t.equal(res.statusCode, 503)
      t.equal(res.headers['content-type'], PROBLEM)
      t.ok(res.headers['retry-after'])
    })

    t.test('asking for another insight is a 400 problem naming it', async t => {
      const { post, upstream } = await setup(t)
      for (const insights of [{ sim_swap: {} }, { reachability: {}, sim_swap: {} }]) {
        const res = await post(path, { ...vonageBody('+990123400'), insights })
        t.equal(res.statusCode, 400, JSON.stringify(insights))
        t.equal(res.headers['content-type'], PROBLEM)
        t.match(res.json(), { status: 400, detail: /sim_swap/, errors: [{ path: /^body\.insights/, message: /"sim_swap"/ }] })
      }
      t.equal(upstream.calls.length, 0)
    })

    t.test('no insight asked for is a 400 problem', async t => {
      const { post, upstream } = await setup(t)
      for (const payload of [{ ...vonageBody('+990123400'), insights: {} }, { phone_number: '+990123400', purpose: 'FraudPreventionAndDetection' }]) {
        const res = await post(path, payload)
        t.equal(res.statusCode, 400, JSON.stringify(payload))
        t.match(res.json(), { status: 400, errors: [{ path: /^body/ }] })
      }
      t.equal(upstream.calls.length, 0)
    })

    t.test('an invalid phone number is a 400 problem and never reaches the upstream', async t => {
      const { post, upstream } = await setup(t)
      for (const phoneNumber of ['not-a-number', '+4412', '00447911123456', '', 12345]) {
        const res = await post(path, { ...vonageBody('+990123400'), phone_number: phoneNumber })
        t.equal(res.statusCode, 400, JSON.stringify(phoneNumber))
        t.equal(res.headers['content-type'], PROBLEM)
        t.match(res.json(), { errors: [{ path: 'body.phone_number' }] })
      }
      t.equal(upstream.calls.length, 0)
    })

    t.test('malformed JSON is a 400 problem', async t => {
      const { app, authorization } = await setup(t)
      const res = await app.inject({ method: 'POST', url: path, headers: { authorization, 'content-type': 'application/json' }, payload: '{"phone_number": ' })
      t.equal(res.statusCode, 400)
      t.equal(res.headers['content-type'], PROBLEM)
    })

    t.test('no token is a 401, a token without reachability:read a 403, and neither reaches the upstream', async t => {
      const { post, bearer, upstream } = await setup(t)
      const none = await post(path, vonageBody('+990123400'), {})
      t.equal(none.statusCode, 401)
      t.equal(none.headers['content-type'], PROBLEM)
      t.ok(none.headers['www-authenticate'])
      const garbled = await post(path, vonageBody('+990123400'), { authorization: 'Bearer abc.def.ghi' })
      t.equal(garbled.statusCode, 401)
      const wrongScope = await post(path, vonageBody('+990123400'), { authorization: await bearer('notifications:write campaigns:read') })
      t.equal(wrongScope.statusCode, 403)
      t.match(wrongScope.json(), { status: 403, required_scope: 'reachability:read' })
      t.equal(upstream.calls.length, 0)
    })
  })
}
