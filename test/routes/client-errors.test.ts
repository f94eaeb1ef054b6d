import t, { type Test } from 'tap'
import { clientErrorResponse } from '../../plugins/errors.js'
import { SandboxPushChannel, SandboxSmsChannel } from '../../src/channels/sandbox.js'
import { buildTestApp } from '../helpers/app.js'
import { raw, type RawAnswer } from '../helpers/net.js'
import { waitFor } from '../helpers/wait.js'

// The HTTP parser refuses these before Fastify sees a request, so app.inject cannot reach them: a real socket does.

async function listening (t: Test) {
  const { app } = await buildTestApp()
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  return (app.server.address() as { port: number }).port
}

function problemAnswer (t: Test, answer: RawAnswer, status: number, type: RegExp) {
  t.equal(answer.status, status, 'status')
  t.equal(answer.headers['content-type'], 'application/problem+json; charset=utf-8')
  t.equal(Number(answer.headers['content-length']), Buffer.byteLength(answer.body), 'Content-Length counts the body')
  const problem = JSON.parse(answer.body)
  t.match(problem, { type, title: String, status, detail: String })
  t.ok(answer.closed, 'the server closes the connection')
  t.equal(answer.headers['x-content-type-options'], 'nosniff', 'the API\'s security headers')
  t.equal(answer.headers['cache-control'], 'no-store')
}

t.test('headers over the size limit: 431 problem, connection closed', async t => {
  const port = await listening(t)
  const answer = await raw(port, `GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`)
  problemAnswer(t, answer, 431, /^https:\/\/reachroute\.dev\/problems\/request-header-fields-too-large$/)
})

t.test('requests the parser refuses get a 400 problem, connection closed', async t => {
  const port = await listening(t)
  const cases: Record<string, string> = {
    'a control character in a header value': 'GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-A: a\x01b\r\n\r\n',
    'Content-Length with Transfer-Encoding': 'POST /v1/reachability/batch HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
    'a space in a header name': 'GET /healthz HTTP/1.1\r\nHost: localhost\r\nX A: b\r\n\r\n',
    'not HTTP at all': 'HELLO\r\n\r\n',
  }
  for (const [what, request] of Object.entries(cases)) {
    t.test(what, async t => {
      const answer = await raw(port, request)
      problemAnswer(t, answer, 400, /^https:\/\/reachroute\.dev\/problems\/bad-request$/)
      t.match(JSON.parse(answer.body).detail, /^the request is not valid HTTP\/1\.1 \(HPE_[A-Z_]+\)$/, 'detail names the parser\'s reason')
    })
  }
})

t.test('a request timeout stays 408, and a code that is not a plain name is not echoed', async t => {
  const timeout = clientErrorResponse('ERR_HTTP_REQUEST_TIMEOUT')
  t.match(timeout, /^HTTP\/1\.1 408 Request Timeout\r\n/)
  t.match(timeout, /"type":"https:\/\/reachroute\.dev\/problems\/request-timeout"/)
  const odd = clientErrorResponse('x\r\ny')
  t.match(odd, /^HTTP\/1\.1 400 Bad Request\r\n/)
  t.notMatch(odd, /x\r\ny/)
})

t.test('a request that stops arriving is a 408 problem after REQUEST_TIMEOUT_MS, connection closed, nothing accepted', async t => {
  const sms = new SandboxSmsChannel({ log: () => {} })
  const push = new SandboxPushChannel({ log: () => {} })
  const built = await buildTestApp({ REQUEST_TIMEOUT_MS: '400', WORKERS: 'on', WORKER_IDLE_POLL_MS: '20' }, { channels: { sms, push } })
  t.teardown(() => built.app.close())
  await built.app.listen({ port: 0, host: '127.0.0.1' })
  const port = (built.app.server.address() as { port: number }).port
  const authorization = await built.bearer()
  const body = JSON.stringify({ to: '+447911123456', message: { sms: { text: 'hello' } } })
  const cases: Record<string, string> = {
    'headers never finished': `POST /v1/notifications HTTP/1.1\r\nHost: localhost\r\nAuthorization: ${authorization}\r\n`,
    'a body stalled halfway': `POST /v1/notifications HTTP/1.1\r\nHost: localhost\r\nAuthorization: ${authorization}\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 20)}`,
    'a chunked body without its last chunk': `POST /v1/notifications HTTP/1.1\r\nHost: localhost\r\nAuthorization: ${authorization}\r\n` +
      `Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n${body.length.toString(16)}\r\n${body}\r\n`,
  }
  for (const [what, request] of Object.entries(cases)) {
    t.test(what, async t => {
      const started = Date.now()
      const answer = await raw(port, request)
      const waited = Date.now() - started
      problemAnswer(t, answer, 408, /^https:\/\/reachroute\.dev\/problems\/request-timeout$/)
      t.ok(waited >= 400 && waited < 2500, `answered after the timeout, within a check interval (${waited} ms)`)
    })
  }
  await new Promise(resolve => setTimeout(resolve, 200))
  t.equal(sms.deliveries().length + push.deliveries().length, 0, 'nothing sent')
  // The server still serves whole requests at once.
  const answer = await raw(port, `POST /v1/notifications HTTP/1.1\r\nHost: localhost\r\nAuthorization: ${authorization}\r\n` +
    `Content-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`)
  t.equal(answer.status, 202, answer.body)
  await waitFor(() => sms.deliveries().length + push.deliveries().length === 1 ? true : undefined, 5000, 'the whole request delivered')
})

t.test('a well-formed request on the same server still answers', async t => {
  const port = await listening(t)
  const answer = await raw(port, 'GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')
  t.equal(answer.status, 200)
})
