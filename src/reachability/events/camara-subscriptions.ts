import { randomUUID } from 'node:crypto'
import { z } from 'zod'
import { type AccessTokenProvider, OAuthTokenError, sendWithToken } from '../../auth/oauth-token.js'
import type { BeforeRetry, HttpAnswer, HttpClient, HttpRequest } from '../../http/retry.js'
import { errorBody, type HttpUpstreamPolicy, upstreamHttpClient } from '../upstreams/http-upstream.js'

// CAMARA Device Reachability Status Subscriptions (v0.7): ask the operator to tell us when a device connects.

export const EVENT_TYPE_PREFIX = 'org.camaraproject.device-reachability-status-subscriptions.v0.'
export const SUBSCRIBED_TYPES = ['reachability-data', 'reachability-sms'] as const

export interface SubscriptionRequest {
  phoneNumber: string
  /** Short type: reachability-data or reachability-sms. */
  type: string
  sink: string
  sinkToken: string
  expireAt: Date
}

export interface CamaraSubscriptionsOptions extends HttpUpstreamPolicy {
  /** The API root, e.g. https://operator.example/device-reachability-status-subscriptions/v0.7 */
  baseUrl: string
  /** Where each request's bearer token comes from (see upstreams/camara-auth.ts); shared, so its owner closes it, not the client. */
  tokens: AccessTokenProvider
}

const errorInfo = z.object({ code: z.string(), message: z.string().optional() })
const dateTime = z.string().refine(value => !Number.isNaN(Date.parse(value)))
/** What a listed Subscription must hold for us to know whether it is ours, and how long it lasts. */
const listedSubscription = z.object({
  id: z.string().min(1),
  sink: z.string(),
  types: z.array(z.string()),
  config: z.object({
    subscriptionDetail: z.object({ device: z.object({ phoneNumber: z.string() }) }),
    subscriptionExpireTime: dateTime.optional(),
  }),
  expiresAt: dateTime.optional(),
  status: z.string().optional(),
})
type ListedSubscription = z.infer<typeof listedSubscription>
/** Statuses of a subscription that is over, its record kept. */
const ENDED = new Set(['EXPIRED', 'DELETED'])

export class SubscriptionError extends Error {
  constructor (message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'SubscriptionError'
  }
}

export class CamaraSubscriptions {
  private readonly http: HttpClient

  constructor (private readonly options: CamaraSubscriptionsOptions) {
    this.http = upstreamHttpClient(options.baseUrl, options)
  }

  /**
   * Creates one subscription (one event type, as the spec demands); resolves its id. An operator that refuses a
   * duplicate (409 ALREADY_EXISTS: one made by an earlier try whose answer was lost, or one we hold already) has ours
   * live: its id is the answer.
   */
  async create (request: SubscriptionRequest): Promise<string> {
    const body = JSON.stringify({
      protocol: 'HTTP',
      sink: request.sink,
      sinkCredential: {
        credentialType: 'ACCESSTOKEN',
        accessToken: request.sinkToken,
        accessTokenExpiresUtc: request.expireAt.toISOString(),
        accessTokenType: 'bearer',
      },
      types: [EVENT_TYPE_PREFIX + request.type],
      config: {
        subscriptionDetail: { device: { phoneNumber: request.phoneNumber } },
        subscriptionExpireTime: request.expireAt.toISOString(),
        initialEvent: true,
      },
    })
    // A create is not safe to repeat: an attempt that failed (timeout, 5xx) may have made one all the same, and an
    // operator allowing duplicates would make another. So before each retry the list is asked first.
    let adopted: string | undefined
    const beforeRetry = async () => {
      try {
        adopted = await this.findOurs(request)
      } catch {
        return false
      }
      return adopted === undefined
    }
    const answer = await this.send(headers => ({ method: 'POST', path: '/subscriptions', headers, body }), beforeRetry)
    if (adopted !== undefined) return adopted
    if (answer.statusCode === 409) {
      const error = errorBody(errorInfo, answer.body)
      if (error?.code === 'ALREADY_EXISTS') return this.existing(request, 'creating a subscription answered HTTP 409 ALREADY_EXISTS')
      throw new SubscriptionError(`creating a subscription answered HTTP 409 ${error ? `${error.code}: ${error.message ?? ''}` : answer.body.slice(0, 200)}`)
    }
    if (answer.statusCode !== 201 && answer.statusCode !== 202) {
      throw new SubscriptionError(`creating a subscription answered HTTP ${answer.statusCode}: ${answer.body.slice(0, 200)}`)
    }
    let id: unknown
    try {
      id = (JSON.parse(answer.body) as { id?: unknown } | null)?.id
    } catch {
      throw new SubscriptionError(`the subscription answer is not JSON: ${answer.body.slice(0, 200)}`)
    }
    if (typeof id === 'string' && id) return id
    // A 202 (made asynchronously) may come without an id (the spec's SubscriptionAsync has it optional): the list
    // names it once it is made.
    if (answer.statusCode === 202) return this.existing(request, 'creating a subscription answered HTTP 202 without an id')
    throw new SubscriptionError('the subscription answer has no id')
  }

  /** Ends a subscription; one the operator no longer knows is ended already. */
  async delete (id: string): Promise<void> {
    const answer = await this.send(({ 'content-type': _noBody, ...headers }) => ({ method: 'DELETE', path: `/subscriptions/${encodeURIComponent(id)}`, headers }))
    if (answer.statusCode >= 300 && answer.statusCode !== 404) {
      throw new SubscriptionError(`deleting subscription ${id} answered HTTP ${answer.statusCode}`)
    }
  }

  /** The live subscription of ours the operator lists for the request (see findOurs); `why` we ask. */
  private async existing (request: SubscriptionRequest, why: string): Promise<string> {
    let id: string | undefined
    try {
      id = await this.findOurs(request)
    } catch (err) {
      throw new SubscriptionError(`${why}, and ${(err as Error).message}`, { cause: err })
    }
    if (id === undefined) throw new SubscriptionError(`${why}, and the operator lists none of ours live (this sink, type and phone number)`)
    return id
  }

  /**
   * The live subscription of ours for the request, if the operator lists one: the same sink, the one event type, the
   * same phone number; of several, one sending events before an INACTIVE one, then the one lasting longest (the same
   * whatever the list's order). Items we cannot read are skipped. Throws when the list cannot be read.
   */
  private async findOurs (request: SubscriptionRequest): Promise<string | undefined> {
    const answer = await this.send(({ 'content-type': _noBody, ...headers }) => ({ method: 'GET', path: '/subscriptions', headers }))
    if (answer.statusCode !== 200) throw new SubscriptionError(`listing the subscriptions answered HTTP ${answer.statusCode}`)
    let list: unknown
    try {
      list = JSON.parse(answer.body)
    } catch {
      // Not JSON: not a list either.
    }
    if (!Array.isArray(list)) throw new SubscriptionError(`the list of subscriptions is not a JSON array: ${answer.body.slice(0, 200)}`)
    const now = Date.now()
    const ours = list.flatMap(item => {
      const parsed = listedSubscription.safeParse(item)
      return parsed.success && isOurs(parsed.data, request) && lasts(parsed.data) > now ? [parsed.data] : []
    })
    // One sending events first (INACTIVE is "temporarily inactive": none come from it meanwhile), then the longest.
    const inactive = (s: ListedSubscription) => s.status === 'INACTIVE' ? 1 : 0
    return ours.sort((a, b) => inactive(a) - inactive(b) || lasts(b) - lasts(a) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))[0]?.id
  }

  close (): Promise<void> {
    return this.http.close()
  }

  /** Sends with a bearer token; a 401 is sent once more with a fresh one (a 401 created or deleted nothing). */
  private async send (request: (headers: Record<string, string>) => HttpRequest, beforeRetry?: BeforeRetry): Promise<HttpAnswer> {
    // One per operation, the same across its retries.
    const correlator = randomUUID()
    try {
      return await sendWithToken(this.options.tokens, token => this.http.send(request({
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        'x-correlator': correlator,
      }), undefined, beforeRetry))
    } catch (err) {
      if (err instanceof OAuthTokenError) throw new SubscriptionError(`no CAMARA access token: ${err.message}`, { cause: err })
      throw err
    }
  }
}

function isOurs (listed: ListedSubscription, request: SubscriptionRequest): boolean {
  return listed.sink === request.sink &&
    listed.types.length === 1 && listed.types[0] === EVENT_TYPE_PREFIX + request.type &&
    listed.config.subscriptionDetail.device.phoneNumber === request.phoneNumber &&
    !ENDED.has(listed.status ?? '')
}

/** When it ends (epoch ms): the operator's expiresAt, else the expiry asked for; neither given, it does not. */
function lasts (listed: ListedSubscription): number {
  const at = listed.expiresAt ?? listed.config.subscriptionExpireTime
  return at === undefined ? Infinity : Date.parse(at)
}
