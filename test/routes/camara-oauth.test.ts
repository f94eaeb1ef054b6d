import t, { type Test } from 'tap'
import { OAuthTokenProvider } from '../../src/auth/oauth-token.js'
import { CamaraSubscriptions } from '../../src/reachability/events/camara-subscriptions.js'
import { CamaraUpstream } from '../../src/reachability/upstreams/camara.js'
import { startFakeCamara } from '../fakes/camara.js'
import { addSubscriptions } from '../fakes/camara-subscriptions.js'
import { startFakeOAuth } from '../fakes/oauth.js'
import { buildTestApp } from '../helpers/app.js'
import { waitFor } from '../helpers/wait.js'

// The service configured with CAMARA OAuth2 client credentials: lookups carry tokens from the token URL; a token URL
// that fails is no upstream answer (503 for a lookup, on_unknown for a notification), never a 500; one that refuses
// the credentials answers UNAUTHORIZED, as CAMARA's own 401 does. The subscriptions client shares the lookups' token.

const CLIENT = { clientId: 'rr-service', clientSecret: 'rr-service-secret' }
const SCOPE = 'device-reachability-status:read'

async function setup (t: Test, clientSecret = CLIENT.clientSecret) {
  const oauth = await startFakeOAuth({ ...CLIENT, scope: SCOPE })
  const camara = await startFakeCamara({ oauth })
  const subs = addSubscriptions(camara)
  const { app, bearer } = await buildTestApp({
    REACHABILITY_PROVIDER: 'camara', CAMARA_BASE_URL: camara.reachabilityUrl,
    CAMARA_TOKEN_URL: oauth.tokenUrl, CAMARA_CLIENT_ID: CLIENT.clientId, CAMARA_CLIENT_SECRET: clientSecret, CAMARA_SCOPE: SCOPE,
    REACHABILITY_RETRIES: '0',
    CAMARA_SUBSCRIPTIONS_URL: subs.url, CAMARA_SINK_TOKEN: 'sink-token-for-the-oauth-test', PUBLIC_BASE_URL: 'https://reachroute.example.com',
  })
  t.teardown(async () => { await app.close(); await camara.close(); await oauth.close() })
  const auth = await bearer()
  const lookup = (n: string) => app.inject({ url: `/v1/reachability/${n}?max_age=0`, headers: { authorization: auth } })
  const notify = (to: string) => app.inject({
    method: 'POST', url: '/v1/notifications', headers: { authorization: auth },
    payload: { to, message: { sms: { text: 'hi' }, push: { title: 't', body: 'b' } }, push_token: 'tok' },
  })
  return { app, oauth, camara, subs, lookup, notify }
}

t.test('lookups and subscriptions share one token; it is closed once, after both clients', async t => {
  const closed: string[] = []
  const track = (proto: { close: () => Promise<void> }, name: string) => {
    const close = proto.close
    t.capture(proto, 'close', function (this: typeof proto) { closed.push(name); return close.call(this) })
  }
  track(OAuthTokenProvider.prototype, 'tokens')
  track(CamaraUpstream.prototype, 'upstream')
  track(CamaraSubscriptions.prototype, 'subscriptions')
  const { app, oauth, camara, subs, lookup, notify } = await setup(t)
  t.match((await lookup('+990123444')).json(), { is_reachable: false, status: { code: 'OK' } })
  t.equal((await notify('+990123444')).json().channel, 'fallback_queue')
  await waitFor(() => subs.live().length === 2 ? true : undefined, 3000, 'two subscriptions')
  t.same([...oauth.requests, ...camara.requests].flatMap(r => r.rejected ?? []), [])
  t.equal(oauth.requests.length, 1, 'one token request for the lookups and the subscriptions')

  await app.close()
  t.equal(closed.filter(x => x === 'tokens').length, 1, 'the token provider closed once')
  t.equal(closed.at(-1), 'tokens', 'after the clients that use it')
  t.same(closed.slice(0, -1).sort(), ['subscriptions', 'upstream'])
})

t.test('lookups are answered with a token fetched once', async t => {
  const { oauth, camara, lookup } = await setup(t)
  t.match((await lookup('+990123400')).json(), { is_reachable: true, status: { code: 'OK' }, source: 'upstream' })
  t.match((await lookup('+990123411')).json(), { connectivity: ['SMS'], status: { code: 'OK' } })
  t.equal(oauth.issued(), 1)
  t.same([...oauth.requests, ...camara.requests].flatMap(r => r.rejected ?? []), [])
})

t.test('a token URL that fails: the lookup is 503, a notification follows on_unknown', async t => {
  const { oauth, camara, lookup, notify } = await setup(t)
  oauth.script.next({ status: 503, json: { error: 'temporarily_unavailable' } }, { status: 502, raw: 'Bad Gateway' })
  const res = await lookup('+990123400')
  t.equal(res.statusCode, 503)
  t.match(res.json(), { type: /upstream-unavailable$/ })
  const sent = await notify('+990123400')
  t.equal(sent.statusCode, 202)
  t.match(sent.json(), { channel: 'sms', reachability: null, reason: /gave no answer; on_unknown is sms/ })
  t.equal(camara.requests.length, 0)
})

t.test('client credentials the token URL refuses: UNAUTHORIZED, naming its error', async t => {
  const { camara, lookup } = await setup(t, 'not-the-secret')
  const res = await lookup('+990123400')
  t.equal(res.statusCode, 200)
  t.match(res.json(), { is_reachable: false, status: { code: 'UNAUTHORIZED', message: /token URL answered 401: invalid_client: Client authentication failed/ } })
  t.equal(camara.requests.length, 0)
})
