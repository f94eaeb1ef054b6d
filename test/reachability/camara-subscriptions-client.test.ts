import t from 'tap'
import { StaticAccessToken } from '../../src/auth/oauth-token.js'
import { CamaraSubscriptions, SubscriptionError } from '../../src/reachability/events/camara-subscriptions.js'
import { type Received, type Reply, startFakeServer } from '../fakes/scripted-server.js'

// The subscriptions client's edges: an operator's 201 that is not JSON is a SubscriptionError (as any refusal is,
// logged by the caller, polling goes on), and a DELETE carries no body and so no Content-Type.

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
