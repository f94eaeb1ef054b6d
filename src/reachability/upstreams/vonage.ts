import { z } from 'zod'
import { VonageJwtSigner } from '../../auth/vonage-jwt.js'
import { isSuccessCode, type UpstreamAnswer } from '../../domain/reachability.js'
import { type HttpAnswer, type HttpClient, isRetryableStatus } from '../../http/retry.js'
import { answerJson, errorBody, type HttpUpstreamPolicy, refusedRequest, sendCheck, stillFailing, upstreamHttpClient } from './http-upstream.js'
import { type ReachabilityUpstream, type UpstreamCheckOptions, UpstreamFailure } from './upstream.js'
import { ConfigError } from '../../config.js'

export interface VonageUpstreamOptions extends HttpUpstreamPolicy {
  /** e.g. https://api-eu.vonage.com */
  baseUrl: string
  /** /identity-insights/v1/requests, or the older /v0.1/identity-insights */
  path: string
  applicationId: string
  /** The application's private key, PKCS#8 PEM. */
  privateKey: string
  /** Default purpose; a check may override it. */
  purpose: string
  jwtTtlSeconds: number
  now?: () => number
}

const insightAnswer = z.object({
  insights: z.object({
    reachability: z.object({
      is_reachable: z.boolean().optional(),
      // Strings we do not know yet (new connectivity types) are kept as they come.
      connectivity: z.array(z.string()).optional(),
      latest_status_at: z.string().nullish(),
      status: z.object({ code: z.string().min(1), message: z.string().optional() }),
    }),
  }),
})

const problem = z.object({ title: z.string().optional(), detail: z.string().optional() })

/** The reachability insight of Vonage Identity Insights. */
export class VonageUpstream implements ReachabilityUpstream {
  readonly name = 'vonage'
  private readonly http: HttpClient
  private readonly signer: VonageJwtSigner

  constructor (private readonly options: VonageUpstreamOptions) {
    this.http = upstreamHttpClient(options.baseUrl, options)
    this.signer = new VonageJwtSigner({
      applicationId: options.applicationId,
      privateKey: options.privateKey,
      ttlSeconds: options.jwtTtlSeconds,
      ...(options.now ? { now: options.now } : {}),
    })
  }

  /** Signs the first application JWT now, so a private key that cannot sign stops the start, not the first request. */
  async verifySetup (): Promise<void> {
    try {
      await this.signer.token()
    } catch (err) {
      // A bad setting, reported as the configuration's refusals are: one line, no stack trace.
      throw new ConfigError([`VONAGE_PRIVATE_KEY: cannot sign the application JWT: ${(err as Error).message}`])
    }
  }

  async check (phoneNumber: string, options: UpstreamCheckOptions = {}): Promise<UpstreamAnswer> {
    const body = JSON.stringify({
      phone_number: phoneNumber,
      purpose: options.purpose ?? this.options.purpose,
      insights: { reachability: {} },
    })
    const token = await this.signer.token()
    const answer = await sendCheck('vonage', this.http, {
      method: 'POST',
      path: this.options.path,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json' },
      body,
    }, options.signal)
    // The JWT is signed once and reused: one Vonage refused is not used again (the next lookup signs a new one).
    if (answer.statusCode === 401) this.signer.invalidate(token)
    return this.toAnswer(answer)
  }

  close (): Promise<void> {
    return this.http.close()
  }

  private toAnswer ({ statusCode, headers, body }: HttpAnswer): UpstreamAnswer {
    if (statusCode >= 200 && statusCode < 300) return readInsight(body)
    const error = errorBody(problem, body)
    const detail = error?.detail ?? error?.title ?? `HTTP ${statusCode}`
    if (isRetryableStatus(statusCode)) {
      throw stillFailing('vonage', statusCode, this.options.retries + 1, detail, headers)
    }
    // Our credentials do not allow this: an answer (never cached), so the caller sees why.
    if (statusCode === 401 || statusCode === 403) {
      return { is_reachable: false, connectivity: [], latest_status_at: null, status: { code: 'UNAUTHORIZED', message: detail } }
    }
    // 400 says our request is wrong (numbers are validated before they get here, so a bad purpose
    // or a bug), 404 that the path is: neither says anything about the number, so neither becomes
    // an answer that could be cached against it. No answer, and no retry: it would fail the same.
    throw refusedRequest('vonage', statusCode, detail)
  }
}

function readInsight (body: string): UpstreamAnswer {
  const json = answerJson('vonage', body)
  const parsed = insightAnswer.safeParse(json)
  if (!parsed.success) {
    throw new UpstreamFailure(`vonage: the answer has no usable reachability insight: ${z.prettifyError(parsed.error)}`)
  }
  const insight = parsed.data.insights.reachability
  // PARTIAL_SUCCESS may leave fields out. Connectivity is given only for a reachable device, so it says reachable;
  // with neither, a reading of the device is not there: no answer (never "not reachable", which would be cached,
  // queue or drop notifications and count against the contact).
  const listed = (insight.connectivity?.length ?? 0) > 0
  if (insight.is_reachable === undefined && !listed && isSuccessCode(insight.status.code)) {
    throw new UpstreamFailure(`vonage: ${insight.status.code} without is_reachable or connectivity: the answer says nothing of the device`)
  }
  const isReachable = insight.is_reachable ?? listed
  return {
    is_reachable: isReachable,
    connectivity: isReachable ? insight.connectivity ?? [] : [],
    latest_status_at: insight.latest_status_at ?? null,
    // An unknown code is kept as it is: the domain counts anything it does not know as not OK.
    status: { code: insight.status.code, message: insight.status.message ?? '' },
  }
}

