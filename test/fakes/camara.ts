import type { IncomingHttpHeaders } from 'node:http'
import type { FakeOAuth } from './oauth.js'
import { type Received, type Reply, Script, slow, startFakeServer } from './scripted-server.js'

// A fake operator speaking CAMARA (Device Reachability Status v1, or v0.6 answers) that checks what it receives:
// the Bearer token (a static one, or one the fake OAuth token endpoint issued that has not expired), the
// x-correlator, the body. Unscripted numbers answer as Vonage's virtual operator does, translated to CAMARA.
// More endpoints (subscriptions) plug in with `route`.

export const REACHABILITY_ROOT = '/device-reachability-status/v1'
const CORRELATOR = /^[a-zA-Z0-9-]{0,55}$/
const PHONE_NUMBER = /^\+[1-9][0-9]{4,14}$/

export type CamaraVersion = 'v1' | 'v0.6'

export interface FakeCamaraOptions {
  /** The one bearer token taken (a static CAMARA_ACCESS_TOKEN)… */
  accessToken?: string
  /** …or the tokens a (fake) OAuth token endpoint issued and that have not expired. */
  oauth?: Pick<FakeOAuth, 'accepts'>
  /** The shape of unscripted reachability answers; v1 by default. */
  version?: CamaraVersion
  /** How long +990123477 takes to answer; 3000 ms by default. */
  slowMs?: number
}

export interface CamaraRequest {
  method: string
  path: string
  headers: IncomingHttpHeaders
  body: unknown
  correlator: string | undefined
  phoneNumber: string | undefined
  /** Why the fake refused the request, when it did. */
  rejected: string | undefined
}

export type RouteHandler = (request: CamaraRequest) => Reply | Promise<Reply>

export interface FakeCamara {
  /** Origin of the fake: http://127.0.0.1:<port> */
  url: string
  /** Root of the reachability API, as CamaraUpstream's baseUrl takes it. */
  reachabilityUrl: string
  requests: CamaraRequest[]
  requestsFor (phoneNumber: string): CamaraRequest[]
  /** Replies for POST .../retrieve. */
  script: Script
  /** Adds an endpoint; token and x-correlator are checked before it runs. */
  route (method: string, path: string, handler: RouteHandler): void
  close (): Promise<void>
}

export async function startFakeCamara (options: FakeCamaraOptions): Promise<FakeCamara> {
  const version = options.version ?? 'v1'
  const slowMs = options.slowMs ?? 3000
  const requests: CamaraRequest[] = []
  const script = new Script()
  const seen = new Set<string>()
  const routes = new Map<string, RouteHandler>()

  routes.set(`POST ${REACHABILITY_ROOT}/retrieve`, request => {
    const problem = checkRetrieveBody(request.body)
    if (problem) {
      request.rejected = problem
      return camaraError(400, 'INVALID_ARGUMENT', problem)
    }
    const phoneNumber = (request.body as { device: { phoneNumber: string } }).device.phoneNumber
    request.phoneNumber = phoneNumber
    const firstCall = !seen.has(phoneNumber)
    seen.add(phoneNumber)
    return script.take(phoneNumber) ?? virtualOperator(phoneNumber, firstCall, version, slowMs)
  })

  const server = await startFakeServer(async (received: Received) => {
    const correlator = header(received.headers, 'x-correlator')
    const request: CamaraRequest = {
      method: received.method,
      path: received.path,
      headers: received.headers,
      body: received.json,
      correlator,
      phoneNumber: undefined,
      rejected: undefined,
    }
    requests.push(request)
    const reply = await answer(request)
    // CAMARA echoes the correlator on every answer.
    return correlator === undefined ? reply : { ...reply, headers: { ...reply.headers, 'x-correlator': correlator } }
  })

  async function answer (request: CamaraRequest): Promise<Reply> {
    const refuse = (status: number, code: string, message: string): Reply => {
      request.rejected = message
      return camaraError(status, code, message)
    }
    const bearer = /^Bearer (\S+)$/.exec(request.headers.authorization ?? '')?.[1]
    if (bearer === undefined || !(options.oauth ? options.oauth.accepts(bearer) : bearer === options.accessToken)) {
      return refuse(401, 'UNAUTHENTICATED', 'Request not authenticated due to missing, invalid, or expired credentials.')
    }
    if (request.correlator !== undefined && !CORRELATOR.test(request.correlator)) {
      return refuse(400, 'INVALID_ARGUMENT', `x-correlator ${request.correlator} does not match ${CORRELATOR.source}`)
    }
    const handler = routes.get(`${request.method} ${request.path}`)
    if (!handler) return refuse(404, 'NOT_FOUND', 'The specified resource is not found.')
    // A body must be JSON; a DELETE has none (and so no Content-Type).
    if ((request.method === 'POST' || request.method === 'PUT') && !String(request.headers['content-type']).startsWith('application/json')) {
      return refuse(400, 'INVALID_ARGUMENT', 'the body must be application/json')
    }
    return handler(request)
  }

  return {
    url: server.url,
    reachabilityUrl: server.url + REACHABILITY_ROOT,
    requests,
    requestsFor: phoneNumber => requests.filter(r => r.phoneNumber === phoneNumber),
    script,
    route: (method, path, handler) => { routes.set(`${method} ${path}`, handler) },
    close: server.close,
  }
}

function header (headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name]
  return Array.isArray(value) ? value[0] : value
}

function checkRetrieveBody (body: unknown): string | undefined {
  if (!isObject(body)) return 'the body is not a JSON object'
  if (Object.keys(body).join() !== 'device') return 'the body must hold only "device"'
  if (!isObject(body.device)) return 'device must be an object'
  if (Object.keys(body.device).join() !== 'phoneNumber') return 'device must hold only "phoneNumber"'
  if (typeof body.device.phoneNumber !== 'string' || !PHONE_NUMBER.test(body.device.phoneNumber)) {
    return `device.phoneNumber does not match ${PHONE_NUMBER.source}`
  }
  return undefined
}

function isObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function virtualOperator (phoneNumber: string, firstCall: boolean, version: CamaraVersion, slowMs: number): Reply {
  const connected = (connectivity: Array<'DATA' | 'SMS'>) => version === 'v1'
    ? reachableV1(connectivity)
    : reachabilityStatus(connectivity.includes('DATA') ? 'CONNECTED_DATA' : 'CONNECTED_SMS')
  const disconnected = () => version === 'v1' ? unreachableV1() : reachabilityStatus('NOT_CONNECTED')
  switch (phoneNumber) {
    case '+990123400': return connected(['DATA', 'SMS'])
    case '+990123411': return connected(['SMS'])
    case '+990123422': return connected(['DATA'])
    case '+990123433':
    case '+990123444': return disconnected()
    case '+990123455': return camaraError(422, 'SERVICE_NOT_APPLICABLE', 'The service is not available for the provided identifier.')
    case '+990123466': return camaraError(503, 'UNAVAILABLE', 'Network issue')
    case '+990123477': return slow(connected(['DATA', 'SMS']), slowMs)
    case '+990123488': return firstCall ? camaraError(503, 'UNAVAILABLE', 'Network issue') : connected(['DATA', 'SMS'])
    case '+990123499': return camaraError(404, 'IDENTIFIER_NOT_FOUND', 'The phone number provided is not associated with a customer account')
  }
  if (phoneNumber.startsWith('+990')) return camaraError(400, 'INVALID_ARGUMENT', 'Client specified an invalid argument, request body or query param.')
  return connected(['DATA', 'SMS'])
}

export const LAST_STATUS_TIME = '2024-02-20T10:41:38.657Z'

export function reachableV1 (connectivity: string[]): Reply {
  return { status: 200, json: { lastStatusTime: LAST_STATUS_TIME, reachable: true, connectivity } }
}
export function unreachableV1 (): Reply {
  return { status: 200, json: { lastStatusTime: LAST_STATUS_TIME, reachable: false } }
}
export function reachabilityStatus (status: 'CONNECTED_DATA' | 'CONNECTED_SMS' | 'NOT_CONNECTED'): Reply {
  return { status: 200, json: { lastStatusTime: LAST_STATUS_TIME, reachabilityStatus: status } }
}
export function camaraError (status: number, code: string, message = code, headers: Record<string, string> = {}): Reply {
  return { status, headers, json: { status, code, message } }
}
