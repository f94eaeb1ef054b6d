import http, { type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'

// What the fakes of outside APIs share: a real HTTP server on loopback, replies that can be
// delayed or broken, and replies scripted per number or per call.

export interface Reply {
  status: number
  headers?: Record<string, string>
  /** Sent as JSON. */
  json?: unknown
  /** Sent as it is (e.g. broken JSON); wins over `json`. */
  raw?: string
  /** The reply is held this long. */
  delayMs?: number
}

export interface Received {
  method: string
  path: string
  headers: IncomingHttpHeaders
  rawBody: string
  /** The body read as JSON; undefined when it is not JSON. */
  json: unknown
}

export interface FakeServer {
  /** http://127.0.0.1:<port> */
  url: string
  close (): Promise<void>
}

export async function startFakeServer (handle: (received: Received) => Reply | Promise<Reply>): Promise<FakeServer> {
  const timers = new Set<NodeJS.Timeout>()
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (chunk: Buffer) => chunks.push(chunk))
    req.on('end', () => {
      const rawBody = Buffer.concat(chunks).toString('utf8')
      const received = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, rawBody, json: readJson(rawBody) }
      Promise.resolve(handle(received)).then(reply => {
        const send = () => {
          if (res.destroyed) return
          const body = reply.raw ?? (reply.json === undefined ? '' : JSON.stringify(reply.json))
          res.writeHead(reply.status, { 'content-type': 'application/json', ...reply.headers })
          res.end(body)
        }
        if (!reply.delayMs) return send()
        const timer = setTimeout(() => { timers.delete(timer); send() }, reply.delayMs)
        timers.add(timer)
      }, (err: unknown) => {
        res.writeHead(500, { 'content-type': 'text/plain' })
        res.end(`fake failed: ${(err as Error).message}`)
      })
    })
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}`,
    close: async () => {
      for (const timer of timers) clearTimeout(timer)
      server.closeAllConnections()
      await new Promise<void>(resolve => server.close(() => resolve()))
    },
  }
}

function readJson (raw: string): unknown {
  try {
    return JSON.parse(raw)
  } catch {
    return undefined
  }
}

/** Replies a test sets in advance; what is not scripted falls to the fake's defaults. */
export class Script {
  private readonly queued = new Map<string, Reply[]>()
  private readonly standing = new Map<string, Reply>()
  private readonly nextCalls: Reply[] = []

  /** The next calls about this number get these replies, one each. */
  queue (phoneNumber: string, ...replies: Reply[]): this {
    this.queued.set(phoneNumber, [...(this.queued.get(phoneNumber) ?? []), ...replies])
    return this
  }

  /** Every call about this number gets this reply, when nothing else is scripted for it. */
  always (phoneNumber: string, reply: Reply): this {
    this.standing.set(phoneNumber, reply)
    return this
  }

  /** The next calls, whatever the number, get these replies, one each. */
  next (...replies: Reply[]): this {
    this.nextCalls.push(...replies)
    return this
  }

  take (phoneNumber: string): Reply | undefined {
    return this.queued.get(phoneNumber)?.shift() ?? this.nextCalls.shift() ?? this.standing.get(phoneNumber)
  }
}

/** A reply held back, to exceed a client's timeout. */
export function slow (reply: Reply, delayMs: number): Reply {
  return { ...reply, delayMs }
}
