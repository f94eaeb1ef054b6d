import { randomUUID } from 'node:crypto'
import { z } from 'zod'
import { type AccessTokenProvider, OAuthTokenError, sendWithToken } from '../../auth/oauth-token.js'
import type { UpstreamAnswer } from '../../domain/reachability.js'
import { type HttpAnswer, type HttpClient, type HttpRequest, isRetryableStatus } from '../../http/retry.js'
import { answerJson, errorBody, type HttpUpstreamPolicy, refusedRequest, sendCheck, stillFailing, upstreamHttpClient } from './http-upstream.js'
import { type ReachabilityUpstream, type UpstreamCheckOptions, UpstreamFailure } from './upstream.js'

export interface CamaraUpstreamOptions extends HttpUpstreamPolicy {
  /**
   * The API's full root, version included, as the spec's `servers` entry has it:
   * e.g. https://operator.example/device-reachability-status/v1 (we POST to {baseUrl}/retrieve).
   */
  baseUrl: string
  /** Where each request's bearer token comes from (see camara-auth.ts); shared, so its owner closes it, not the upstream. */
  tokens: AccessTokenProvider
}

// v1.0.0: a device reachable "for DATA" is so whatever its SMS state, so ["DATA"] alone says
// nothing about SMS; it is kept as it comes rather than guessed into ["DATA", "SMS"].
const v1Answer = z.object({
  reachable: z.boolean(),
  connectivity: z.array(z.string()).optional(),
  lastStatusTime: z.string().optional(),
})
const v06Answer = z.object({
  reachabilityStatus: z.enum(['CONNECTED_DATA', 'CONNECTED_SMS', 'NOT_CONNECTED']),
  lastStatusTime: z.string().optional(),
})
const errorInfo = z.object({ status: z.number().int(), code: z.string(), message: z.string().optional() })

/**
 * CAMARA error codes mapped onto the insight status codes Vonage uses, so the domain and its
 * cache policy see one vocabulary. Codes not listed give no answer (UpstreamFailure).
 */
const ERROR_CODES: Record<number, Record<string, string>> = {
  // The number is the only argument we send.
  400: { INVALID_ARGUMENT: 'INVALID_NUMBER_FORMAT' },
  // Only IDENTIFIER_NOT_FOUND is about the number. NOT_FOUND is "the specified resource is not found" (the spec's
  // generic 404): a wrong base URL at a CAMARA gateway, which must not be cached for a day as "number not found".
  404: { IDENTIFIER_NOT_FOUND: 'NOT_FOUND' },
  422: {
    SERVICE_NOT_APPLICABLE: 'NO_COVERAGE',
    UNSUPPORTED_IDENTIFIER: 'NO_COVERAGE',
    // We send one identifier, so these say the access token (its subject, two- or three-legged)
    // does not fit the number: "this credential may not ask about this number", which is
    // Vonage's UNAUTHORIZED. Not INVALID_NUMBER_FORMAT: that would be cached for a day
    // against a number that is fine.
    IDENTIFIER_MISMATCH: 'UNAUTHORIZED',
    MISSING_IDENTIFIER: 'UNAUTHORIZED',
    UNNECESSARY_IDENTIFIER: 'UNAUTHORIZED',
  },
}

/** An operator's CAMARA Device Reachability Status API (v1, and v0.6 answers). */
export class CamaraUpstream implements ReachabilityUpstream {
  readonly name = 'camara'
  private readonly http: HttpClient

  constructor (private readonly options: CamaraUpstreamOptions) {
    this.http = upstreamHttpClient(options.baseUrl, options)
  }

  async check (phoneNumber: string, options: UpstreamCheckOptions = {}): Promise<UpstreamAnswer> {
    // One per check, the same across its retries (and its second try with a fresh token); a UUID fits ^[a-zA-Z0-9-]{0,55}$.
    const correlator = randomUUID()
    const request = (token: string): HttpRequest => ({
      method: 'POST',
      path: '/retrieve',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json', 'x-correlator': correlator },
      body: JSON.stringify({ device: { phoneNumber } }),
    })
    let answer: HttpAnswer
    try {
      // A 401 is asked once more with a fresh token: the lookup is a read.
      answer = await sendWithToken(this.options.tokens, token => sendCheck('camara', this.http, request(token), options.signal), options.signal)
    } catch (err) {
      if (err instanceof OAuthTokenError) return withoutToken(err)
      throw err
    }
    return this.toAnswer(answer)
  }

  close (): Promise<void> {
    return this.http.close()
  }

  private toAnswer ({ statusCode, headers, body }: HttpAnswer): UpstreamAnswer {
    if (statusCode >= 200 && statusCode < 300) return readStatus(body)
    const error = errorBody(errorInfo, body)
    const detail = error ? `${error.code}: ${error.message ?? ''}` : `HTTP ${statusCode}`
    if (isRetryableStatus(statusCode)) {
      throw stillFailing('camara', statusCode, this.options.retries + 1, detail, headers)
    }
    if (statusCode === 401 || statusCode === 403) return failed('UNAUTHORIZED', error?.message ?? detail)
    // Only a CAMARA error body speaks about the number: a bare 404 from a gateway means a wrong
    // base URL, and must not be cached as "number not found".
    const code = error && ERROR_CODES[statusCode]?.[error.code]
    if (code) return failed(code, error.message ?? error.code)
    throw refusedRequest('camara', statusCode, detail)
  }
}

/**
 * No access token for a lookup. Refused by the token URL (wrong client credentials, scope), the answer is
 * UNAUTHORIZED, as CAMARA's own 401 is: never cached, and the caller sees why. Otherwise (network, 5xx) no answer.
 */
function withoutToken (err: OAuthTokenError): UpstreamAnswer {
  const message = `no CAMARA access token: ${err.message}`
  if (err.refused) return failed('UNAUTHORIZED', message)
  // Not transient (a token type we cannot use): a setup problem, not the upstream's health.
  throw new UpstreamFailure(`camara: ${message}`, err.retryAfterSeconds, { cause: err, refused: !err.transient })
}

function failed (code: string, message: string): UpstreamAnswer {
  return { is_reachable: false, connectivity: [], latest_status_at: null, status: { code, message } }
}

function readStatus (body: string): UpstreamAnswer {
  const json = answerJson('camara', body)
  const ok = { code: 'OK', message: 'Success' }
  const v1 = v1Answer.safeParse(json)
  if (v1.success) {
    const { reachable, connectivity, lastStatusTime } = v1.data
    return { is_reachable: reachable, connectivity: reachable ? connectivity ?? [] : [], latest_status_at: lastStatusTime ?? null, status: ok }
  }
  const v06 = v06Answer.safeParse(json)
  if (v06.success) {
    const { reachabilityStatus, lastStatusTime } = v06.data
    const connectivity = reachabilityStatus === 'CONNECTED_DATA' ? ['DATA'] : reachabilityStatus === 'CONNECTED_SMS' ? ['SMS'] : []
    return { is_reachable: connectivity.length > 0, connectivity, latest_status_at: lastStatusTime ?? null, status: ok }
  }
  throw new UpstreamFailure('camara: the answer is neither a v1 nor a v0.6 reachability status')
}

