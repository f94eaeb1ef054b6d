import t from 'tap'
import { decodeProtectedHeader } from 'jose'
import { isSuccessCode, STATUS_CODES } from '../../../src/domain/reachability.js'
import { UpstreamFailure } from '../../../src/reachability/upstreams/upstream.js'
import { VonageUpstream, type VonageUpstreamOptions } from '../../../src/reachability/upstreams/vonage.js'
import { slow } from '../../fakes/scripted-server.js'
import {
  brokenJson, type FakeVonage, generateApplicationKeys, insight, insightStatus, LATEST_STATUS_AT, problem, reachable, startFakeVonage,
} from '../../fakes/vonage.js'

const APPLICATION_ID = 'a1b2c3d4-app'
const keys = await generateApplicationKeys()
const NUMBER = '+447700900123'

interface Teardown { teardown (fn: () => Promise<void>): void }

async function setup (t: Teardown, overrides: Partial<VonageUpstreamOptions> = {}): Promise<{ fake: FakeVonage, upstream: VonageUpstream }> {
  const fake = await startFakeVonage({ applicationId: APPLICATION_ID, publicKey: keys.publicKey })
  const upstream = new VonageUpstream({
    baseUrl: fake.url,
    path: '/identity-insights/v1/requests',
    applicationId: APPLICATION_ID,
    privateKey: keys.privateKey,
    purpose: 'FraudPreventionAndDetection',
    jwtTtlSeconds: 900,
    timeoutMs: 2000, // a fake on loopback; 200 ms timed out under load and sent retries the tests did not expect
    retries: 2,
    retryBaseMs: 5,
    retryMaxMs: 20,
    ...overrides,
  })
  t.teardown(async () => { await upstream.close(); await fake.close() })
  return { fake, upstream }
}

const refusals = (fake: FakeVonage) => fake.requests.flatMap(r => r.rejected ?? [])

t.test('the application JWT passes the fake\'s verification and one token serves every check', async t => {
  const { fake, upstream } = await setup(t)
  await upstream.check('+990123400')
  await upstream.check('+990123411')
  await Promise.all(['+990123422', '+990123433', '+990123499'].map(n => upstream.check(n)))

  t.same(refusals(fake), [])
  t.equal(fake.requests.length, 5)
  t.equal(new Set(fake.requests.map(r => r.token)).size, 1, 'signed once, reused')
  const [first] = fake.requests
  t.same(decodeProtectedHeader(first!.token!), { alg: 'RS256', typ: 'JWT' })
  t.equal(first!.claims!.application_id, APPLICATION_ID)
  t.equal(first!.claims!.exp! - first!.claims!.iat!, 900)
})

t.test('a new token is signed once the current one is within 60 s of expiry', async t => {
  let now = Date.now()
  // One request per check, whatever the machine's load.
  const { fake, upstream } = await setup(t, { now: () => now, retries: 0 })
  await upstream.check(NUMBER)
  now += 839_000
  await upstream.check(NUMBER)
  now += 2_000
  await upstream.check(NUMBER)
  await upstream.check(NUMBER)

  t.same(refusals(fake), [])
  const [a, b, c, d] = fake.requests
  t.equal(b!.token, a!.token, 'still reused 61 s before expiry')
  t.not(c!.token, a!.token, 'renewed 59 s before expiry')
  t.not(c!.claims!.jti, a!.claims!.jti, 'with a fresh jti')
  t.equal(d!.token, c!.token, 'and the new one is reused in turn')
})

t.test('the body asks for the reachability insight only, with the configured purpose', async t => {
  const { fake, upstream } = await setup(t)
  await upstream.check(NUMBER)
  t.same(fake.requests[0]!.body, { phone_number: NUMBER, purpose: 'FraudPreventionAndDetection', insights: { reachability: {} } })
  t.match(fake.requests[0]!.headers, { 'content-type': 'application/json' })
})

t.test('a check may override the purpose', async t => {
  const { fake, upstream } = await setup(t)
  await upstream.check(NUMBER, { purpose: 'AccountVerification' })
  t.match(fake.requests[0]!.body, { purpose: 'AccountVerification' })
})

t.test('the older path /v0.1/identity-insights works the same', async t => {
  const { fake, upstream } = await setup(t, { path: '/v0.1/identity-insights' })
  t.match(await upstream.check('+990123400'), { is_reachable: true, connectivity: ['DATA', 'SMS'] })
  t.equal(fake.requests[0]!.path, '/v0.1/identity-insights')
})

t.test('a reachable answer keeps its time, its connectivity, unknown values included', async t => {
  const { fake, upstream } = await setup(t)
  fake.script.queue(NUMBER, reachable(['DATA', 'SMS', 'SATELLITE']))
  t.same(await upstream.check(NUMBER), {
    is_reachable: true,
    connectivity: ['DATA', 'SMS', 'SATELLITE'],
    latest_status_at: LATEST_STATUS_AT,
    status: { code: 'OK', message: 'Success' },
  })
})

t.test('a reachable answer without connectivity has none', async t => {
  const { fake, upstream } = await setup(t)
  fake.script.queue(NUMBER, insight({ is_reachable: true, status: { code: 'PARTIAL_SUCCESS', message: 'Partial' } }))
  t.same(await upstream.check(NUMBER), {
    is_reachable: true, connectivity: [], latest_status_at: null, status: { code: 'PARTIAL_SUCCESS', message: 'Partial' },
  })
})

t.test('PARTIAL_SUCCESS leaving is_reachable out: connectivity listed says reachable; with neither, no answer (never "not reachable")', async t => {
  const { fake, upstream } = await setup(t)
  fake.script.queue(NUMBER, insight({ connectivity: ['SMS'], status: { code: 'PARTIAL_SUCCESS', message: 'Partial' } }))
  t.same(await upstream.check(NUMBER), { is_reachable: true, connectivity: ['SMS'], latest_status_at: null, status: { code: 'PARTIAL_SUCCESS', message: 'Partial' } })
  for (const code of ['PARTIAL_SUCCESS', 'OK']) {
    fake.script.queue(NUMBER, insight({ latest_status_at: LATEST_STATUS_AT, status: { code, message: 'Partial' } }))
    await t.rejects(upstream.check(NUMBER), { name: 'UpstreamFailure', message: new RegExp(`${code} without is_reachable or connectivity`) })
  }
  fake.script.queue(NUMBER, insight({ is_reachable: false, connectivity: ['SMS'], status: { code: 'OK', message: 'Success' } }))
  t.match(await upstream.check(NUMBER), { is_reachable: false, connectivity: [] }, 'is_reachable false stands over a stray connectivity')
})

t.test('every insight status code comes through as it is; an unknown one is kept and is not OK', async t => {
  const { fake, upstream } = await setup(t)
  for (const code of [...STATUS_CODES, 'SOMETHING_NEW']) {
    // A reading (OK, PARTIAL_SUCCESS) says whether the device is reachable; the other codes need not.
    fake.script.queue(NUMBER, isSuccessCode(code) ? insight({ is_reachable: false, status: { code, message: `message of ${code}` } }) : insightStatus(code, `message of ${code}`))
    const answer = await upstream.check(NUMBER)
    t.same(answer.status, { code, message: `message of ${code}` }, code)
    t.equal(answer.is_reachable, false, `${code}: not reachable`)
    t.same(answer.connectivity, [])
  }
  t.notOk(isSuccessCode('SOMETHING_NEW'))
  t.equal(fake.requests.length, STATUS_CODES.length + 1, 'none retried: each is an answer')
})

t.test('429 with a Retry-After within the retry maximum is waited for, then answered', async t => {
  const { fake, upstream } = await setup(t, { retryMaxMs: 1500 })
  fake.script.queue(NUMBER, problem(429, 'Rate limit hit', 'Too Many Requests', { 'retry-after': '1' }), reachable(['SMS']))
  const started = Date.now()
  t.match(await upstream.check(NUMBER), { is_reachable: true, connectivity: ['SMS'] })
  const elapsed = Date.now() - started
  t.ok(elapsed >= 990, `waited for Retry-After (${elapsed} ms)`)
  t.equal(fake.requests.length, 2)
})

t.test('429 with a Retry-After longer than the retry maximum is not asked again sooner: UpstreamFailure with it', async t => {
  const { fake, upstream } = await setup(t, { retryMaxMs: 300 })
  fake.script.queue(NUMBER, problem(429, 'Rate limit hit', 'Too Many Requests', { 'retry-after': '30' }), reachable(['SMS']))
  const err = await upstream.check(NUMBER).catch((e: unknown) => e)
  t.type(err, UpstreamFailure)
  t.equal((err as UpstreamFailure).retryAfterSeconds, 30)
  t.equal(fake.requests.length, 1, 'one request: Vonage asked for 30 s')
})

t.test('5xx is retried a bounded number of times, then UpstreamFailure with the last Retry-After', async t => {
  const { fake, upstream } = await setup(t)
  fake.script.always(NUMBER, problem(503, 'Down for maintenance', 'Service Unavailable', { 'retry-after': '7' }))
  const err = await upstream.check(NUMBER).catch((e: unknown) => e)
  t.type(err, UpstreamFailure)
  t.equal((err as UpstreamFailure).retryAfterSeconds, 7)
  t.match((err as Error).message, /503.*Down for maintenance/)
  t.equal(fake.requests.length, 1, 'one attempt: it asked for 7 s, longer than the retry maximum')
})

t.test('a 500 without Retry-After leaves the retry hint to the caller', async t => {
  const { fake, upstream } = await setup(t, { retries: 0 })
  fake.script.always(NUMBER, problem(500, 'Internal error'))
  const err = await upstream.check(NUMBER).catch((e: unknown) => e)
  t.type(err, UpstreamFailure)
  t.equal((err as UpstreamFailure).retryAfterSeconds, undefined)
  t.equal(fake.requests.length, 1, 'retries: 0 means one attempt')
})

t.test('a slow answer times out and is retried', async t => {
  const { fake, upstream } = await setup(t, { timeoutMs: 100 })
  fake.script.queue(NUMBER, slow(reachable(['DATA', 'SMS']), 1000), reachable(['DATA']))
  const started = Date.now()
  t.match(await upstream.check(NUMBER), { connectivity: ['DATA'] })
  t.ok(Date.now() - started < 600, 'the first attempt was cut at its timeout')
  t.equal(fake.requests.length, 2)
})

t.test('an upstream that never answers in time gives UpstreamFailure after every attempt timed out', async t => {
  const { fake, upstream } = await setup(t, { timeoutMs: 50 })
  fake.script.always(NUMBER, slow(reachable(['DATA']), 1000))
  await t.rejects(upstream.check(NUMBER), UpstreamFailure)
  t.equal(fake.requests.length, 3)
})

t.test('broken JSON is no answer, and is not retried', async t => {
  const { fake, upstream } = await setup(t)
  fake.script.queue(NUMBER, brokenJson())
  await t.rejects(upstream.check(NUMBER), UpstreamFailure)
  t.equal(fake.requests.length, 1)
})

t.test('an answer without the reachability insight is no answer', async t => {
  const { fake, upstream } = await setup(t)
  fake.script.queue(NUMBER, { status: 200, json: { request_id: 'r', insights: {} } })
  await t.rejects(upstream.check(NUMBER), { name: 'UpstreamFailure', message: /reachability/ })
})

t.test('a JWT the fake refuses (wrong key) answers UNAUTHORIZED, without retries', async t => {
  const other = await generateApplicationKeys()
  const { fake, upstream } = await setup(t, { privateKey: other.privateKey })
  const answer = await upstream.check(NUMBER)
  t.match(answer, { is_reachable: false, connectivity: [], status: { code: 'UNAUTHORIZED' } })
  t.match(fake.requests[0]!.rejected, /signature/)
  t.equal(fake.requests.length, 1)
})

t.test('a 401 drops the reused JWT: the next check signs a new one, which is then reused', async t => {
  const { fake, upstream } = await setup(t)
  await upstream.check(NUMBER)
  fake.script.queue(NUMBER, problem(401, 'Invalid token', 'Unauthorized'))
  t.match(await upstream.check(NUMBER), { status: { code: 'UNAUTHORIZED' } })
  await upstream.check(NUMBER)
  await upstream.check(NUMBER)
  const [first, refused, next, after] = fake.requests.map(r => r.headers.authorization)
  t.equal(refused, first, 'the refused check carried the reused JWT')
  t.not(next, refused, 'the next check a new one')
  t.equal(after, next, 'reused after that')
})

t.test('403 answers UNAUTHORIZED with the problem detail, without retries', async t => {
  const { fake, upstream } = await setup(t)
  fake.script.queue(NUMBER, problem(403, 'Not allowed for this application', 'Forbidden'))
  t.match(await upstream.check(NUMBER), { status: { code: 'UNAUTHORIZED', message: 'Not allowed for this application' } })
  t.equal(fake.requests.length, 1)
})

t.test('400 and 404 are no answer about the number: UpstreamFailure, without retries', async t => {
  const { fake, upstream } = await setup(t)
  fake.script.queue(NUMBER, problem(400, 'Invalid purpose for this application', 'Bad Request'))
  await t.rejects(upstream.check(NUMBER), { name: 'UpstreamFailure', message: /400.*Invalid purpose/ })
  t.equal(fake.requests.length, 1)

  const wrongPath = await setup(t, { path: '/identity-insights/v9/nothing' })
  await t.rejects(wrongPath.upstream.check(NUMBER), { name: 'UpstreamFailure', message: /404/ })
  t.equal(wrongPath.fake.requests.length, 1)
})

t.test('no server at all: retried, then UpstreamFailure carrying the network error', async t => {
  const { fake } = await setup(t)
  await fake.close()
  const upstream = new VonageUpstream({
    baseUrl: fake.url, path: '/identity-insights/v1/requests', applicationId: APPLICATION_ID, privateKey: keys.privateKey,
    purpose: 'FraudPreventionAndDetection', jwtTtlSeconds: 900, timeoutMs: 200, retries: 1, retryBaseMs: 5, retryMaxMs: 20,
  })
  t.teardown(() => upstream.close())
  const err = await upstream.check(NUMBER).catch((e: unknown) => e)
  t.type(err, UpstreamFailure)
  t.match((err as Error).cause, { code: 'ECONNREFUSED' })
})

t.test('an already aborted signal sends nothing', async t => {
  const { fake, upstream } = await setup(t)
  const controller = new AbortController()
  controller.abort()
  await t.rejects(upstream.check(NUMBER, { signal: controller.signal }), { name: 'AbortError' })
  t.equal(fake.requests.length, 0)
})

t.test('a private key that cannot sign stops the start with a message naming it', async t => {
  const upstream = new VonageUpstream({
    baseUrl: 'http://127.0.0.1:9', path: '/identity-insights/v1/requests', applicationId: 'app', privateKey: '-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----',
    purpose: 'FraudPreventionAndDetection', jwtTtlSeconds: 900, timeoutMs: 200, retries: 0, retryBaseMs: 5, retryMaxMs: 10,
  })
  t.teardown(() => upstream.close())
  await t.rejects(upstream.verifySetup(), { name: 'ConfigError', message: /VONAGE_PRIVATE_KEY: cannot sign the application JWT/ })
})
