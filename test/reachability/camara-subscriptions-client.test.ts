import t from 'tap'
import { ClientCredentialsTokenProvider } from '../../src/auth/client-credentials.js'
import { StaticAccessToken } from '../../src/auth/oauth-token.js'
import { CamaraSubscriptions, SubscriptionError } from '../../src/reachability/events/camara-subscriptions.js'
import { startFakeCamara } from '../fakes/camara.js'
import { addSubscriptions } from '../fakes/camara-subscriptions.js'
import { startFakeOAuth } from '../fakes/oauth.js'
import { type Received, type Reply, startFakeServer } from '../fakes/scripted-server.js'

// The subscriptions client's edges: an operator's 201 that is not JSON is a SubscriptionError (as any refusal is,
// logged by the caller, polling goes on), a DELETE carries no body and so no Content-Type, and its access tokens.

t.test('a 201 that is not JSON is a SubscriptionError; a DELETE sends no Content-Type', async t => {
  const received: Received[] = []
  let reply: Reply = { status: 201, raw: '<html>created</html>', headers: { 'content-type': 'text/html' } }
  const fake = await startFakeServer(r => { received.push(r); return reply })
  const client = new CamaraSubscriptions({ baseUrl: `${fake.url}/v0.7`, tokens: new StaticAccessToken('token'), timeoutMs: 1000, retries: 0, retryBaseMs: 1, retryMaxMs: 1 })
  t.teardown(async () => { await client.close(); await fake.close() })
  const request = { phoneNumber: '+990123444', type: 'reachability-data', sink: 'https://rr.example.com/v1/webhooks/camara', sinkToken: 'sink', expireAt: new Date(Date.now() + 3600_000) }
  await t.rejects(client.create(request), { name: 'SubscriptionError', message: /not JSON: <html>created/ })
  t.type(await client.create(request).catch(err => err), SubscriptionError)

  reply = { status: 204 }
  await client.delete('sub-1')
  const del = received.at(-1)!
  t.equal(del.method, 'DELETE')
  t.equal(del.path, '/v0.7/subscriptions/sub-1')
  t.equal(del.headers['content-type'], undefined, 'no body, no Content-Type')
  t.equal(del.headers.authorization, 'Bearer token')
})

t.test('with OAuth2 client credentials: a token from the token URL, replaced once on a 401; none to be had is a SubscriptionError', async t => {
  const oauth = await startFakeOAuth({ clientId: 'rr-client', clientSecret: 'rr-secret' })
  const camara = await startFakeCamara({ oauth })
  const subs = addSubscriptions(camara)
  const tokens = new ClientCredentialsTokenProvider({ clientId: 'rr-client', clientSecret: 'rr-secret', tokenUrl: oauth.tokenUrl, timeoutMs: 1000 })
  const client = new CamaraSubscriptions({ baseUrl: subs.url, tokens, timeoutMs: 1000, retries: 0, retryBaseMs: 1, retryMaxMs: 1 })
  t.teardown(async () => { await client.close(); await tokens.close(); await camara.close(); await oauth.close() })
  const request = { phoneNumber: '+990123444', type: 'reachability-data', sink: 'https://rr.example.com/v1/webhooks/camara', sinkToken: 'sink', expireAt: new Date(Date.now() + 3600_000) }

  const first = await client.create(request)
  t.equal(oauth.issued(), 1)
  oauth.revoke(oauth.requests[0]!.issued!)
  const second = await client.create(request)
  t.same(subs.live().map(s => s.id), [first, second], 'the creation refused with 401 made nothing; the one sent again did')
  t.equal(oauth.issued(), 2)
  oauth.revoke(oauth.requests[1]!.issued!)
  await client.delete(first)
  t.same(subs.live().map(s => s.id), [second])
  t.same(camara.requests.map(r => `${r.method} ${r.rejected ? 401 : 'ok'}`), ['POST ok', 'POST 401', 'POST ok', 'DELETE 401', 'DELETE ok'])
  t.same(oauth.requests.flatMap(r => r.rejected ?? []), [])

  oauth.revoke(oauth.requests[2]!.issued!)
  oauth.script.next({ status: 401, json: { error: 'invalid_client', error_description: 'Client authentication failed' } })
  await t.rejects(client.create(request), { name: 'SubscriptionError', message: 'no CAMARA access token: the token URL answered 401: invalid_client: Client authentication failed' })
})
