import { Readable } from 'node:stream'
import t, { type Test } from 'tap'
import { campaignApp, message } from '../campaigns/app.js'
import { waitFor } from '../helpers/wait.js'

// The operations that take no body (a dead letter's DELETE, a campaign's pause, resume and cancel, ...) refuse one
// with content, whatever it holds, and change nothing; an empty body is no body, with Content-Type: application/json
// too (`curl -X POST -H 'Content-Type: application/json'` with no data). The one whose body is optional (a dead
// letter's retry) takes an empty body as none as well.

interface Operation { operationId: string, requestBody?: unknown, responses: Record<string, { description: string }> }
type Paths = Record<string, Record<string, Operation>>

const JSON_TYPE = { 'content-type': 'application/json' }
const NO_BODY = /^body: this operation takes no body/

async function setup (t: Test) {
  const s = await campaignApp(t, 'memory', {
    FALLBACK_POLL_MS: '30', FALLBACK_FIRST_CHECK_SECONDS: '1', FALLBACK_MAX_INTERVAL_SECONDS: '1', FALLBACK_RECHECK_MAX_AGE_SECONDS: '0',
  })
  await s.app.ready()
  const { ALL_SCOPES } = await import('../../src/auth/inbound.js')
  const everything = `Bearer ${await s.app.auth.issue({ sub: 'no-body', scope: ALL_SCOPES, ttlSeconds: 600 })}`
  const paths = (s.app.swagger() as unknown as { paths: Paths }).paths
  const send = (method: string, url: string, payload?: string, headers: Record<string, string> = JSON_TYPE) =>
    s.app.inject({ method: method as 'POST', url, headers: { authorization: everything, ...headers }, ...(payload === undefined ? {} : { payload }) })
  return { ...s, everything, paths, send }
}

/** The operations of the spec that take a body or none: [method, path with its parameters filled, operation]. */
function operations (paths: Paths): [string, string, Operation][] {
  return Object.entries(paths).flatMap(([path, ops]) => Object.entries(ops)
    .filter(([method]) => ['post', 'put', 'patch', 'delete'].includes(method))
    .map(([method, op]): [string, string, Operation] => [method.toUpperCase(), path.replace(/\{[^}]+\}/g, 'ntf_00_00000000000000000000000000000000'), op]))
}

t.test('every operation that takes no body refuses one with content (a 400 saying so), and takes an empty one as none', async t => {
  const s = await setup(t)
  const noBody = operations(s.paths).filter(([, , op]) => op.requestBody === undefined)
  t.same(noBody.map(([, , op]) => op.operationId).sort(), ['cancelCampaign', 'deleteDeadLetter', 'pauseCampaign', 'resumeCampaign'], 'the operations without a body')
  for (const [method, url, op] of noBody) {
    for (const payload of ['{"a":1}', 'null', '[]', '"x"', '0']) {
      const res = await s.send(method, url, payload)
      t.equal(res.statusCode, 400, `${op.operationId} with ${payload}`)
      t.equal(res.headers['content-type'], 'application/problem+json; charset=utf-8')
      t.match(res.json(), { type: 'https://reachroute.dev/problems/validation-error', detail: NO_BODY, errors: [{ path: 'body', message: /takes no body/ }] }, `${op.operationId} with ${payload}`)
    }
    t.match(op.responses['400']?.description, /takes no body/, `${op.operationId} documents its 400`)
    // The unknown id answers: the body was taken as none.
    for (const [what, payload] of [['no data', undefined], ['Content-Length: 0', ''], ['{} (asks for nothing)', '{}'], ['{ } with spaces', ' { } ']] as const) {
      const res = await s.send(method, url, payload)
      t.equal(res.statusCode, 404, `${op.operationId}, Content-Type: application/json and ${what}: ${res.body.slice(0, 200)}`)
    }
    t.equal((await s.send(method, url, undefined, {})).statusCode, 404, `${op.operationId} without Content-Type or body`)
    // The headers say a body follows, and it is empty.
    const chunked = await s.app.inject({ method: method as 'POST', url, headers: { authorization: s.everything, ...JSON_TYPE, 'transfer-encoding': 'chunked' }, payload: Readable.from([]) })
    t.equal(chunked.statusCode, 404, `${op.operationId}, Content-Type: application/json and an empty chunked body: ${chunked.body.slice(0, 200)}`)
  }
  const retry = await s.send('POST', '/v1/queue/dead/ntf_00_00000000000000000000000000000000/retry')
  t.equal(retry.statusCode, 404, `an optional body (a dead letter's retry) sent empty with Content-Type: application/json is none: ${retry.body.slice(0, 200)}`)
  const chunkedRetry = await s.app.inject({ method: 'POST', url: '/v1/queue/dead/ntf_00_00000000000000000000000000000000/retry', headers: { authorization: s.everything, ...JSON_TYPE, 'transfer-encoding': 'chunked' }, payload: Readable.from([]) })
  t.equal(chunkedRetry.statusCode, 404, `the same sent chunked: ${chunkedRetry.body.slice(0, 200)}`)
  // A route that needs its body still calls an empty one what it is.
  const needed = await s.app.inject({ method: 'POST', url: '/v1/notifications', headers: { authorization: s.everything, ...JSON_TYPE, 'transfer-encoding': 'chunked' }, payload: Readable.from([]) })
  t.match({ status: needed.statusCode, body: needed.json() }, { status: 400, body: { title: 'Body is empty' } }, 'POST /v1/notifications with an empty chunked body: 400 Body is empty')
})

t.test('a dead letter\'s DELETE with a body deletes nothing; with an empty JSON body it deletes', async t => {
  const s = await setup(t)
  const writer = await s.app.auth.issue({ sub: 'no-body', scope: 'notifications:write', ttlSeconds: 600 })
  const ids: string[] = []
  for (let i = 0; i < 2; i++) {
    const res = await s.app.inject({ method: 'POST', url: '/v1/notifications', headers: { authorization: `Bearer ${writer}` }, payload: { to: '+990123433', message: { sms: { text: 'gone' } }, routing: { ttl_seconds: 1 } } })
    ids.push(res.json().id)
  }
  const dead = async () => ((await s.send('GET', '/v1/queue/dead', undefined, {})).json().items as { id: string }[]).map(d => d.id).sort()
  await waitFor(async () => (await dead()).length === 2 ? true : undefined, 10_000, 'two dead letters')

  const refused = await s.send('DELETE', `/v1/queue/dead/${ids[0]}`, '{"a":1}')
  t.equal(refused.statusCode, 400)
  t.match(refused.json(), { detail: NO_BODY })
  t.same(await dead(), [...ids].sort(), 'still a dead letter')

  t.equal((await s.send('DELETE', `/v1/queue/dead/${ids[0]}`)).statusCode, 204, 'Content-Type: application/json, no data')
  t.equal((await s.send('DELETE', `/v1/queue/dead/${ids[1]}`, '')).statusCode, 204, 'Content-Type: application/json, Content-Length: 0')
  t.same(await dead(), [], 'both deleted')
})

t.test('a campaign\'s pause, resume and cancel with a body change nothing', async t => {
  const s = await setup(t)
  const created = await s.post({ name: 'no-body', message, recipients: [{ to: '+447911100001', vars: { name: 'A' } }] })
  t.equal(created.statusCode, 202, created.body)
  const id = created.json().id as string
  const status = async () => (await s.send('GET', `/v1/campaigns/${id}`, undefined, {})).json().status as string
  const before = await status()
  for (const action of ['pause', 'cancel', 'resume']) {
    const res = await s.send('POST', `/v1/campaigns/${id}/${action}`, '{"a":1}')
    t.equal(res.statusCode, 400, action)
    t.match(res.json(), { detail: NO_BODY }, action)
  }
  t.match(await status(), /^(running|completed)$/, `neither paused nor cancelled (was ${before})`)
})
