import t from 'tap'
import { ClientCredentialsTokenProvider } from '../../../src/auth/client-credentials.js'
import type { OAuthTokenError } from '../../../src/auth/oauth-token.js'
import { CamaraUpstream } from '../../../src/reachability/upstreams/camara.js'
import { UpstreamFailure } from '../../../src/reachability/upstreams/upstream.js'
import { camaraError, type FakeCamara, startFakeCamara } from '../../fakes/camara.js'
import { type FakeOAuth, startFakeOAuth } from '../../fakes/oauth.js'

// The CAMARA upstream with OAuth2 client credentials: the fake operator takes only unexpired tokens its fake
// token endpoint issued, on the test's clock.

const CLIENT = { clientId: 'rr-client', clientSecret: 'rr-secret' }
const SCOPE = 'device-reachability-status:read'
const NUMBER = '+447700900123'

function manualClock () {
  let now = Date.now()
  return { now: () => now, advance: (seconds: number) => { now += seconds * 1000 } }
}

interface Teardown { teardown (fn: () => Promise<void>): void }

async function setup (t: Teardown, options: { clientSecret?: string, tokenDelayMs?: number } = {}) {
  const clock = manualClock()
  const oauth = await startFakeOAuth({ ...CLIENT, scope: SCOPE, expiresInSeconds: 3600, now: clock.now })
  const camara = await startFakeCamara({ oauth })
  const errors: OAuthTokenError[] = []
  const tokens = new ClientCredentialsTokenProvider({
    ...CLIENT, ...(options.clientSecret ? { clientSecret: options.clientSecret } : {}), scope: SCOPE,
    tokenUrl: oauth.tokenUrl, timeoutMs: 1000, now: clock.now, onError: err => errors.push(err),
  })
  const upstream = new CamaraUpstream({ baseUrl: camara.reachabilityUrl, tokens, timeoutMs: 1000, retries: 2, retryBaseMs: 5, retryMaxMs: 20 })
  t.teardown(async () => { await upstream.close(); await tokens.close(); await camara.close(); await oauth.close() })
  return { clock, oauth, camara, upstream, errors }
}

const tokenOf = (camara: FakeCamara, i: number) => camara.requests[i]!.headers.authorization?.replace('Bearer ', '')
const refusals = (oauth: FakeOAuth, camara: FakeCamara) => [...oauth.requests, ...camara.requests].flatMap(r => r.rejected ?? [])

t.test('lookups carry a token from the token URL; concurrent lookups share one fetch', async t => {
  const { oauth, camara, upstream } = await setup(t)
  const answers = await Promise.all(['+990123400', '+990123411', '+990123422', '+990123433'].map(n => upstream.check(n)))
  t.same(answers.map(a => a.status.code), ['OK', 'OK', 'OK', 'OK'])
  t.equal(oauth.requests.length, 1, 'one token request for four lookups at once')
  t.equal(new Set(camara.requests.map(r => r.headers.authorization)).size, 1)
  await upstream.check(NUMBER)
  t.equal(oauth.requests.length, 1, 'and the token is kept for the next lookup')
  t.same(refusals(oauth, camara), [])
})

t.test('a token is renewed before it expires: the operator never sees an expired one', async t => {
  const { clock, oauth, camara, upstream } = await setup(t)
  await upstream.check(NUMBER)
  const first = tokenOf(camara, 0)!
  clock.advance(3600)
  t.notOk(oauth.accepts(first), 'the first token has expired at the operator')
  t.match(await upstream.check(NUMBER), { status: { code: 'OK' } })
  t.not(tokenOf(camara, 1), first)
  t.equal(oauth.issued(), 2)
  t.same(refusals(oauth, camara), [])
})

t.test('a token the operator refuses (401) is replaced and the lookup asked once more', async t => {
  const { oauth, camara, upstream } = await setup(t)
  await upstream.check(NUMBER)
  const revoked = tokenOf(camara, 0)!
  oauth.revoke(revoked)
  t.match(await upstream.check(NUMBER), { is_reachable: true, status: { code: 'OK' } })
  t.equal(camara.requests.length, 3)
  t.match(camara.requests[1]!, { rejected: /not authenticated/ })
  t.equal(camara.requests[1]!.correlator, camara.requests[2]!.correlator, 'the same lookup, asked again')
  t.not(tokenOf(camara, 2), revoked)
  t.equal(oauth.issued(), 2)
})

t.test('a 401 that lasts with a fresh token is UNAUTHORIZED, after one more try only', async t => {
  const { oauth, camara, upstream } = await setup(t)
  camara.script.queue(NUMBER, camaraError(401, 'UNAUTHENTICATED', 'expired'), camaraError(401, 'AUTHENTICATION_REQUIRED', 'still no'))
  t.match(await upstream.check(NUMBER), { is_reachable: false, status: { code: 'UNAUTHORIZED', message: 'still no' } })
  t.equal(camara.requests.length, 2)
  t.equal(oauth.issued(), 2)
  t.not(tokenOf(camara, 0), tokenOf(camara, 1))
})

t.test('a 403 is not retried: a new token would carry the same rights', async t => {
  const { oauth, camara, upstream } = await setup(t)
  camara.script.queue(NUMBER, camaraError(403, 'PERMISSION_DENIED', 'no consent'))
  t.match(await upstream.check(NUMBER), { status: { code: 'UNAUTHORIZED', message: 'no consent' } })
  t.equal(camara.requests.length, 1)
  t.equal(oauth.issued(), 1)
})

t.test('client credentials the token URL refuses: UNAUTHORIZED naming its error, told once, the operator not asked', async t => {
  const { oauth, camara, upstream, errors } = await setup(t, { clientSecret: 'wrong-secret' })
  const answers = await Promise.all([upstream.check(NUMBER), upstream.check('+990123400')])
  for (const answer of answers) {
    t.same(answer, {
      is_reachable: false, connectivity: [], latest_status_at: null,
      status: { code: 'UNAUTHORIZED', message: 'no CAMARA access token: the token URL answered 401: invalid_client: Client authentication failed' },
    })
  }
  t.equal(errors.length, 1, 'one failed fetch for both lookups')
  t.equal(oauth.requests.length, 1)
  t.equal(camara.requests.length, 0)
})

t.test('a token URL that fails (5xx, nobody listening) is no answer: UpstreamFailure, never an answer', async t => {
  const { oauth, camara, upstream } = await setup(t)
  oauth.script.next({ status: 503, headers: { 'retry-after': '4' }, json: { error: 'temporarily_unavailable' } })
  const err = await upstream.check(NUMBER).catch((e: unknown) => e)
  t.type(err, UpstreamFailure)
  t.match(err, { refused: false, retryAfterSeconds: 4, message: /camara: no CAMARA access token: the token URL answered 503/ })
  t.equal(camara.requests.length, 0)
  t.match(await upstream.check(NUMBER), { status: { code: 'OK' } }, 'the next lookup asks the token URL again')

  const nowhereTokens = new ClientCredentialsTokenProvider({ ...CLIENT, tokenUrl: 'http://127.0.0.1:9/token', timeoutMs: 500 })
  const nowhere = new CamaraUpstream({ baseUrl: camara.reachabilityUrl, tokens: nowhereTokens, timeoutMs: 500, retries: 0, retryBaseMs: 5, retryMaxMs: 20 })
  t.teardown(async () => { await nowhere.close(); await nowhereTokens.close() })
  await t.rejects(nowhere.check(NUMBER), { name: 'UpstreamFailure', refused: false, message: /no answer from the token URL/ })
})

t.test('an abort of the caller\'s signal ends the wait for a token at once', async t => {
  const { oauth, upstream } = await setup(t)
  oauth.script.next({ status: 200, delayMs: 2000, json: { access_token: 'late', token_type: 'Bearer', expires_in: 3600 } })
  const started = Date.now()
  const err = await upstream.check(NUMBER, { signal: AbortSignal.timeout(50) }).catch((e: unknown) => e)
  t.match(err, { name: 'TimeoutError' })
  t.notOk(err instanceof UpstreamFailure)
  t.ok(Date.now() - started < 1000)
})
