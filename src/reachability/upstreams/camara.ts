import { randomUUID } from 'node:crypto'
import { z } from 'zod'
import type { UpstreamAnswer } from '../../domain/reachability.js'
import { type HttpAnswer, type HttpClient, isRetryableStatus } from '../../http/retry.js'
import { answerJson, errorBody, type HttpUpstreamPolicy, refusedRequest, sendCheck, stillFailing, upstreamHttpClient } from './http-upstream.js'
import { type ReachabilityUpstream, type UpstreamCheckOptions, UpstreamFailure } from './upstream.js'

export interface CamaraUpstreamOptions extends HttpUpstreamPolicy {
  /**
   * The API's full root, version included, as the spec's `servers` entry has it:
   * e.g. https://operator.example/device-reachability-status/v1 (we POST to {baseUrl}/retrieve).
   */
  baseUrl: string
  accessToken: string
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
    const answer = await sendCheck('camara', this.http, {
        method: 'POST',
        path: '/retrieve',
        headers: {
          authorization: `Bearer ${this.options.accessToken}`,
          'content-type': 'application/json',
          accept: 'application/json',
          // One per check, the same across its retries; a UUID fits ^[a-zA-Z0-9-]{0,55}$.
          'x-correlator': randomUUID(),
        },
        body: JSON.stringify({ device: { phoneNumber } }),
      }, options.signal)
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

