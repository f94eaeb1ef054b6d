import { Agent, get } from 'node:http'
import type { AddressInfo } from 'node:net'
import t from 'tap'
import { buildApp } from '../../src/app.js'
import { testConfig } from '../helpers/app.js'

// A request that reaches the server while it drains (on a keep-alive connection it already had) is refused
// with a problem document before any work, and the connection is closed.

function fetchOn (agent: Agent, port: number, path: string): Promise<{ status: number, headers: Record<string, unknown>, body: string }> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path, agent }, res => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', chunk => { body += chunk })
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }))
    }).on('error', reject)
  })
}

t.test('requests during shutdown get a 503 problem with Retry-After and Connection: close', async t => {
  const app = await buildApp({ config: testConfig(), logger: false })
  const agent = new Agent({ keepAlive: true, maxSockets: 1 })
  t.teardown(() => agent.destroy())
  let during: Awaited<ReturnType<typeof fetchOn>> | undefined
  // Runs after the app's own preClose hook: the app is closing, the idle connection not yet reaped.
  app.addHook('preClose', async () => {
    during = await fetchOn(agent, (app.server.address() as AddressInfo).port, '/healthz')
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const port = (app.server.address() as AddressInfo).port
  const before = await fetchOn(agent, port, '/healthz')
  t.equal(before.status, 200, 'answered before the shutdown')
  await app.close()
  t.ok(during, 'a request was sent while closing')
  t.equal(during!.status, 503)
  t.match(during!.headers['content-type'], /^application\/problem\+json/)
  t.equal(during!.headers['retry-after'], '1')
  t.equal(during!.headers.connection, 'close')
  t.match(JSON.parse(during!.body), { type: /shutting-down$/, status: 503, title: 'Shutting down' })
})
