import t from 'tap'
import { StaticAccessToken } from '../../../src/auth/oauth-token.js'
import { CamaraUpstream, type CamaraUpstreamOptions } from '../../../src/reachability/upstreams/camara.js'
import { UpstreamFailure } from '../../../src/reachability/upstreams/upstream.js'
import {
  camaraError, type CamaraVersion, type FakeCamara, LAST_STATUS_TIME, reachabilityStatus, reachableV1, startFakeCamara,
} from '../../fakes/camara.js'

const TOKEN = 'operator-access-token'
const NUMBER = '+447700900123'

interface Teardown { teardown (fn: () => Promise<void>): void }

async function setup (
  t: Teardown, overrides: Partial<CamaraUpstreamOptions> = {}, version: CamaraVersion = 'v1',
): Promise<{ fake: FakeCamara, upstream: CamaraUpstream }> {
  const fake = await startFakeCamara({ accessToken: TOKEN, version })
  const upstream = new CamaraUpstream({
    baseUrl: fake.reachabilityUrl,
    tokens: new StaticAccessToken(TOKEN),
    timeoutMs: 2000, // a fake on loopback; tests of timeouts set their own
    retries: 2,
    retryBaseMs: 5,
    retryMaxMs: 20,
    ...overrides,
  })
  t.teardown(async () => { await upstream.close(); await fake.close() })
  return { fake, upstream }
}

const ok = { code: 'OK', message: 'Success' }

t.test('v1 answers map to reachability', async t => {
  const { fake, upstream } = await setup(t)
  t.same(await upstream.check('+990123400'), { is_reachable: true, connectivity: ['DATA', 'SMS'], latest_status_at: LAST_STATUS_TIME, status: ok })
  t.same(await upstream.check('+990123411'), { is_reachable: true, connectivity: ['SMS'], latest_status_at: LAST_STATUS_TIME, status: ok })
  // CAMARA's DATA holds whatever the SMS state: it is not widened into SMS.
  t.same(await upstream.check('+990123422'), { is_reachable: true, connectivity: ['DATA'], latest_status_at: LAST_STATUS_TIME, status: ok })
  t.same(await upstream.check('+990123433'), { is_reachable: false, connectivity: [], latest_status_at: LAST_STATUS_TIME, status: ok })
  t.same(fake.requests.flatMap(r => r.rejected ?? []), [])
})

t.test('a v1 answer without lastStatusTime or connectivity', async t => {
  const { fake, upstream } = await setup(t)
  fake.script.queue(NUMBER, { status: 200, json: { reachable: true } })
  t.same(await upstream.check(NUMBER), { is_reachable: true, connectivity: [], latest_status_at: null, status: ok })
})

t.test('connectivity values not in the spec yet are kept', async t => {
  const { fake, upstream } = await setup(t)
  fake.script.queue(NUMBER, reachableV1(['DATA', 'SMS', 'SATELLITE']))
  t.match(await upstream.check(NUMBER), { connectivity: ['DATA', 'SMS', 'SATELLITE'] })
})

t.test('v0.6 answers map to reachability', async t => {
  const { upstream } = await setup(t, {}, 'v0.6')
  t.same(await upstream.check('+990123400'), { is_reachable: true, connectivity: ['DATA'], latest_status_at: LAST_STATUS_TIME, status: ok })
  t.same(await upstream.check('+990123411'), { is_reachable: true, connectivity: ['SMS'], latest_status_at: LAST_STATUS_TIME, status: ok })
  t.same(await upstream.check('+990123433'), { is_reachable: false, connectivity: [], latest_status_at: LAST_STATUS_TIME, status: ok })
})

t.test('an answer in neither shape, or not JSON, is no answer', async t => {
  const { fake, upstream } = await setup(t)
  fake.script.queue(NUMBER, { status: 200, json: { reachabilityStatus: 'ROAMING' } }, { status: 200, raw: '{"reachable": tr' })
  await t.rejects(upstream.check(NUMBER), { name: 'UpstreamFailure', message: /neither a v1 nor a v0.6/ })
  await t.rejects(upstream.check(NUMBER), { name: 'UpstreamFailure', message: /not JSON/ })
  t.equal(fake.requests.length, 2, 'neither retried')
})

t.test('CAMARA error bodies map to the insight status codes, without retries', async t => {
  const cases: Array<[number, string, string]> = [
    [404, 'IDENTIFIER_NOT_FOUND', 'NOT_FOUND'],
    [400, 'INVALID_ARGUMENT', 'INVALID_NUMBER_FORMAT'],
    [422, 'SERVICE_NOT_APPLICABLE', 'NO_COVERAGE'],
    [422, 'UNSUPPORTED_IDENTIFIER', 'NO_COVERAGE'],
    [422, 'IDENTIFIER_MISMATCH', 'UNAUTHORIZED'],
    [422, 'MISSING_IDENTIFIER', 'UNAUTHORIZED'],
    [422, 'UNNECESSARY_IDENTIFIER', 'UNAUTHORIZED'],
    [401, 'UNAUTHENTICATED', 'UNAUTHORIZED'],
    [401, 'AUTHENTICATION_REQUIRED', 'UNAUTHORIZED'],
    [403, 'PERMISSION_DENIED', 'UNAUTHORIZED'],
  ]
  const { fake, upstream } = await setup(t)
  for (const [status, code, expected] of cases) {
    fake.script.queue(NUMBER, camaraError(status, code, `message of ${code}`))
    t.same(await upstream.check(NUMBER), {
      is_reachable: false, connectivity: [], latest_status_at: null, status: { code: expected, message: `message of ${code}` },
    }, `${status} ${code} → ${expected}`)
  }
  t.equal(fake.requests.length, cases.length)
})

t.test('errors that say nothing about the number are no answer, without retries', async t => {
  const { fake, upstream } = await setup(t)
  fake.script.queue(NUMBER,
    { status: 404, headers: { 'content-type': 'text/html' }, raw: '<html>Not Found</html>' },
    camaraError(404, 'NOT_FOUND', 'The specified resource is not found.'),
    camaraError(422, 'SOMETHING_NEW'),
    camaraError(409, 'CONFLICT'))
  await t.rejects(upstream.check(NUMBER), { name: 'UpstreamFailure', message: /HTTP 404/ })
  await t.rejects(upstream.check(NUMBER), { name: 'UpstreamFailure', message: /NOT_FOUND: The specified resource/ }, 'CAMARA\'s generic 404 (a wrong path) is not "number not found"')
  await t.rejects(upstream.check(NUMBER), { name: 'UpstreamFailure', message: /SOMETHING_NEW/ })
  await t.rejects(upstream.check(NUMBER), { name: 'UpstreamFailure', message: /409/ })
  t.equal(fake.requests.length, 4)
})

t.test('the access token is sent, and a wrong one answers UNAUTHORIZED', async t => {
  const { fake, upstream } = await setup(t)
  await upstream.check(NUMBER)
  t.equal(fake.requests[0]!.headers.authorization, `Bearer ${TOKEN}`)
  t.equal(fake.requests[0]!.rejected, undefined)

  const wrong = new CamaraUpstream({ baseUrl: fake.reachabilityUrl, tokens: new StaticAccessToken('stolen'), timeoutMs: 200, retries: 2, retryBaseMs: 5, retryMaxMs: 20 })
  t.teardown(() => wrong.close())
  t.match(await wrong.check(NUMBER), { status: { code: 'UNAUTHORIZED' } })
  t.match(fake.requests[1]!.rejected, /not authenticated/)
  t.equal(fake.requests.length, 2, 'a static token refused is not sent again: there is no other')
})

t.test('the body names the device by its phone number only', async t => {
  const { fake, upstream } = await setup(t)
  await upstream.check(NUMBER)
  t.same(fake.requests[0]!.body, { device: { phoneNumber: NUMBER } })
  t.equal(fake.requests[0]!.path, '/device-reachability-status/v1/retrieve')
})

t.test('x-correlator: valid, fresh for each check, the same across one check\'s retries', async t => {
  const { fake, upstream } = await setup(t)
  await upstream.check(NUMBER)
  await upstream.check('+990123488')
  const [first, retried, retry] = fake.requests.map(r => r.correlator)
  for (const correlator of [first, retried, retry]) t.match(correlator, /^[a-zA-Z0-9-]{1,55}$/)
  t.not(first, retried)
  t.equal(retried, retry)
  t.same(fake.requests.flatMap(r => r.rejected ?? []), [])
})

t.test('503 is retried, then answered', async t => {
  const { fake, upstream } = await setup(t)
  t.match(await upstream.check('+990123488'), { is_reachable: true, connectivity: ['DATA', 'SMS'] })
  t.equal(fake.requestsFor('+990123488').length, 2)
})

t.test('503 and 429 that last give UpstreamFailure after bounded retries, with Retry-After passed on', async t => {
  const { fake, upstream } = await setup(t)
  fake.script.always(NUMBER, camaraError(503, 'UNAVAILABLE', 'Network issue', { 'retry-after': '3' }))
  const err = await upstream.check(NUMBER).catch((e: unknown) => e)
  t.type(err, UpstreamFailure)
  t.equal((err as UpstreamFailure).retryAfterSeconds, 3)
  t.match((err as Error).message, /503 \(it asks to wait 3 s\)/)
  t.equal(fake.requestsFor(NUMBER).length, 1, 'asked to wait 3 s, longer than the retry cap: not asked again sooner')

  fake.script.always('+447700900124', camaraError(429, 'QUOTA_EXCEEDED', 'Out of resource quota.'))
  await t.rejects(upstream.check('+447700900124'), { name: 'UpstreamFailure', message: /429.*QUOTA_EXCEEDED/ })
  t.equal(fake.requestsFor('+447700900124').length, 3)
})

t.test('a base URL with a trailing slash works the same', async t => {
  const { fake } = await setup(t)
  const upstream = new CamaraUpstream({ baseUrl: `${fake.reachabilityUrl}/`, tokens: new StaticAccessToken(TOKEN), timeoutMs: 200, retries: 0, retryBaseMs: 5, retryMaxMs: 20 })
  t.teardown(() => upstream.close())
  t.match(await upstream.check('+990123411'), { connectivity: ['SMS'] })
  t.equal(fake.requests[0]!.path, '/device-reachability-status/v1/retrieve')
})

t.test('a CONNECTED_DATA answer scripted for one number', async t => {
  const { fake, upstream } = await setup(t)
  fake.script.queue(NUMBER, reachabilityStatus('CONNECTED_DATA'))
  t.match(await upstream.check(NUMBER), { is_reachable: true, connectivity: ['DATA'] })
})
