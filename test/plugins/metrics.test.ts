import { connect } from 'node:net'
import t, { type Test } from 'tap'
import { UpstreamFailure } from '../../src/reachability/upstreams/upstream.js'
import { buildTestApp } from '../helpers/app.js'
import { ScriptedUpstream } from '../helpers/upstream.js'
import { waitFor } from '../helpers/wait.js'

// Every test file runs in a process of its own, so the default registry holds this file's counts only;
// still, each check reads how far a counter moved, not its value.

type Labels = Record<string, string>

/** The samples of one metric whose labels include `labels`: [labels, value] each. */
function samples (text: string, name: string, labels: Labels = {}): [Labels, number][] {
  const found: [Labels, number][] = []
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line)
    if (!match || match[1] !== name) continue
    const got = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map(m => [m[1]!, m[2]!]))
    if (Object.entries(labels).every(([k, v]) => got[k] === v)) found.push([got, Number(match[3])])
  }
  return found
}

/** The sum of the matching samples (0 when there is none). */
function value (text: string, name: string, labels: Labels = {}): number {
  return samples(text, name, labels).reduce((sum, [, v]) => sum + v, 0)
}

async function setup (t: Test, env: Record<string, string> = {}, upstream?: ScriptedUpstream) {
  const test = await buildTestApp({ WORKERS: 'on', WORKER_IDLE_POLL_MS: '20', ...env }, upstream ? { upstream } : {})
  t.teardown(() => test.app.close())
  const auth = await test.bearer()
  const scrape = async () => {
    const res = await test.app.inject({ url: '/metrics', headers: { authorization: auth } })
    t.equal(res.statusCode, 200, 'scraped')
    return res.body
  }
  return { ...test, auth, scrape }
}

t.test('GET /metrics is Prometheus text, without auth by default outside production', async t => {
  const { app } = await setup(t)
  const res = await app.inject({ url: '/metrics' })
  t.equal(res.statusCode, 200)
  t.equal(res.headers['content-type'], 'text/plain; version=0.0.4; charset=utf-8')
  t.match(res.body, /^# HELP /m)
  for (const name of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_heap_size_used_bytes']) {
    t.ok(samples(res.body, name).length > 0, `Node process metric ${name}`)
  }
})

t.test('a lookup, a notification delivered, a 404 and a 400 move their metrics', async t => {
  const { app, auth, scrape } = await setup(t)
  const before = await scrape()

  for (let i = 0; i < 2; i++) {
    const res = await app.inject({ url: '/v1/reachability/+990123400', headers: { authorization: auth } })
    t.equal(res.statusCode, 200)
    t.equal(res.json().source, i === 0 ? 'upstream' : 'cache')
  }
  const accepted = await app.inject({ method: 'POST', url: '/v1/notifications', headers: { authorization: auth }, payload: { to: '+990123411', message: { sms: { text: 'Your code is 123456' } } } })
  t.equal(accepted.statusCode, 202)
  const { id } = accepted.json()
  await waitFor(async () => {
    const n = (await app.inject({ url: `/v1/notifications/${id}`, headers: { authorization: auth } })).json()
    return n.status === 'sent' ? n : undefined
  }, 5000, 'the SMS to be sent')
  t.equal((await app.inject({ url: '/v1/no-such-thing', headers: { authorization: auth } })).statusCode, 404)
  t.equal((await app.inject({ method: 'POST', url: '/v1/notifications', headers: { authorization: auth }, payload: { to: '+990123411' } })).statusCode, 400)

  const after = await scrape()
  const moved = (name: string, labels: Labels) => value(after, name, labels) - value(before, name, labels)

  const http = 'reachroute_http_request_duration_seconds_count'
  t.equal(moved(http, { method: 'GET', route: '/v1/reachability/:phone_number', status_code: '200' }), 2, 'HTTP: by route pattern, not the raw URL')
  t.equal(moved(http, { method: 'GET', route: 'unmatched', status_code: '404' }), 1, 'HTTP: a 404 without a route')
  t.equal(moved(http, { method: 'POST', route: '/v1/notifications', status_code: '400' }), 1, 'HTTP: a 400')
  t.equal(moved(http, { method: 'POST', route: '/v1/notifications', status_code: '202' }), 1, 'HTTP: the 202')
  t.same(samples(after, http).filter(([l]) => l.route?.includes('+99')), [], 'no raw phone number in a route label')
  t.ok(samples(after, 'reachroute_http_request_duration_seconds_bucket', { route: '/v1/reachability/:phone_number', le: '0.005' }).length > 0, 'a histogram with buckets')

  const lookups = 'reachroute_reachability_lookups_total'
  t.equal(moved(lookups, { source: 'upstream', status_code: 'OK' }), 2, 'lookups answered by the upstream (the reachability route and the notification)')
  t.equal(moved(lookups, { source: 'cache', status_code: 'OK' }), 1, 'a lookup answered from the cache')

  t.equal(moved('reachroute_upstream_request_duration_seconds_count', { upstream: 'sandbox', outcome: 'answered' }), 2, 'upstream calls timed')
  t.equal(moved('reachroute_upstream_errors_total', { upstream: 'sandbox' }), 0, 'no upstream error')

  t.equal(moved('reachroute_routing_decisions_total', { channel: 'sms', reason: 'connected' }), 1, 'the routing decision, with a reason category')
  t.equal(moved('reachroute_deliveries_total', { channel: 'sms', provider: 'sandbox', outcome: 'sent' }), 1, 'the delivery')
  t.equal(moved('reachroute_notifications_final_total', { status: 'sent' }), 1, 'the notification final as sent, by the worker')

  for (const lane of ['push', 'sms', 'callback', 'retry']) t.equal(samples(after, 'reachroute_outbox_depth', { lane }).length, 1, `outbox depth of ${lane}`)
  for (const state of ['waiting', 'due', 'leased', 'dead']) t.equal(samples(after, 'reachroute_fallback_queue_entries', { state }).length, 1, `fallback entries ${state}`)
  t.equal(samples(after, 'reachroute_fallback_queue_oldest_waiting_seconds').length, 1)
  for (const target of ['upstream:sandbox', 'sms:sandbox', 'push:sandbox']) {
    t.equal(value(after, 'reachroute_circuit_state', { target }), 0, `the circuit to ${target} is closed`)
  }
})

t.test('the queue depths and age are read from the store on scrape, then served from a short cache', async t => {
  const { app, auth, scrape } = await setup(t)
  const queue = () => app.inject({ method: 'POST', url: '/v1/notifications', headers: { authorization: auth }, payload: { to: '+990123433', message: { sms: { text: 'hi' } } } })
  t.equal(value(await scrape(), 'reachroute_fallback_queue_entries', { state: 'waiting' }), 0, 'the first scrape reads the store: nothing waits')
  t.equal((await queue()).json().channel, 'fallback_queue')
  const cached = await scrape()
  t.equal(value(cached, 'reachroute_fallback_queue_entries', { state: 'waiting' }), 0, 'a scrape right after is served from the cache')
  t.equal(value(cached, 'reachroute_routing_decisions_total', { channel: 'fallback_queue', reason: 'unreachable' }), 1, 'counters are live all the same')

  const other = await setup(t)
  const queued = await other.app.inject({ method: 'POST', url: '/v1/notifications', headers: { authorization: other.auth }, payload: { to: '+990123433', message: { sms: { text: 'hi' } } } })
  t.equal(queued.json().channel, 'fallback_queue')
  const read = await other.scrape()
  t.equal(value(read, 'reachroute_fallback_queue_entries', { state: 'waiting' }), 1, 'one notification waits')
  t.ok(value(read, 'reachroute_fallback_queue_oldest_waiting_seconds') >= 0, 'and its age')
  t.equal(value(read, 'reachroute_outbox_depth', { lane: 'sms' }), 0)

  // Connected for DATA alone and only SMS can carry it: on_unknown (sms) decided, and the reason category says why.
  const dataOnly = await other.app.inject({ method: 'POST', url: '/v1/notifications', headers: { authorization: other.auth }, payload: { to: '+990123422', message: { sms: { text: 'hi' } } } })
  t.match(dataOnly.json(), { channel: 'sms', reason: /SMS not reported.*on_unknown is sms/ })
  t.equal(value(await other.scrape(), 'reachroute_routing_decisions_total', { channel: 'sms', reason: 'sms_not_reported' }), 1)
})

t.test('upstream errors, a stale answer and an open circuit show in the metrics', async t => {
  const upstream = new ScriptedUpstream()
  const { app, auth, scrape } = await setup(t, { BREAKER_FAILURES: '2', BREAKER_HALF_OPEN_AFTER_MS: '60000', REACHABILITY_TTL_REACHABLE_SECONDS: '1' }, upstream)
  const lookup = (n: string) => app.inject({ url: `/v1/reachability/${n}`, headers: { authorization: auth } })
  const before = await scrape()
  t.equal((await lookup('+447911123451')).statusCode, 200)
  await new Promise(resolve => setTimeout(resolve, 1100))
  upstream.failWith = new UpstreamFailure('scripted: HTTP 503')

  t.equal((await lookup('+447911123451')).json().source, 'stale_cache', 'failure 1: the stale entry stands in')
  t.equal((await lookup('+447911123452')).statusCode, 503, 'failure 2: the circuit opens')
  const rejected = await lookup('+447911123453')
  t.equal(rejected.statusCode, 503, 'turned away while open')
  t.ok(Number(rejected.headers['retry-after']) >= 59, 'Retry-After: the time left before a probe')
  t.equal(upstream.calls, 3, 'the upstream was not called while the circuit was open')

  const after = await scrape()
  const moved = (name: string, labels: Labels) => value(after, name, labels) - value(before, name, labels)
  t.equal(moved('reachroute_reachability_lookups_total', { source: 'stale_cache', status_code: 'OK' }), 1)
  t.equal(moved('reachroute_upstream_errors_total', { upstream: 'scripted', kind: 'unavailable' }), 2, 'errors by kind; rejections are not upstream calls')
  t.equal(moved('reachroute_upstream_request_duration_seconds_count', { upstream: 'scripted', outcome: 'failed' }), 2)
  t.equal(value(after, 'reachroute_circuit_state', { target: 'upstream:scripted' }), 2, 'open')
  t.equal(moved('reachroute_circuit_rejections_total', { target: 'upstream:scripted' }), 1)
})

t.test('notifications final at accept, expired in the fallback queue, and moved by a receipt count in reachroute_notifications_final_total', async t => {
  const { app, auth, scrape } = await setup(t, { FALLBACK_FIRST_CHECK_SECONDS: '1', FALLBACK_POLL_MS: '20' })
  const before = await scrape()
  for (const payload of [
    { to: '+990123499', message: { sms: { text: 'unknown to the network' } } },
    { to: '+990123433', message: { sms: { text: 'away' } }, routing: { on_unreachable: 'drop' } },
    { to: '+990123433', message: { sms: { text: 'away for good' } }, routing: { ttl_seconds: 1 } },
  ]) {
    const res = await app.inject({ method: 'POST', url: '/v1/notifications', headers: { authorization: auth }, payload })
    t.equal(res.statusCode, 202, res.body)
  }
  const moved = async (status: string) => {
    const after = await scrape()
    return value(after, 'reachroute_notifications_final_total', { status }) - value(before, 'reachroute_notifications_final_total', { status })
  }
  await waitFor(async () => await moved('expired') === 1 ? true : undefined, 10_000, 'the queued one to expire')
  t.equal(await moved('failed'), 1, 'failed at accept (NOT_FOUND)')
  t.equal(await moved('dropped'), 1, 'dropped at accept (on_unreachable drop)')
  t.equal(await moved('expired'), 1, 'expired in the fallback queue')
})

t.test('a lookup cut off by its deadline counts as a timeout (the sandbox\'s slow number)', async t => {
  const { app, auth, scrape } = await setup(t, { REACHABILITY_TIMEOUT_MS: '300', REACHABILITY_RETRIES: '0' })
  const before = await scrape()
  const res = await app.inject({ url: '/v1/reachability/+990123477', headers: { authorization: auth } })
  t.equal(res.statusCode, 503, res.body)
  const after = await scrape()
  t.equal(value(after, 'reachroute_upstream_errors_total', { upstream: 'sandbox', kind: 'timeout' }) -
    value(before, 'reachroute_upstream_errors_total', { upstream: 'sandbox', kind: 'timeout' }), 1, 'kind timeout')
  t.equal(value(after, 'reachroute_upstream_errors_total', { upstream: 'sandbox', kind: 'other' }), 0, 'not other')
})

t.test('METRICS_AUTH=ops: 401 without a token, 403 without the ops scope', async t => {
  const { app, bearer } = await buildTestApp({ METRICS_AUTH: 'ops' })
  t.teardown(() => app.close())
  const none = await app.inject({ url: '/metrics' })
  t.equal(none.statusCode, 401)
  t.equal(none.headers['content-type'], 'application/problem+json; charset=utf-8')
  t.equal((await app.inject({ url: '/metrics', headers: { authorization: await bearer('reachability:read notifications:read') } })).statusCode, 403)
  const ops = await app.inject({ url: '/metrics', headers: { authorization: await bearer('ops') } })
  t.equal(ops.statusCode, 200)
  t.match(ops.body, /reachroute_http_request_duration_seconds/)
})

t.test('METRICS_AUTH defaults to ops in production, to none with a metrics port of its own', async t => {
  const { testConfig } = await import('../helpers/app.js')
  t.equal(testConfig({ NODE_ENV: 'production' }).metrics.auth, 'ops')
  t.equal(testConfig({ NODE_ENV: 'production', METRICS_PORT: '9464' }).metrics.auth, 'none')
  t.equal(testConfig({}).metrics.auth, 'none')
  t.throws(() => testConfig({ METRICS_PORT: '9464', METRICS_AUTH: 'ops' }), /METRICS_AUTH/)
})

t.test('with METRICS_PORT, /metrics is served on its own listener only', async t => {
  const { app } = await buildTestApp({ METRICS_PORT: '9464' })
  t.teardown(() => app.close())
  t.equal((await app.inject({ url: '/metrics' })).statusCode, 404, 'not on the main port')
  const url = await app.metrics.listen(0, '127.0.0.1')
  const res = await fetch(url)
  t.equal(res.status, 200)
  t.equal(res.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8')
  t.match(await res.text(), /reachroute_outbox_depth\{lane="sms"\}/)
  t.equal((await fetch(url.replace('/metrics', '/healthz'))).status, 404, 'nothing else there')
})

t.test('the METRICS_PORT listener answers every error with an RFC 9457 problem, as the main port does', async t => {
  const { app } = await buildTestApp({ METRICS_PORT: '9464' })
  t.teardown(() => app.close())
  const url = await app.metrics.listen(0, '127.0.0.1')
  const base = url.replace('/metrics', '')

  for (const path of ['/', '/healthz', '/metrics/x']) {
    const res = await fetch(base + path)
    t.equal(res.status, 404, path)
    t.equal(res.headers.get('content-type'), 'application/problem+json; charset=utf-8', path)
    t.match(await res.json(), { type: 'https://reachroute.dev/problems/not-found', title: 'Not found', status: 404, instance: path, detail: /only GET \/metrics/ }, path)
  }
  const head = await fetch(base + '/', { method: 'HEAD' })
  t.equal(head.status, 404)
  t.equal(head.headers.get('content-type'), 'application/problem+json; charset=utf-8', 'HEAD: the problem\'s headers, no body')
  t.equal(await head.text(), '')

  for (const method of ['POST', 'DELETE', 'PUT']) {
    const res = await fetch(url, { method })
    t.equal(res.status, 405, method)
    t.equal(res.headers.get('allow'), 'GET, HEAD', method)
    t.equal(res.headers.get('content-type'), 'application/problem+json; charset=utf-8', method)
    t.match(await res.json(), { type: 'https://reachroute.dev/problems/method-not-allowed', status: 405, instance: '/metrics' }, method)
  }

  const long = await fetch(`${base}/${'x'.repeat(5000)}`)
  t.equal(long.status, 404)
  t.ok(((await long.json()) as { instance: string }).instance.length <= 201, 'a long URL is clipped in the document')

  // A request that is not HTTP/1.1: Node's own answer would be a bare 400 without a body.
  const { port } = new URL(url)
  const socket = connect(Number(port), '127.0.0.1')
  socket.end('NOT HTTP\r\n\r\n')
  let raw = ''
  for await (const chunk of socket) raw += String(chunk)
  t.match(raw, /^HTTP\/1\.1 400 Bad Request\r\n/)
  t.match(raw, /\r\ncontent-type: application\/problem\+json; charset=utf-8\r\n/)
  t.match(JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)), { type: 'https://reachroute.dev/problems/bad-request', status: 400 })
})
