import t, { type Test } from 'tap'
import { startFakeCamara } from '../fakes/camara.js'
import { startFakeOAuth } from '../fakes/oauth.js'
import { buildTestApp } from '../helpers/app.js'

// The service configured with CAMARA OAuth2 client credentials: lookups carry tokens from the token URL; a token URL
// that fails is no upstream answer (503 for a lookup, on_unknown for a notification), never a 500; one that refuses
// the credentials answers UNAUTHORIZED, as CAMARA's own 401 does.

const CLIENT = { clientId: 'rr-service', clientSecret: 'rr-service-secret' }
const SCOPE = 'device-reachability-status:read'

async function setup (t: Test, clientSecret = CLIENT.clientSecret) {
  const oauth = await startFakeOAuth({ ...CLIENT, scope: SCOPE })
  const camara = await startFakeCamara({ oauth })
  const { app, bearer } = await buildTestApp({
    REACHABILITY_PROVIDER: 'camara', CAMARA_BASE_URL: camara.reachabilityUrl,
    CAMARA_TOKEN_URL: oauth.tokenUrl, CAMARA_CLIENT_ID: CLIENT.clientId, CAMARA_CLIENT_SECRET: clientSecret, CAMARA_SCOPE: SCOPE,
    REACHABILITY_RETRIES: '0',
  })
  t.teardown(async () => { await app.close(); await camara.close(); await oauth.close() })
  const auth = await bearer()
  const lookup = (n: string) => app.inject({ url: `/v1/reachability/${n}?max_age=0`, headers: { authorization: auth } })
  const notify = (to: string) => app.inject({
    method: 'POST', url: '/v1/notifications', headers: { authorization: auth },
    payload: { to, message: { sms: { text: 'hi' }, push: { title: 't', body: 'b' } }, push_token: 'tok' },
  })
  return { oauth, camara, lookup, notify }
}

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
