import t from 'tap'
import { ClientCredentialsTokenProvider, type ClientCredentialsOptions } from '../../src/auth/client-credentials.js'
import { OAuthTokenError } from '../../src/auth/oauth-token.js'
import { type FakeOAuth, type FakeOAuthOptions, startFakeOAuth } from '../fakes/oauth.js'

// The client credentials grant against a fake token endpoint that checks the grant type, the HTTP Basic credentials
// and the scope, and issues tokens that expire on the test's clock.

// Characters HTTP Basic alone would get wrong: each is form-urlencoded before id and secret are joined.
const CLIENT = { clientId: 'reachroute client', clientSecret: 'p@ss:w/rd+é' }
const SCOPE = 'dpv:FraudPreventionAndDetection device-reachability-status:read'

function manualClock () {
  let now = Date.now()
  return { now: () => now, advance: (seconds: number) => { now += seconds * 1000 } }
}

interface Teardown { teardown (fn: () => Promise<void>): void }

async function setup (t: Teardown, fakeOptions: Partial<FakeOAuthOptions> = {}, options: Partial<ClientCredentialsOptions> = {}) {
  const clock = manualClock()
  const fake = await startFakeOAuth({ ...CLIENT, scope: SCOPE, now: clock.now, ...fakeOptions })
  const errors: OAuthTokenError[] = []
  const tokens = new ClientCredentialsTokenProvider({
    ...CLIENT, scope: SCOPE, tokenUrl: fake.tokenUrl, timeoutMs: 1000, now: clock.now, onError: err => errors.push(err), ...options,
  })
  t.teardown(async () => { await tokens.close(); await fake.close() })
  return { clock, fake, tokens, errors }
}

const refusals = (fake: FakeOAuth) => fake.requests.flatMap(r => r.rejected ?? [])

t.test('asks for a client_credentials token with HTTP Basic and the scope, form-encoded', async t => {
  const { fake, tokens } = await setup(t)
  const token = await tokens.token()
  t.same(refusals(fake), [])
  t.equal(fake.requests[0]!.issued, token)
  t.equal(fake.requests[0]!.form.toString(), 'grant_type=client_credentials&scope=dpv%3AFraudPreventionAndDetection+device-reachability-status%3Aread')
  t.equal(fake.requests[0]!.headers.authorization,
    `Basic ${Buffer.from('reachroute+client:p%40ss%3Aw%2Frd%2B%C3%A9').toString('base64')}`)
})

t.test('without a scope configured, none is asked for', async t => {
  const { fake, tokens } = await setup(t, { scope: undefined }, { scope: undefined })
  await tokens.token()
  t.same(refusals(fake), [])
  t.notOk(fake.requests[0]!.form.has('scope'))
})

t.test('concurrent callers share one fetch; the token is kept until shortly before it expires', async t => {
  const { clock, fake, tokens } = await setup(t, { expiresInSeconds: 3600 })
  const all = await Promise.all(Array.from({ length: 5 }, () => tokens.token()))
  t.equal(new Set(all).size, 1)
  t.equal(fake.issued(), 1)
  clock.advance(3000)
  t.equal(await tokens.token(), all[0], 'still the same token 50 minutes in')
  clock.advance(560)
  const renewed = await tokens.token()
  t.not(renewed, all[0], 'a new one 60 s before the first expires')
  t.ok(fake.accepts(renewed))
  t.equal(fake.issued(), 2)
})

t.test('invalidate drops only the token it names', async t => {
  const { fake, tokens } = await setup(t)
  const current = await tokens.token()
  tokens.invalidate('some-older-token')
  t.equal(await tokens.token(), current)
  tokens.invalidate(current)
  t.not(await tokens.token(), current)
  t.equal(fake.issued(), 2)
})

const REFUSAL_KEPT_MS = 30_000

t.test('wrong client credentials: a refusal naming the token URL\'s error, told once for all its waiting callers, kept as asked', async t => {
  const { clock, fake, tokens, errors } = await setup(t, { clientSecret: 'the-real-secret' }, { refusalKeptMs: REFUSAL_KEPT_MS })
  const results = await Promise.allSettled([tokens.token(), tokens.token(), tokens.token()])
  for (const result of results) {
    t.equal(result.status, 'rejected')
    const err = (result as PromiseRejectedResult).reason as OAuthTokenError
    t.type(err, OAuthTokenError)
    t.match(err, { transient: false, refused: true, statusCode: 401, message: 'the token URL answered 401: invalid_client: Client authentication failed' })
  }
  t.equal(errors.length, 1)
  const asked = fake.requests.length
  clock.advance(REFUSAL_KEPT_MS / 1000 - 1)
  await t.rejects(tokens.token(), { refused: true, message: /invalid_client/ }, 'the refusal is the answer for a while')
  t.equal(fake.requests.length, asked, 'without asking the token URL again')
  t.equal(errors.length, 1, 'nor telling it again')
  clock.advance(2)
  await t.rejects(tokens.token(), { refused: true, message: /invalid_client/ }, 'then the next call asks again')
  t.equal(fake.requests.length, asked + 1)
  t.equal(errors.length, 2)
})

t.test('a scope the token URL does not grant is a refusal too; without refusalKeptMs, the next call asks again', async t => {
  const { fake, tokens } = await setup(t, {}, { scope: 'device-reachability-status:write' })
  await t.rejects(tokens.token(), { refused: true, message: /invalid_scope/ })
  await t.rejects(tokens.token(), { refused: true, message: /invalid_scope/ })
  t.equal(fake.requests.length, 2)
})

t.test('a token URL answering 5xx or 429 is transient, with its Retry-After', async t => {
  const { fake, tokens } = await setup(t)
  fake.script.next(
    { status: 503, headers: { 'retry-after': '7' }, json: { error: 'temporarily_unavailable' } },
    { status: 429, raw: 'slow down' },
  )
  await t.rejects(tokens.token(), { transient: true, refused: false, retryAfterSeconds: 7, message: /503: temporarily_unavailable/ })
  await t.rejects(tokens.token(), { transient: true, refused: false, message: /429: HTTP 429/ })
  t.ok(await tokens.token(), 'then a token')
})

t.test('a token URL nobody listens on is transient', async t => {
  const tokens = new ClientCredentialsTokenProvider({ ...CLIENT, tokenUrl: 'http://127.0.0.1:9/token', timeoutMs: 500 })
  t.teardown(() => tokens.close())
  await t.rejects(tokens.token(), { name: 'OAuthTokenError', transient: true, refused: false, message: /no answer from the token URL/ })
})

t.test('an answer without expires_in lasts the assumed lifetime; without one assumed, it is no token', async t => {
  const { clock, fake, tokens } = await setup(t, {}, { assumedExpiresInSeconds: 300 })
  fake.script.next({ status: 200, json: { access_token: 'no-expiry', token_type: 'Bearer' } })
  t.equal(await tokens.token(), 'no-expiry')
  clock.advance(239)
  t.equal(await tokens.token(), 'no-expiry')
  clock.advance(2)
  t.not(await tokens.token(), 'no-expiry')

  const strict = new ClientCredentialsTokenProvider({ ...CLIENT, scope: SCOPE, tokenUrl: fake.tokenUrl, timeoutMs: 1000 })
  t.teardown(() => strict.close())
  fake.script.next({ status: 200, json: { access_token: 'no-expiry', token_type: 'Bearer' } })
  await t.rejects(strict.token(), { transient: true, message: /without an access_token and expires_in/ })
})

t.test('a token of a type other than Bearer is not used', async t => {
  const { fake, tokens } = await setup(t)
  fake.script.next(
    { status: 200, json: { access_token: 'a-dpop-token', token_type: 'DPoP', expires_in: 3600 } },
    { status: 200, json: { access_token: 'lower-case', token_type: 'bearer', expires_in: 3600 } },
  )
  await t.rejects(tokens.token(), { transient: false, refused: false, message: /issued a DPoP token/ })
  t.equal(await tokens.token(), 'lower-case', 'the type is case-insensitive')
})
