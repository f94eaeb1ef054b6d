import { randomUUID } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'
import { type CryptoKey, exportPKCS8, exportSPKI, generateKeyPair, importSPKI, jwtVerify, type JWTPayload } from 'jose'
import { type Received, type Reply, Script, slow, startFakeServer } from './scripted-server.js'

// A fake of Vonage Identity Insights (reachability only) that checks what it receives:
// the application JWT against the public key, and the body. Unscripted numbers answer as
// Vonage's virtual operator does (docs/upstream-apis.md section 1).

export const INSIGHTS_PATHS = ['/identity-insights/v1/requests', '/v0.1/identity-insights']
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i

export interface FakeVonageOptions {
  applicationId: string
  /** SPKI PEM of the application's public key. */
  publicKey: string
  /** Paths it answers on; both the current and the older one by default. */
  paths?: string[]
  /** How long +990123477 takes to answer; 3000 ms by default. */
  slowMs?: number
  /**
   * Purposes the application may use; another is answered with the insight status INVALID_PURPOSE. By default the
   * one Vonage's test environment takes (docs/upstream-apis.md section 1), FraudPreventionAndDetection.
   */
  allowedPurposes?: string[]
}

export interface VonageRequest {
  path: string
  headers: IncomingHttpHeaders
  body: unknown
  phoneNumber: string | undefined
  token: string | undefined
  claims: JWTPayload | undefined
  /** Why the fake refused the request, when it did. */
  rejected: string | undefined
}

export interface FakeVonage {
  url: string
  requests: VonageRequest[]
  requestsFor (phoneNumber: string): VonageRequest[]
  script: Script
  close (): Promise<void>
}

export async function startFakeVonage (options: FakeVonageOptions): Promise<FakeVonage> {
  const publicKey = await importSPKI(options.publicKey, 'RS256')
  const paths = options.paths ?? INSIGHTS_PATHS
  const slowMs = options.slowMs ?? 3000
  const allowedPurposes = options.allowedPurposes ?? ['FraudPreventionAndDetection']
  const requests: VonageRequest[] = []
  const script = new Script()
  const seen = new Set<string>()

  const server = await startFakeServer(async received => {
    const request: VonageRequest = {
      path: received.path,
      headers: received.headers,
      body: received.json,
      phoneNumber: undefined,
      token: undefined,
      claims: undefined,
      rejected: undefined,
    }
    requests.push(request)
    const refuse = (status: number, title: string, detail: string): Reply => {
      request.rejected = detail
      return problem(status, detail, title)
    }

    if (received.method !== 'POST') return refuse(405, 'Method Not Allowed', `${received.method} is not allowed`)
    if (!paths.includes(received.path)) return refuse(404, 'Not Found', `no resource at ${received.path}`)

    const auth = received.headers.authorization ?? ''
    if (!auth.startsWith('Bearer ')) return refuse(401, 'Unauthorized', 'a Bearer application JWT is required')
    request.token = auth.slice('Bearer '.length)
    const verified = await verifyJwt(request.token, publicKey, options.applicationId)
    if (typeof verified === 'string') return refuse(401, 'Unauthorized', verified)
    request.claims = verified

    if (!String(received.headers['content-type']).startsWith('application/json')) {
      return refuse(415, 'Unsupported Media Type', 'the body must be application/json')
    }
    const bodyProblem = checkBody(received)
    if (bodyProblem) return refuse(400, 'Bad Request', bodyProblem)

    const { phone_number: phoneNumber, purpose } = received.json as { phone_number: string, purpose: string }
    request.phoneNumber = phoneNumber
    if (!allowedPurposes.includes(purpose)) return insightStatus('INVALID_PURPOSE', `The purpose ${purpose} is not allowed for this application`)
    const firstCall = !seen.has(phoneNumber)
    seen.add(phoneNumber)
    return script.take(phoneNumber) ?? virtualOperator(phoneNumber, firstCall, slowMs)
  })

  return {
    url: server.url,
    requests,
    requestsFor: phoneNumber => requests.filter(r => r.phoneNumber === phoneNumber),
    script,
    close: server.close,
  }
}

/** Checks a Vonage application JWT as Vonage does (RS256, application_id, iat, exp, a UUID v4 jti): its claims, or why not. */
export async function verifyJwt (token: string, key: CryptoKey, applicationId: string): Promise<JWTPayload | string> {
  let claims: JWTPayload
  try {
    claims = (await jwtVerify(token, key, { algorithms: ['RS256'], typ: 'JWT' })).payload
  } catch (err) {
    return `invalid JWT: ${(err as Error).message}`
  }
  if (claims.application_id !== applicationId) return `application_id is ${String(claims.application_id)}, not ${applicationId}`
  if (typeof claims.iat !== 'number') return 'the JWT has no iat'
  if (typeof claims.exp !== 'number' || claims.exp <= claims.iat) return 'the JWT has no exp after its iat'
  if (typeof claims.jti !== 'string' || !UUID.test(claims.jti)) return 'the JWT has no UUID v4 jti'
  return claims
}

function checkBody ({ json }: Received): string | undefined {
  if (!isObject(json)) return 'the body is not a JSON object'
  const extra = Object.keys(json).filter(k => !['phone_number', 'purpose', 'insights'].includes(k))
  if (extra.length) return `unexpected fields: ${extra.join(', ')}`
  if (typeof json.phone_number !== 'string' || !/^\+?[1-9]\d{1,14}$/.test(json.phone_number)) return 'phone_number is not E.164'
  if (typeof json.purpose !== 'string' || json.purpose === '') return 'purpose is required'
  if (!isObject(json.insights)) return 'insights is required'
  const asked = Object.keys(json.insights)
  if (asked.length !== 1 || asked[0] !== 'reachability') return `asks for insights ${asked.join(', ')}, expected reachability only`
  if (!isObject(json.insights.reachability)) return 'insights.reachability must be an object'
  return undefined
}

function isObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function virtualOperator (phoneNumber: string, firstCall: boolean, slowMs: number): Reply {
  switch (phoneNumber) {
    case '+990123400': return reachable(['DATA', 'SMS'])
    case '+990123411': return reachable(['SMS'])
    case '+990123422': return reachable(['DATA'])
    case '+990123433':
    case '+990123444': return unreachable()
    case '+990123455': return insightStatus('NO_COVERAGE', 'The network of this number is not covered')
    case '+990123466': return insightStatus('SUPPLIER_ERROR', 'The supplier returned an error')
    case '+990123477': return slow(reachable(['DATA', 'SMS']), slowMs)
    case '+990123488': return firstCall ? problem(503, 'try again later') : reachable(['DATA', 'SMS'])
    case '+990123499': return insightStatus('NOT_FOUND', 'The number is not known to the network')
  }
  if (phoneNumber.startsWith('+990')) return insightStatus('INVALID_NUMBER_FORMAT', 'The phone number format is not valid')
  return reachable(['DATA', 'SMS'])
}

export const LATEST_STATUS_AT = '2024-02-20T10:41:38.657Z'

/** A 200 answer carrying the reachability insight as given. */
export function insight (reachability: Record<string, unknown>): Reply {
  return { status: 200, json: { request_id: randomUUID(), insights: { reachability } } }
}
export function reachable (connectivity: string[]): Reply {
  return insight({ latest_status_at: LATEST_STATUS_AT, is_reachable: true, connectivity, status: { code: 'OK', message: 'Success' } })
}
export function unreachable (): Reply {
  return insight({ latest_status_at: LATEST_STATUS_AT, is_reachable: false, status: { code: 'OK', message: 'Success' } })
}
export function insightStatus (code: string, message = code): Reply {
  return insight({ status: { code, message } })
}
/** A whole-request error, as RFC 7807 problem JSON. */
export function problem (status: number, detail: string, title = 'Error', headers: Record<string, string> = {}): Reply {
  return {
    status,
    headers: { 'content-type': 'application/problem+json', ...headers },
    json: { type: `https://developer.vonage.com/api-errors#${status}`, title, detail, instance: randomUUID() },
  }
}
export function brokenJson (): Reply {
  return { status: 200, raw: '{"insights": {"reachability": {"is_reachable": tr' }
}

/** A fresh application key pair, as Vonage hands it out (PKCS#8) and as the fake reads it (SPKI). */
export async function generateApplicationKeys (): Promise<{ privateKey: string, publicKey: string }> {
  const pair = await generateKeyPair('RS256', { extractable: true })
  return { privateKey: await exportPKCS8(pair.privateKey), publicKey: await exportSPKI(pair.publicKey) }
}
