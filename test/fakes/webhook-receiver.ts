import { createHmac, timingSafeEqual } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'
import { type Reply, Script, startFakeServer } from './scripted-server.js'

// A customer's push gateway: checks the HMAC signature (computed here on its own, not with the
// code under test), the timestamp and the Idempotency-Key; records what it receives. Replies
// are scripted per push token or for the next calls; 202 with a message_id otherwise.

export interface FakeWebhookReceiverOptions {
  secret: string
  /** Path it answers on; "/push" by default. */
  path?: string
}

export interface WebhookRequest {
  /** The query string, without "?"; empty when there is none. */
  query: string
  headers: IncomingHttpHeaders
  rawBody: string
  body: unknown
  rejected: string | undefined
}

export interface FakeWebhookReceiver {
  /** The full URL to post to (PUSH_WEBHOOK_URL). */
  url: string
  requests: WebhookRequest[]
  /** Requests whose signature and headers checked out, whatever was scripted for them. */
  valid (): WebhookRequest[]
  script: Script
  close (): Promise<void>
}

export async function startWebhookReceiver (options: FakeWebhookReceiverOptions): Promise<FakeWebhookReceiver> {
  const path = options.path ?? '/push'
  const requests: WebhookRequest[] = []
  const script = new Script()
  let received = 0

  const server = await startFakeServer(request => {
    const [requestPath, query = ''] = request.path.split('?', 2)
    const record: WebhookRequest = { query, headers: request.headers, rawBody: request.rawBody, body: request.json, rejected: undefined }
    requests.push(record)
    const refuse = (status: number, why: string): Reply => {
      record.rejected = why
      return { status, json: { error: why } }
    }
    if (request.method !== 'POST' || requestPath !== path) return refuse(404, `no resource at ${request.method} ${request.path}`)
    if (!String(request.headers['content-type']).startsWith('application/json')) return refuse(415, 'not application/json')

    const expected = Buffer.from('sha256=' + createHmac('sha256', options.secret).update(Buffer.from(request.rawBody, 'utf8')).digest('hex'))
    const given = Buffer.from(String(request.headers['x-reachroute-signature'] ?? ''))
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return refuse(401, 'bad signature')

    const timestamp = Number(request.headers['x-reachroute-timestamp'])
    if (!Number.isInteger(timestamp) || Math.abs(timestamp - Date.now() / 1000) > 300) return refuse(401, 'timestamp missing or more than 5 minutes off')

    const body = request.json as Record<string, unknown> | undefined
    if (typeof body?.id !== 'string' || request.headers['idempotency-key'] !== body.id) return refuse(400, 'Idempotency-Key is not the body id')
    if (typeof body.token !== 'string' || typeof body.title !== 'string' || typeof body.body !== 'string') {
      return refuse(400, 'token, title and body must be strings')
    }
    if (typeof body.data !== 'object' || body.data === null || Object.values(body.data).some(v => typeof v !== 'string')) {
      return refuse(400, 'data must be a map of strings')
    }
    if (!Number.isInteger(body.ttl_seconds)) return refuse(400, 'ttl_seconds must be an integer')

    received++
    return script.take(body.token) ?? { status: 202, json: { message_id: `gw-${received}` } }
  })

  return {
    url: server.url + path,
    requests,
    valid: () => requests.filter(r => r.rejected === undefined),
    script,
    close: server.close,
  }
}
