import { randomUUID } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'
import { importSPKI, type JWTPayload } from 'jose'
import { type Received, type Reply, Script, slow, startFakeServer } from './scripted-server.js'
import { problem, verifyJwt } from './vonage.js'

// A fake of the Vonage Messages API (SMS only) that checks what it receives: the application
// JWT against the public key, and every field of the body (docs/upstream-apis.md section 4).
// Replies are scripted per recipient (`to`, without "+") or for the next calls; 202 otherwise.

export const MESSAGES_PATH = '/v1/messages'
const FIELDS = ['message_type', 'channel', 'to', 'from', 'text', 'client_ref', 'ttl']

export interface FakeVonageMessagesOptions {
  applicationId: string
  /** SPKI PEM of the application's public key. */
  publicKey: string
}

export interface SmsRequest {
  headers: IncomingHttpHeaders
  body: unknown
  claims: JWTPayload | undefined
  /** Why the fake refused the request, when it did. */
  rejected: string | undefined
  /** The message_uuid it answered with, when it took the message. */
  messageUuid: string | undefined
}

export interface FakeVonageMessages {
  url: string
  requests: SmsRequest[]
  /** Requests the fake found well-formed and authorised, whatever was scripted for them. */
  valid (): SmsRequest[]
  script: Script
  close (): Promise<void>
}

export async function startFakeVonageMessages (options: FakeVonageMessagesOptions): Promise<FakeVonageMessages> {
  const publicKey = await importSPKI(options.publicKey, 'RS256')
  const requests: SmsRequest[] = []
  const script = new Script()

  const server = await startFakeServer(async received => {
    const request: SmsRequest = { headers: received.headers, body: received.json, claims: undefined, rejected: undefined, messageUuid: undefined }
    requests.push(request)
    const refuse = (reply: Reply, why: string): Reply => {
      request.rejected = why
      return reply
    }

    if (received.method !== 'POST' || received.path !== MESSAGES_PATH) {
      return refuse(problem(404, `no resource at ${received.method} ${received.path}`, 'Not Found'), 'wrong method or path')
    }
    const auth = received.headers.authorization ?? ''
    if (!auth.startsWith('Bearer ')) return refuse(unauthorized(), 'no Bearer application JWT')
    const verified = await verifyJwt(auth.slice('Bearer '.length), publicKey, options.applicationId)
    if (typeof verified === 'string') return refuse(unauthorized(), verified)
    request.claims = verified

    if (!String(received.headers['content-type']).startsWith('application/json')) {
      return refuse(problem(415, 'the body must be application/json', 'Unsupported Media Type'), 'not application/json')
    }
    const bodyProblem = checkBody(received)
    if (bodyProblem) return refuse(invalidParams(bodyProblem.name, bodyProblem.reason), bodyProblem.reason)

    const to = (received.json as { to: string }).to
    const reply = script.take(to) ?? accepted()
    request.messageUuid = (reply.json as { message_uuid?: string } | undefined)?.message_uuid
    return reply
  })

  return {
    url: server.url,
    requests,
    valid: () => requests.filter(r => r.rejected === undefined),
    script,
    close: server.close,
  }
}


function checkBody ({ json }: Received): { name: string, reason: string } | undefined {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return { name: 'body', reason: 'not a JSON object' }
  const body = json as Record<string, unknown>
  const extra = Object.keys(body).filter(k => !FIELDS.includes(k))
  if (extra.length) return { name: extra[0]!, reason: 'unexpected field' }
  if (body.message_type !== 'text') return { name: 'message_type', reason: 'must be text' }
  if (body.channel !== 'sms') return { name: 'channel', reason: 'must be sms' }
  if (typeof body.to !== 'string' || !/^[1-9]\d{6,14}$/.test(body.to)) return { name: 'to', reason: 'must be E.164 digits without "+"' }
  if (typeof body.from !== 'string' || !/^([A-Za-z0-9 ]{1,11}|\d{1,15})$/.test(body.from)) return { name: 'from', reason: 'invalid sender' }
  // Characters, as the app counts them (code points: an emoji is one), not UTF-16 units.
  if (typeof body.text !== 'string' || body.text.length < 1 || [...body.text].length > 1000) return { name: 'text', reason: 'must be 1 to 1000 characters' }
  if (typeof body.client_ref !== 'string' || body.client_ref.length < 1 || body.client_ref.length > 100) {
    return { name: 'client_ref', reason: 'must be 1 to 100 characters' }
  }
  if (body.ttl !== undefined && (!Number.isInteger(body.ttl) || (body.ttl as number) < 1)) return { name: 'ttl', reason: 'must be a positive integer' }
  return undefined
}

/** 202 with a fresh message_uuid. */
export function accepted (): Reply {
  return { status: 202, json: { message_uuid: randomUUID() } }
}
/** 422 naming one bad parameter, as Vonage does. */
export function invalidParams (name: string, reason: string): Reply {
  return {
    status: 422,
    headers: { 'content-type': 'application/problem+json' },
    json: {
      type: 'https://developer.vonage.com/api-errors/messages#1150',
      title: 'Invalid params',
      detail: 'The value of one or more parameters is invalid.',
      instance: randomUUID(),
      invalid_parameters: [{ name, reason }],
    },
  }
}
export function unauthorized (): Reply {
  return problem(401, 'You did not provide correct credentials.', 'Unauthorized')
}
export function throttled (retryAfterSeconds: number): Reply {
  return problem(429, 'Rate limit hit. Please wait and try again.', 'Too Many Requests', { 'retry-after': String(retryAfterSeconds) })
}
export function serverError (status = 500): Reply {
  return problem(status, 'Something went wrong.', 'Internal Error')
}
/** A 202 held back this long, to exceed a client's timeout. */
export function slowAccepted (delayMs: number): Reply {
  return slow(accepted(), delayMs)
}
