import { randomUUID } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'
import { exportPKCS8, exportSPKI, generateKeyPair, importSPKI, jwtVerify, type JWTPayload } from 'jose'
import { isReservedPushDataKey } from '../../src/notifications/types.js'
import { type Reply, Script, startFakeServer } from './scripted-server.js'

// A fake of FCM HTTP v1 and of Google's OAuth token endpoint on one loopback server
// (docs/upstream-apis.md section 5). The token endpoint verifies the service account's
// assertion and issues access tokens; messages:send accepts only tokens it issued and checks
// the message's shape and size. Send replies are scripted per device token or for the next calls.

export const FCM_SCOPE = 'https://www.googleapis.com/auth/firebase.messaging'
export const TOKEN_PATH = '/token'
const PAYLOAD_LIMIT_BYTES = 4096

export interface FakeFcmOptions {
  projectId: string
  clientEmail: string
  /** SPKI PEM of the service account's public key. */
  publicKey: string
  /** expires_in of issued access tokens; 3599 by default, as Google answers. */
  expiresInSeconds?: number
}

export interface TokenRequest {
  claims: JWTPayload | undefined
  rejected: string | undefined
  /** The access token issued, when one was. */
  issued: string | undefined
}

export interface SendRequest {
  path: string
  headers: IncomingHttpHeaders
  body: unknown
  accessToken: string | undefined
  rejected: string | undefined
}

export interface FakeFcm {
  /** Base URL of messages:send (FCM_BASE_URL). */
  url: string
  /** FCM_TOKEN_URL */
  tokenUrl: string
  tokenRequests: TokenRequest[]
  /** How many access tokens it has issued. */
  tokenFetches (): number
  sends: SendRequest[]
  /** Sends the fake found authorised and well-formed, whatever was scripted for them. */
  valid (): SendRequest[]
  /** Replies to messages:send, keyed by device token. */
  script: Script
  /** Replies to the token endpoint, for the next fetches (`script.next`). */
  tokenScript: Script
  /** Later sends with this access token get 401. */
  revoke (accessToken: string): void
  close (): Promise<void>
}

export async function startFakeFcm (options: FakeFcmOptions): Promise<FakeFcm> {
  const publicKey = await importSPKI(options.publicKey, 'RS256')
  const expiresIn = options.expiresInSeconds ?? 3599
  const sendPath = `/v1/projects/${options.projectId}/messages:send`
  const tokenRequests: TokenRequest[] = []
  const sends: SendRequest[] = []
  const issued = new Set<string>()
  const revoked = new Set<string>()
  const script = new Script()
  const tokenScript = new Script()
  let tokenUrl = ''
  let sent = 0

  const server = await startFakeServer(async received => {
    if (received.path === TOKEN_PATH) {
      const request: TokenRequest = { claims: undefined, rejected: undefined, issued: undefined }
      tokenRequests.push(request)
      const refuse = (why: string): Reply => {
        request.rejected = why
        return { status: 400, json: { error: 'invalid_grant', error_description: why } }
      }
      if (received.method !== 'POST') return refuse(`${received.method} is not allowed`)
      if (!String(received.headers['content-type']).startsWith('application/x-www-form-urlencoded')) return refuse('not form-encoded')
      const form = new URLSearchParams(received.rawBody)
      if (form.get('grant_type') !== 'urn:ietf:params:oauth:grant-type:jwt-bearer') return refuse('wrong grant_type')
      let claims: JWTPayload
      try {
        claims = (await jwtVerify(form.get('assertion') ?? '', publicKey, {
          algorithms: ['RS256'], issuer: options.clientEmail, audience: tokenUrl,
        })).payload
      } catch (err) {
        return refuse(`invalid assertion: ${(err as Error).message}`)
      }
      request.claims = claims
      if (claims.scope !== FCM_SCOPE) return refuse(`scope is ${String(claims.scope)}`)
      if (typeof claims.iat !== 'number' || typeof claims.exp !== 'number') return refuse('the assertion needs iat and exp')
      if (claims.exp <= claims.iat || claims.exp > claims.iat + 3600) return refuse('exp must be after iat and at most an hour later')
      const scripted = tokenScript.take('')
      if (scripted) {
        request.rejected = `scripted ${scripted.status}`
        return scripted
      }
      const accessToken = `ya29.fake-${randomUUID()}`
      issued.add(accessToken)
      request.issued = accessToken
      return { status: 200, json: { access_token: accessToken, expires_in: expiresIn, token_type: 'Bearer' } }
    }

    const request: SendRequest = { path: received.path, headers: received.headers, body: received.json, accessToken: undefined, rejected: undefined }
    sends.push(request)
    const refuse = (reply: Reply, why: string): Reply => {
      request.rejected = why
      return reply
    }
    if (received.method !== 'POST' || received.path !== sendPath) {
      return refuse(fcmError(404, 'NOT_FOUND', undefined, `no resource at ${received.path}`), 'wrong method or path')
    }
    const auth = received.headers.authorization ?? ''
    request.accessToken = auth.startsWith('Bearer ') ? auth.slice('Bearer '.length) : undefined
    if (!request.accessToken || !issued.has(request.accessToken) || revoked.has(request.accessToken)) {
      return refuse(unauthenticated(), 'an access token it did not issue, or revoked')
    }
    if (!String(received.headers['content-type']).startsWith('application/json')) {
      return refuse(fcmError(400, 'INVALID_ARGUMENT', 'INVALID_ARGUMENT', 'not JSON'), 'not application/json')
    }
    const violation = checkMessage(received.json)
    if (violation) {
      const reply = violation.field === undefined
        ? fcmError(400, 'INVALID_ARGUMENT', 'INVALID_ARGUMENT', violation.description)
        : badField(violation.field, violation.description)
      return refuse(reply, violation.description)
    }

    const message = (received.json as { message: { token: string } }).message
    const scripted = script.take(message.token)
    if (scripted) return scripted
    sent++
    return { status: 200, json: { name: `projects/${options.projectId}/messages/0:${Date.now()}%${sent}` } }
  })
  tokenUrl = server.url + TOKEN_PATH

  return {
    url: server.url,
    tokenUrl,
    tokenRequests,
    tokenFetches: () => tokenRequests.filter(r => r.issued !== undefined).length,
    sends,
    valid: () => sends.filter(r => r.rejected === undefined),
    script,
    tokenScript,
    revoke: accessToken => { revoked.add(accessToken) },
    close: server.close,
  }
}

function checkMessage (json: unknown): { field?: string, description: string } | undefined {
  const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)
  if (!isObject(json) || !isObject(json.message)) return { field: 'message', description: 'a message object is required' }
  const message = json.message
  const extra = Object.keys(message).filter(k => !['token', 'notification', 'data', 'android'].includes(k))
  if (extra.length) return { field: `message.${extra[0]}`, description: 'unexpected field' }
  if (typeof message.token !== 'string' || message.token === '') return { field: 'message.token', description: 'a token is required' }
  const n = message.notification
  if (!isObject(n) || typeof n.title !== 'string' || typeof n.body !== 'string') {
    return { field: 'message.notification', description: 'title and body must be strings' }
  }
  if (message.data !== undefined) {
    if (!isObject(message.data)) return { field: 'message.data', description: 'must be a map' }
    const bad = Object.entries(message.data).find(([, v]) => typeof v !== 'string')
    if (bad) return { field: `message.data.${bad[0]}`, description: 'data values must be strings' }
    // FCM names no field for a reserved key: only its message says which (no fieldViolations).
    const reserved = Object.keys(message.data).find(isReservedPushDataKey)
    if (reserved !== undefined) return { description: `Invalid data payload key: ${reserved}` }
  }
  const a = message.android
  if (a !== undefined) {
    if (!isObject(a)) return { field: 'message.android', description: 'must be an object' }
    if (a.priority !== undefined && a.priority !== 'HIGH' && a.priority !== 'NORMAL') {
      return { field: 'message.android.priority', description: 'HIGH or NORMAL' }
    }
    if (a.ttl !== undefined && (typeof a.ttl !== 'string' || !/^\d+(\.\d{1,9})?s$/.test(a.ttl))) {
      return { field: 'message.android.ttl', description: 'a duration such as "3600s"' }
    }
  }
  const size = Buffer.byteLength(JSON.stringify({ notification: message.notification, data: message.data }))
  if (size > PAYLOAD_LIMIT_BYTES) return { field: 'message', description: `Message is too big (${size} bytes)` }
  return undefined
}

/** An FCM error body; `errorCode` goes in details[] as FcmError does. */
export function fcmError (code: number, status: string, errorCode: string | undefined, message: string,
  headers: Record<string, string> = {}, extraDetails: unknown[] = []): Reply {
  const details = [
    ...(errorCode ? [{ '@type': 'type.googleapis.com/google.firebase.fcm.v1.FcmError', errorCode }] : []),
    ...extraDetails,
  ]
  return { status: code, headers, json: { error: { code, message, status, ...(details.length ? { details } : {}) } } }
}
export function unregistered (): Reply {
  return fcmError(404, 'NOT_FOUND', 'UNREGISTERED', 'Requested entity was not found.')
}
export function invalidToken (): Reply {
  return badField('message.token', 'The registration token is not a valid FCM registration token')
}
/** 400 INVALID_ARGUMENT naming the field at fault, as FCM does with google.rpc.BadRequest. */
export function badField (field: string, description: string): Reply {
  return fcmError(400, 'INVALID_ARGUMENT', 'INVALID_ARGUMENT', `Invalid value at '${field}': ${description}`, {}, [
    { '@type': 'type.googleapis.com/google.rpc.BadRequest', fieldViolations: [{ field, description }] },
  ])
}
export function senderIdMismatch (): Reply {
  return fcmError(403, 'PERMISSION_DENIED', 'SENDER_ID_MISMATCH', 'SenderId mismatch')
}
export function quotaExceeded (retryAfterSeconds?: number): Reply {
  return fcmError(429, 'RESOURCE_EXHAUSTED', 'QUOTA_EXCEEDED', 'Quota exceeded.',
    retryAfterSeconds === undefined ? {} : { 'retry-after': String(retryAfterSeconds) })
}
export function unavailable (): Reply {
  return fcmError(503, 'UNAVAILABLE', 'UNAVAILABLE', 'The service is currently unavailable.')
}
export function internal (): Reply {
  return fcmError(500, 'INTERNAL', 'INTERNAL', 'Internal error encountered.')
}
export function unauthenticated (): Reply {
  return fcmError(401, 'UNAUTHENTICATED', undefined, 'Request had invalid authentication credentials.')
}
export function thirdPartyAuthError (): Reply {
  return fcmError(401, 'UNAUTHENTICATED', 'THIRD_PARTY_AUTH_ERROR', 'Auth error from APNS or Web Push Service')
}

/** A fresh service account as the Firebase console hands it out, and its public key for the fake. */
export async function generateServiceAccount (projectId = 'reachroute-test'): Promise<{
  serviceAccount: { type: string, project_id: string, private_key_id: string, private_key: string, client_email: string }
  json: string
  publicKey: string
}> {
  const pair = await generateKeyPair('RS256', { extractable: true })
  const serviceAccount = {
    type: 'service_account',
    project_id: projectId,
    private_key_id: randomUUID().replaceAll('-', ''),
    private_key: await exportPKCS8(pair.privateKey),
    client_email: `reachroute@${projectId}.iam.gserviceaccount.com`,
  }
  return { serviceAccount, json: JSON.stringify(serviceAccount), publicKey: await exportSPKI(pair.publicKey) }
}
