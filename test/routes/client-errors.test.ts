import { once } from 'node:events'
import { connect } from 'node:net'
import t, { type Test } from 'tap'
import { clientErrorResponse } from '../../plugins/errors.js'
import { buildTestApp } from '../helpers/app.js'

// The HTTP parser refuses these before Fastify sees a request, so app.inject cannot reach them: a real socket does.

async function listening (t: Test) {
  const { app } = await buildTestApp()
  t.teardown(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  return (app.server.address() as { port: number }).port
}

interface RawAnswer { status: number, headers: Record<string, string>, body: string, closed: boolean }

/** Writes the bytes as they are, and reads everything the server answers until it closes the connection. */
async function raw (port: number, request: string): Promise<RawAnswer> {
  const socket = connect(port, '127.0.0.1')
  await once(socket, 'connect')
  const chunks: Buffer[] = []
  socket.on('data', chunk => chunks.push(chunk))
  socket.on('error', () => {})
  socket.write(request)
  const closed = await Promise.race([
    once(socket, 'close').then(() => true),
    new Promise<boolean>(resolve => setTimeout(() => resolve(false), 3000)),
  ])
  socket.destroy()
  const text = Buffer.concat(chunks).toString('utf8')
  const [head = '', body = ''] = text.split('\r\n\r\n', 2)
  const [statusLine = '', ...lines] = head.split('\r\n')
  const headers = Object.fromEntries(lines.map(line => {
    const colon = line.indexOf(':')
    return [line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim()]
  }))
  return { status: Number(statusLine.split(' ')[1]), headers, body, closed }
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

t.test('a well-formed request on the same server still answers', async t => {
  const port = await listening(t)
  const answer = await raw(port, 'GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')
  t.equal(answer.status, 200)
})
