import { z } from 'zod'
import { sendWithToken } from '../auth/oauth-token.js'
import { VonageJwtSigner } from '../auth/vonage-jwt.js'
import { type HttpAnswer, HttpClient, isRetryableStatus, retryAfterSeconds } from '../http/retry.js'
import type { DeliveryOutcome, SmsChannel, SmsMessage } from './channel.js'

// SMS through the Vonage Messages API (docs/upstream-apis.md section 4). One attempt per call.

/** Vonage tries an SMS for 72 hours by default and operators keep it 24 to 48: a longer ttl buys nothing. */
const MAX_TTL_SECONDS = 72 * 3600

export interface VonageSmsChannelOptions {
  /** e.g. https://api.nexmo.com */
  baseUrl: string
  applicationId: string
  /** The application's private key, PKCS#8 PEM. */
  privateKey: string
  jwtTtlSeconds: number
  /** The sender: SMS_FROM. */
  from: string
  /** Budget of one request. */
  timeoutMs: number
  now?: () => number
}

const accepted = z.object({ message_uuid: z.string().min(1) })

const problem = z.object({
  title: z.string().optional(),
  detail: z.string().optional(),
  invalid_parameters: z.array(z.object({ name: z.string().optional(), reason: z.string().optional() })).optional(),
})

export class VonageSmsChannel implements SmsChannel {
  readonly provider = 'vonage'
  private readonly http: HttpClient
  private readonly signer: VonageJwtSigner

  constructor (private readonly options: VonageSmsChannelOptions) {
    this.http = new HttpClient(options.baseUrl, { timeoutMs: options.timeoutMs, retries: 0, baseMs: 0, maxMs: 0 })
    this.signer = new VonageJwtSigner({
      applicationId: options.applicationId,
      privateKey: options.privateKey,
      ttlSeconds: options.jwtTtlSeconds,
      ...(options.now ? { now: options.now } : {}),
    })
  }

  async sendSms (message: SmsMessage): Promise<DeliveryOutcome> {
    const body = JSON.stringify({
      message_type: 'text',
      channel: 'sms',
      to: message.to.replace(/^\+/, ''),
      from: this.options.from,
      text: message.text,
      client_ref: message.notificationId,
      ttl: Math.min(MAX_TTL_SECONDS, Math.max(1, Math.floor(message.ttlSeconds))),
    })
    let answer: HttpAnswer
    try {
      // The JWT is signed once and reused: one Vonage no longer takes (a clock step, keys rotated at Vonage) is
      // replaced, once. A 401 was not sent, so nothing goes out twice; a fresh JWT refused too fails the message.
      answer = await sendWithToken(this.signer, token => this.post(body, token))
    } catch (err) {
      return { kind: 'retry', provider: this.provider, reason: `no answer (${(err as Error).message})` }
    }
    return this.outcome(answer)
  }

  private post (body: string, token: string): Promise<HttpAnswer> {
    return this.http.send({
      method: 'POST',
      path: '/v1/messages',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json' },
      body,
    })
  }

  close (): Promise<void> {
    return this.http.close()
  }

  private outcome ({ statusCode, headers, body }: HttpAnswer): DeliveryOutcome {
    const json = readJson(body)
    if (statusCode >= 200 && statusCode < 300) {
      const parsed = accepted.safeParse(json)
      return { kind: 'sent', provider: this.provider, providerMessageId: parsed.success ? parsed.data.message_uuid : undefined }
    }
    const reason = describeProblem(json, statusCode)
    if (isRetryableStatus(statusCode)) {
      return { kind: 'retry', provider: this.provider, reason, retryAfterSeconds: retryAfterSeconds(headers) }
    }
    return { kind: 'failed', provider: this.provider, reason }
  }
}

/** e.g. "HTTP 422 Invalid params: The request body did not contain valid parameters (to: Invalid number)". */
function describeProblem (json: unknown, statusCode: number): string {
  const parsed = problem.safeParse(json)
  if (!parsed.success) return `HTTP ${statusCode}`
  const { title, detail, invalid_parameters: invalid } = parsed.data
  const text = [title, detail].filter(Boolean).join(': ')
  const params = (invalid ?? []).map(p => [p.name, p.reason].filter(Boolean).join(': ')).filter(Boolean)
  return [`HTTP ${statusCode}`, text, params.length ? `(${params.join('; ')})` : ''].filter(Boolean).join(' ')
}

function readJson (body: string): unknown {
  try {
    return JSON.parse(body)
  } catch {
    return undefined
  }
}
