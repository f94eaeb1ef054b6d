import http from 'node:http'
import type { AddressInfo } from 'node:net'
import type { JWK } from 'jose'

// A fake identity provider's key set endpoint on loopback: serves a JWKS, or is slow, or is down.

export const JWKS_PATH = '/.well-known/jwks.json'

export type JwksMode =
  /** answers 200 with the keys */
  | 'up'
  /** holds every answer `delayMs` before sending the keys */
  | 'slow'
  /** answers 503 */
  | 'down'
  /** answers 200 with a body that is not a key set */
  | 'garbage'

export interface FakeJwks {
  /** The key set's URL, for AUTH_JWKS_URL. */
  url: string
  keys: JWK[]
  mode: JwksMode
  delayMs: number
  /** Every request received, as "METHOD path". */
  requests: string[]
  close (): Promise<void>
}

export async function startFakeJwks (keys: JWK[]): Promise<FakeJwks> {
  const timers = new Set<NodeJS.Timeout>()
  const server = http.createServer((req, res) => {
    fake.requests.push(`${req.method} ${req.url}`)
    if (req.method !== 'GET' || req.url !== JWKS_PATH) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not here')
      return
    }
    const send = () => {
      if (res.destroyed) return
      if (fake.mode === 'down') {
        res.writeHead(503, { 'content-type': 'application/json' }).end('{"error":"unavailable"}')
      } else if (fake.mode === 'garbage') {
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"not":"a key set"}')
      } else {
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: fake.keys }))
      }
    }
    if (fake.mode !== 'slow') return send()
    const timer = setTimeout(() => { timers.delete(timer); send() }, fake.delayMs)
    timers.add(timer)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo

  const fake: FakeJwks = {
    url: `http://127.0.0.1:${port}${JWKS_PATH}`,
    keys,
    mode: 'up',
    delayMs: 10_000,
    requests: [],
    close: async () => {
      for (const timer of timers) clearTimeout(timer)
      server.closeAllConnections()
      await new Promise<void>(resolve => server.close(() => resolve()))
    },
  }
  return fake
}

/** A loopback URL where nothing listens: connections are refused. */
export async function refusingUrl (): Promise<string> {
  const server = http.createServer()
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  await new Promise<void>(resolve => server.close(() => resolve()))
  return `http://127.0.0.1:${port}${JWKS_PATH}`
}
