import t, { type Test } from 'tap'
import { buildTestApp } from '../helpers/app.js'
import { waitFor } from '../helpers/wait.js'
import { generateApplicationKeys, problem, startFakeVonage } from '../fakes/vonage.js'

// Vonage's purpose (docs/upstream-apis.md section 1: "must match a purpose allowed for the application"): the gateway
// passes a caller's own purpose to Vonage, and an answer given under one purpose is never handed out under another.
// Against the fake Vonage, which allows FraudPreventionAndDetection only and answers INVALID_PURPOSE otherwise.

const DEFAULT = 'FraudPreventionAndDetection'
const GATEWAY = '/identity-insights/v1/requests'

async function setup (t: Test, env: Record<string, string> = {}, allowedPurposes?: string[]) {
  const { privateKey, publicKey } = await generateApplicationKeys()
  const fake = await startFakeVonage({ applicationId: 'app-1', publicKey, slowMs: 400, ...(allowedPurposes ? { allowedPurposes } : {}) })
  const { app, bearer } = await buildTestApp({
    REACHABILITY_PROVIDER: 'vonage', VONAGE_APPLICATION_ID: 'app-1', VONAGE_PRIVATE_KEY: privateKey, VONAGE_API_BASE_URL: fake.url, ...env,
  })
  t.teardown(async () => { await app.close(); await fake.close() })
  const authorization = await bearer()
  const gateway = (phoneNumber: string, purpose?: string) => app.inject({
    method: 'POST', url: GATEWAY, headers: { authorization },
    payload: { phone_number: phoneNumber, ...(purpose ? { purpose } : {}), insights: { reachability: {} } },
  })
  const purposes = (phoneNumber: string) => fake.requestsFor(phoneNumber).map(r => (r.body as { purpose: string }).purpose)
  return { app, fake, authorization, gateway, purposes }
}

t.test('a purpose the application may not use is refused by Vonage, even for a number cached under the default', async t => {
  const { gateway, purposes } = await setup(t)
  const refused = await gateway('+990123400', 'Marketing')
  t.equal(refused.statusCode, 200, 'Vonage answers an insight status, not an HTTP error')
  t.same(refused.json().insights.reachability.status.code, 'INVALID_PURPOSE')
  t.notOk('is_reachable' in refused.json().insights.reachability)

  t.equal((await gateway('+990123400')).json().insights.reachability.status.code, 'OK', 'the default purpose')
  t.equal((await gateway('+990123400', DEFAULT)).json().insights.reachability.status.code, 'OK', 'the default, named: from the cache')
  const again = await gateway('+990123400', 'Marketing')
  t.equal(again.json().insights.reachability.status.code, 'INVALID_PURPOSE', 'not answered from what the default purpose cached')
  t.same(purposes('+990123400'), ['Marketing', DEFAULT, 'Marketing'], 'Vonage asked each time under the caller\'s own purpose, once under the default')
})

t.test('a lookup under another purpose is not joined: each caller gets the answer to its own', async t => {
  const { app, authorization, gateway, purposes } = await setup(t)
  // +990123477 answers slowly: the first lookup is still in flight when the second asks.
  const [plain, own] = await Promise.all([
    app.inject({ method: 'GET', url: '/v1/reachability/+990123477', headers: { authorization } }),
    new Promise(resolve => setTimeout(resolve, 50)).then(() => gateway('+990123477', 'Marketing')),
  ])
  t.match(plain.json(), { is_reachable: true, status: { code: 'OK' } })
  t.equal(own.json().insights.reachability.status.code, 'INVALID_PURPOSE', 'not the in-flight default lookup\'s answer')
  t.same(purposes('+990123477').sort(), [DEFAULT, 'Marketing'].sort())
  t.match((await app.inject({ method: 'GET', url: '/v1/reachability/+990123477', headers: { authorization } })).json(), { status: { code: 'OK' }, source: 'cache' },
    'the refusal was not cached over the reading')
})

t.test('campaign lookups ask under the configured purpose', async t => {
  const { app, authorization, purposes } = await setup(t, { WORKERS: 'on', WORKER_IDLE_POLL_MS: '20' })
  const res = await app.inject({
    method: 'POST', url: '/v1/campaigns', headers: { authorization },
    payload: { name: 'purpose', message: { sms: { text: 'hello' } }, recipients: [{ to: '+990123400' }, { to: '+990123411' }] },
  })
  t.equal(res.statusCode, 202)
  await waitFor(() => purposes('+990123411').length > 0 && purposes('+990123400').length > 0 ? true : undefined, 5000, 'both looked up')
  t.same([...purposes('+990123400'), ...purposes('+990123411')], [DEFAULT, DEFAULT])
})

t.test('Vonage calling a request under the caller\'s own purpose bad (HTTP 400) is a 400 for the caller; under the default, an outage (503)', async t => {
  const { fake, gateway } = await setup(t, {}, [DEFAULT, 'AccountVerification'])
  fake.script.queue('+447911123456', problem(400, 'The purpose is not valid for this product', 'Bad Request'))
  const own = await gateway('+447911123456', 'AccountVerification')
  t.equal(own.statusCode, 400)
  t.equal(own.headers['retry-after'], undefined, 'nothing to wait for')
  t.match(own.json(), { status: 400, detail: /refused the lookup under purpose "AccountVerification".*400.*not valid for this product/, errors: [{ path: 'body.purpose' }] })

  fake.script.queue('+447911123457', problem(400, 'Bad request', 'Bad Request'))
  const ours = await gateway('+447911123457')
  t.equal(ours.statusCode, 503, 'our own setup refused: not the caller\'s fault')
  t.ok(ours.headers['retry-after'])
})
