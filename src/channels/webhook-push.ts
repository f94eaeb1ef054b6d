import { type HttpAnswer, HttpClient, isRetryableStatus, retryAfterSeconds } from '../http/retry.js'
import { hmacSignature } from '../http/signature.js'
import type { DeliveryOutcome, PushChannel, PushMessage } from './channel.js'

// Push through the customer's own push gateway: the content as JSON, signed. One attempt per call.
//
//   POST PUSH_WEBHOOK_URL
//   Content-Type: application/json
//   X-Reachroute-Signature: sha256=<hex HMAC-SHA256 of the exact body bytes under PUSH_WEBHOOK_SECRET>
//   X-Reachroute-Timestamp: <unix seconds when sent>
//   Idempotency-Key: <notification id>, the same on every attempt
//   {"id","token","title","body","data","ttl_seconds"}
//
// 2xx: taken; a JSON answer's string `message_id` is kept as the gateway's message id. 410 Gone: the push token is dead (failover to SMS). 429, 5xx: try again later.
// Any other 4xx (404 included, which more often means a wrong URL than a dead token): refused.

export const SIGNATURE_HEADER = 'x-reachroute-signature'
export const TIMESTAMP_HEADER = 'x-reachroute-timestamp'

export interface WebhookPushChannelOptions {
  /** PUSH_WEBHOOK_URL */
  url: string
  /** PUSH_WEBHOOK_SECRET */
  secret: string
  /** Budget of one request. */
  timeoutMs: number
  now?: () => number
}

export class WebhookPushChannel implements PushChannel {
  readonly provider = 'webhook'
  private readonly http: HttpClient
  private readonly path: string
  private readonly now: () => number

  constructor (private readonly options: WebhookPushChannelOptions) {
    const url = new URL(options.url)
    this.path = url.pathname + url.search
    this.http = new HttpClient(url.origin, { timeoutMs: options.timeoutMs, retries: 0, baseMs: 0, maxMs: 0 })
    this.now = options.now ?? Date.now
  }

  async sendPush (message: PushMessage): Promise<DeliveryOutcome> {
    const body = JSON.stringify({
      id: message.notificationId,
      token: message.token,
      title: message.title,
      body: message.body,
      data: message.data ?? {},
      ttl_seconds: message.ttlSeconds,
    })
    let answer: HttpAnswer
    try {
      answer = await this.http.send({
        method: 'POST',
        path: this.path,
        headers: {
          'content-type': 'application/json; charset=utf-8',
          [SIGNATURE_HEADER]: hmacSignature(body, this.options.secret),
          [TIMESTAMP_HEADER]: String(Math.floor(this.now() / 1000)),
          'idempotency-key': message.notificationId,
        },
        body,
      })
    } catch (err) {
      return { kind: 'retry', provider: this.provider, reason: `no answer (${(err as Error).message})` }
    }
    const { statusCode, headers } = answer
    if (statusCode >= 200 && statusCode < 300) {
      return { kind: 'sent', provider: this.provider, providerMessageId: gatewayMessageId(answer.body) }
    }
    const reason = `the push gateway answered HTTP ${statusCode}`
    if (statusCode === 410) return { kind: 'token_invalid', provider: this.provider, reason }
    if (isRetryableStatus(statusCode)) return { kind: 'retry', provider: this.provider, reason, retryAfterSeconds: retryAfterSeconds(headers) }
    return { kind: 'failed', provider: this.provider, reason }
  }

  close (): Promise<void> {
    return this.http.close()
  }
}

function gatewayMessageId (body: string): string | undefined {
  try {
    const id = (JSON.parse(body) as { message_id?: unknown } | null)?.message_id
    return typeof id === 'string' && id !== '' ? id : undefined
  } catch {
    return undefined
  }
}
