import t from 'tap'
import { ClientCredentialsTokenProvider } from '../../src/auth/client-credentials.js'
import { StaticAccessToken } from '../../src/auth/oauth-token.js'
import { CamaraSubscriptions, SubscriptionError } from '../../src/reachability/events/camara-subscriptions.js'
import { camaraError, startFakeCamara } from '../fakes/camara.js'
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

t.test('an operator refusing duplicates (409 ALREADY_EXISTS)', async t => {
  const camara = await startFakeCamara({ accessToken: 'token' })
  const subs = addSubscriptions(camara)
  const client = new CamaraSubscriptions({ baseUrl: subs.url, tokens: new StaticAccessToken('token'), timeoutMs: 1000, retries: 0, retryBaseMs: 1, retryMaxMs: 1 })
  t.teardown(async () => { await client.close(); await camara.close() })
  const hours = (n: number) => new Date(Date.now() + n * 3600_000)
  const ours = { phoneNumber: '+447911123456', type: 'reachability-data', sink: 'https://rr.example.com/v1/webhooks/camara', sinkToken: 'sink', expireAt: hours(2) }
  const listed = () => camara.requests.filter(r => r.method === 'GET').length

  t.test('adopts our live subscription, ignoring those of another sink, type or number, even lasting longer', async t => {
    const others = [
      await client.create({ ...ours, sink: 'https://other.example.com/sink', expireAt: hours(9) }),
      await client.create({ ...ours, type: 'reachability-sms', expireAt: hours(9) }),
    ]
    const mine = await client.create(ours)
    others.push(await client.create({ ...ours, phoneNumber: '+447911123457', expireAt: hours(9) }))
    subs.dedupe = true
    t.equal(await client.create({ ...ours, expireAt: hours(3) }), mine)
    t.equal(subs.subscriptions.length, 4, 'nothing made')
    t.equal(listed(), 1, 'the list asked once')
    t.ok(camara.requests.every(r => r.headers.authorization === 'Bearer token' && !r.rejected))
    const get = camara.requests.find(r => r.method === 'GET')!
    t.equal(get.path, '/device-reachability-status-subscriptions/v0.7/subscriptions')
    t.equal(get.headers['content-type'], undefined, 'no body, no Content-Type')
  })

  t.test('of several of ours, the one lasting longest', async t => {
    subs.dedupe = false
    const phoneNumber = '+447911123458'
    const short = await client.create({ ...ours, phoneNumber, expireAt: hours(2) })
    const long = await client.create({ ...ours, phoneNumber, expireAt: hours(5) })
    await client.create({ ...ours, phoneNumber, expireAt: hours(3) })
    subs.dedupe = true
    t.equal(await client.create({ ...ours, phoneNumber }), long)
    t.not(long, short)
  })

  t.test('none of ours listed: a SubscriptionError saying so', async t => {
    subs.script.next(camaraError(409, 'ALREADY_EXISTS', 'Trying to create an existing resource.'))
    await t.rejects(client.create({ ...ours, phoneNumber: '+447911123459' }), { name: 'SubscriptionError', message: /409 ALREADY_EXISTS.*lists none of ours/ })
  })

  t.test('409 ABORTED, or another code: a SubscriptionError naming it, the list not asked', async t => {
    const before = listed()
    subs.script.next(camaraError(409, 'ABORTED', 'Concurrency conflict.'), camaraError(409, 'CONFLICT', 'Something else.'))
    await t.rejects(client.create(ours), { name: 'SubscriptionError', message: /HTTP 409 ABORTED: Concurrency conflict/ })
    await t.rejects(client.create(ours), { name: 'SubscriptionError', message: /HTTP 409 CONFLICT/ })
    t.equal(listed(), before)
  })
})

t.test('ALREADY_EXISTS and a list read leniently: unreadable items and ended ones skipped, never adopted', async t => {
  const received: Received[] = []
  const sink = 'https://rr.example.com/v1/webhooks/camara'
  const type = 'org.camaraproject.device-reachability-status-subscriptions.v0.reachability-data'
  const phoneNumber = '+447911123456'
  const item = (id: string, extra: Record<string, unknown> = {}) => ({
    id, protocol: 'HTTP', sink, types: [type], config: { subscriptionDetail: { device: { phoneNumber } } }, ...extra,
  })
  let list: unknown = []
  const fake = await startFakeServer(r => {
    received.push(r)
    return r.method === 'POST' ? camaraError(409, 'ALREADY_EXISTS') : { status: 200, json: list }
  })
  const client = new CamaraSubscriptions({ baseUrl: `${fake.url}/v0.7`, tokens: new StaticAccessToken('token'), timeoutMs: 1000, retries: 0, retryBaseMs: 1, retryMaxMs: 1 })
  t.teardown(async () => { await client.close(); await fake.close() })
  const request = { phoneNumber, type: 'reachability-data', sink, sinkToken: 'sink', expireAt: new Date(Date.now() + 3600_000) }
  const later = (hours: number) => new Date(Date.now() + hours * 3600_000).toISOString()

  list = [
    'not an object', null, { id: 'no-config', protocol: 'HTTP', sink, types: [type] },
    item('two-types', { types: [type, 'org.camaraproject.device-reachability-status-subscriptions.v0.reachability-sms'] }),
    item('deleted', { status: 'DELETED', expiresAt: later(9) }), item('expired', { status: 'EXPIRED' }),
    item('ended-an-hour-ago', { expiresAt: later(-1) }), item('', { expiresAt: later(9) }),
    item('bad-date', { expiresAt: 'tomorrow' }),
    item('short', { config: { subscriptionDetail: { device: { phoneNumber } }, subscriptionExpireTime: later(2) } }),
    item('longer-by-expiresAt', { config: { subscriptionDetail: { device: { phoneNumber } }, subscriptionExpireTime: later(1) }, expiresAt: later(3) }),
  ]
  t.equal(await client.create(request), 'longer-by-expiresAt', 'expiresAt (the operator\'s) over subscriptionExpireTime (ours)')
  t.equal(received.at(-1)!.method, 'GET')
  t.equal(received.at(-1)!.path, '/v0.7/subscriptions')

  list = [item('b'), item('a'), item('dated', { expiresAt: later(5) })]
  t.equal(await client.create(request), 'a', 'none given: no expiry, so the longest; the same id whatever the order')
  list = [item('dated', { expiresAt: later(5) }), item('a'), item('b')]
  t.equal(await client.create(request), 'a')

  list = [item('paused', { status: 'INACTIVE', expiresAt: later(9) }), item('live', { status: 'ACTIVE', expiresAt: later(2) })]
  t.equal(await client.create(request), 'live', 'an active one over a longer one that is temporarily inactive')
  list = [item('paused', { status: 'INACTIVE', expiresAt: later(9) })]
  t.equal(await client.create(request), 'paused', 'an inactive one when it is the only one of ours (it may come back)')

  list = [item('deleted', { status: 'DELETED' })]
  await t.rejects(client.create(request), { name: 'SubscriptionError', message: /lists none of ours/ })
  list = { subscriptions: [item('a')] }
  await t.rejects(client.create(request), { name: 'SubscriptionError', message: /not a JSON array/ })
})

t.test('a create is not safe to repeat: before each retry the list is asked, and ours adopted rather than made again', async t => {
  const camara = await startFakeCamara({ accessToken: 'token' })
  const subs = addSubscriptions(camara)
  const client = new CamaraSubscriptions({ baseUrl: subs.url, tokens: new StaticAccessToken('token'), timeoutMs: 1000, retries: 2, retryBaseMs: 1, retryMaxMs: 5 })
  t.teardown(async () => { await client.close(); await camara.close() })
  const ours = { phoneNumber: '+447911123456', type: 'reachability-data', sink: 'https://rr.example.com/v1/webhooks/camara', sinkToken: 'sink', expireAt: new Date(Date.now() + 7200_000) }
  const calls = () => camara.requests.map(r => r.method)
  const mark = () => camara.requests.length

  // An operator allowing duplicates (dedupe off) whose gateway lost the answer: made once, adopted.
  subs.lostAnswers = 1
  let from = mark()
  const adopted = await client.create(ours)
  t.same(calls().slice(from), ['POST', 'GET'], 'the list asked before a second POST, none sent')
  t.same(subs.live().map(s => s.id), [adopted], 'one subscription, the one adopted')

  // A 503 that made nothing: the list has none of ours for the number, so it is sent again.
  subs.script.next(camaraError(503, 'UNAVAILABLE', 'Service unavailable.'))
  from = mark()
  const made = await client.create({ ...ours, phoneNumber: '+447911123457' })
  t.same(calls().slice(from), ['POST', 'GET', 'POST'])
  t.same(subs.live().filter(s => s.phoneNumber === '+447911123457').map(s => s.id), [made])

  // A 202 (made asynchronously) without an id: the list names it; none listed is a SubscriptionError saying so.
  subs.script.next({ status: 202, json: {} })
  from = mark()
  t.equal(await client.create(ours), adopted, 'the 202\'s subscription found by the list')
  t.same(calls().slice(from), ['POST', 'GET'])
  subs.script.next({ status: 202, json: {} })
  await t.rejects(client.create({ ...ours, phoneNumber: '+447911123458' }), { name: 'SubscriptionError', message: /HTTP 202 without an id, and the operator lists none of ours/ })
})

t.test('a list that cannot be read before a retry ends the retries: the create fails as its last attempt did, sent once', async t => {
  const received: Received[] = []
  const fake = await startFakeServer(r => {
    received.push(r)
    return r.method === 'POST' ? camaraError(503, 'UNAVAILABLE', 'Service unavailable.') : camaraError(500, 'INTERNAL', 'Server error.')
  })
  const client = new CamaraSubscriptions({ baseUrl: `${fake.url}/v0.7`, tokens: new StaticAccessToken('token'), timeoutMs: 1000, retries: 2, retryBaseMs: 1, retryMaxMs: 5 })
  t.teardown(async () => { await client.close(); await fake.close() })
  const request = { phoneNumber: '+447911123456', type: 'reachability-data', sink: 'https://rr.example.com/v1/webhooks/camara', sinkToken: 'sink', expireAt: new Date(Date.now() + 3600_000) }
  await t.rejects(client.create(request), { name: 'SubscriptionError', message: /answered HTTP 503/ })
  t.equal(received.filter(r => r.method === 'POST').length, 1, 'one POST: never sent again blind')
  t.equal(received.filter(r => r.method === 'GET').length, 3, 'the list itself is a read, retried as reads are')
})
