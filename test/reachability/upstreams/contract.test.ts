import t from 'tap'
import { ClientCredentialsTokenProvider } from '../../../src/auth/client-credentials.js'
import { StaticAccessToken } from '../../../src/auth/oauth-token.js'
import { CamaraUpstream } from '../../../src/reachability/upstreams/camara.js'
import { SandboxUpstream } from '../../../src/reachability/upstreams/sandbox.js'
import { type ReachabilityUpstream, UpstreamFailure } from '../../../src/reachability/upstreams/upstream.js'
import { VonageUpstream } from '../../../src/reachability/upstreams/vonage.js'
import { camaraError, startFakeCamara } from '../../fakes/camara.js'
import { startFakeOAuth } from '../../fakes/oauth.js'
import { generateApplicationKeys, problem, startFakeVonage } from '../../fakes/vonage.js'

// One suite, every adapter of the reachability upstream port. The Vonage and CAMARA adapters
// talk to fakes that answer the virtual operator's test numbers as the sandbox does; CAMARA runs
// with a static token and with OAuth2 client credentials (a fake token endpoint beside it).

interface Harness {
  upstream: ReachabilityUpstream
  /** A number for which no answer can be had. */
  failingNumber: string
  /** HTTP requests that reached the fake about a number, when there is a fake. */
  requestsFor?: (phoneNumber: string) => number
  /** Why the fake refused requests, when there is a fake: should stay empty. */
  refusals?: () => string[]
  close (): Promise<void>
}

const RETRIES = 2
const http = { timeoutMs: 1000, retries: RETRIES, retryBaseMs: 5, retryMaxMs: 20 }

function contract (name: string, open: () => Promise<Harness>) {
  t.test(name, async t => {
    const h = await open()
    t.teardown(() => h.close())

    t.test('reachable for data and SMS', async t => {
      const answer = await h.upstream.check('+990123400')
      t.match(answer, { is_reachable: true, status: { code: 'OK' } })
      t.same([...answer.connectivity].sort(), ['DATA', 'SMS'])
      t.type(answer.latest_status_at, 'string')
    })

    t.test('reachable for SMS only', async t => {
      t.match(await h.upstream.check('+990123411'), { is_reachable: true, connectivity: ['SMS'], status: { code: 'OK' } })
    })

    t.test('reachable for data only', async t => {
      t.match(await h.upstream.check('+990123422'), { is_reachable: true, connectivity: ['DATA'], status: { code: 'OK' } })
    })

    t.test('not reachable: no connectivity, yet a successful reading', async t => {
      const answer = await h.upstream.check('+990123433')
      t.match(answer, { is_reachable: false, status: { code: 'OK' } })
      t.same(answer.connectivity, [])
    })

    t.test('an unknown number answers NOT_FOUND', async t => {
      const answer = await h.upstream.check('+990123499')
      t.match(answer, { is_reachable: false, status: { code: 'NOT_FOUND' } })
      t.same(answer.connectivity, [])
    })

    t.test('a transient failure throws UpstreamFailure after a bounded number of attempts', async t => {
      await t.rejects(h.upstream.check(h.failingNumber), UpstreamFailure)
      if (h.requestsFor) t.equal(h.requestsFor(h.failingNumber), RETRIES + 1, 'first attempt and its retries, no more')
    })

    t.test('an abort of the caller\'s signal ends the check at once', async t => {
      const started = Date.now()
      const err = await h.upstream.check('+990123477', { signal: AbortSignal.timeout(50) }).then(() => undefined, (e: unknown) => e)
      t.ok(err instanceof Error && ['AbortError', 'TimeoutError'].includes(err.name), `rejects with an abort, got ${String(err)}`)
      t.notOk(err instanceof UpstreamFailure, 'an abort is not an upstream failure')
      t.ok(Date.now() - started < 500, 'without waiting for the answer or retrying')
    })

    if (h.refusals) {
      t.test('every request was well formed and authenticated', async t => {
        t.same(h.refusals!(), [])
      })
    }
  })
}

contract('sandbox', async () => {
  const upstream = new SandboxUpstream({ comebackSeconds: 20 })
  return { upstream, failingNumber: '+990123488', close: () => upstream.close() }
})

contract('vonage', async () => {
  const keys = await generateApplicationKeys()
  const fake = await startFakeVonage({ applicationId: 'app-contract', publicKey: keys.publicKey })
  const failingNumber = '+447700900500'
  fake.script.always(failingNumber, problem(503, 'Service Unavailable'))
  const upstream = new VonageUpstream({
    baseUrl: fake.url,
    path: '/identity-insights/v1/requests',
    applicationId: 'app-contract',
    privateKey: keys.privateKey,
    purpose: 'FraudPreventionAndDetection',
    jwtTtlSeconds: 900,
    ...http,
  })
  return {
    upstream,
    failingNumber,
    requestsFor: n => fake.requestsFor(n).length,
    refusals: () => fake.requests.flatMap(r => r.rejected ?? []),
    close: async () => { await upstream.close(); await fake.close() },
  }
})

contract('camara', async () => {
  const fake = await startFakeCamara({ accessToken: 'operator-token' })
  const failingNumber = '+447700900500'
  fake.script.always(failingNumber, camaraError(503, 'UNAVAILABLE', 'Network issue'))
  const upstream = new CamaraUpstream({ baseUrl: fake.reachabilityUrl, tokens: new StaticAccessToken('operator-token'), ...http })
  return {
    upstream,
    failingNumber,
    requestsFor: n => fake.requestsFor(n).length,
    refusals: () => fake.requests.flatMap(r => r.rejected ?? []),
    close: async () => { await upstream.close(); await fake.close() },
  }
})

contract('camara with OAuth2 client credentials', async () => {
  const oauth = await startFakeOAuth({ clientId: 'rr-contract', clientSecret: 'contract-secret', scope: 'device-reachability-status:read' })
  const fake = await startFakeCamara({ oauth })
  const failingNumber = '+447700900500'
  fake.script.always(failingNumber, camaraError(503, 'UNAVAILABLE', 'Network issue'))
  const tokens = new ClientCredentialsTokenProvider({
    clientId: 'rr-contract', clientSecret: 'contract-secret', scope: 'device-reachability-status:read', tokenUrl: oauth.tokenUrl, timeoutMs: 1000,
  })
  const upstream = new CamaraUpstream({ baseUrl: fake.reachabilityUrl, tokens, ...http })
  return {
    upstream,
    failingNumber,
    requestsFor: n => fake.requestsFor(n).length,
    refusals: () => [...oauth.requests, ...fake.requests].flatMap(r => r.rejected ?? []),
    close: async () => { await upstream.close(); await tokens.close(); await fake.close(); await oauth.close() },
  }
})
