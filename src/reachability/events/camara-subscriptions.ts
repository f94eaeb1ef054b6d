import { randomUUID } from 'node:crypto'
import { type AccessTokenProvider, OAuthTokenError, sendWithToken } from '../../auth/oauth-token.js'
import type { HttpAnswer, HttpClient, HttpRequest } from '../../http/retry.js'
import { type HttpUpstreamPolicy, upstreamHttpClient } from '../upstreams/http-upstream.js'

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

  /** Creates one subscription (one event type, as the spec demands); resolves its id. */
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
    const answer = await this.send(headers => ({ method: 'POST', path: '/subscriptions', headers, body }))
    if (answer.statusCode !== 201 && answer.statusCode !== 202) {
      throw new SubscriptionError(`creating a subscription answered HTTP ${answer.statusCode}: ${answer.body.slice(0, 200)}`)
    }
    let id: unknown
    try {
      id = (JSON.parse(answer.body) as { id?: unknown } | null)?.id
    } catch {
      throw new SubscriptionError(`the subscription answer is not JSON: ${answer.body.slice(0, 200)}`)
    }
    if (typeof id !== 'string' || !id) throw new SubscriptionError('the subscription answer has no id')
    return id
  }

  /** Ends a subscription; one the operator no longer knows is ended already. */
  async delete (id: string): Promise<void> {
    const answer = await this.send(({ 'content-type': _noBody, ...headers }) => ({ method: 'DELETE', path: `/subscriptions/${encodeURIComponent(id)}`, headers }))
    if (answer.statusCode >= 300 && answer.statusCode !== 404) {
      throw new SubscriptionError(`deleting subscription ${id} answered HTTP ${answer.statusCode}`)
    }
  }

  close (): Promise<void> {
    return this.http.close()
  }

  /** Sends with a bearer token; a 401 is sent once more with a fresh one (a 401 created or deleted nothing). */
  private async send (request: (headers: Record<string, string>) => HttpRequest): Promise<HttpAnswer> {
    // One per operation, the same across its retries.
    const correlator = randomUUID()
    try {
      return await sendWithToken(this.options.tokens, token => this.http.send(request({
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        'x-correlator': correlator,
      })))
    } catch (err) {
      if (err instanceof OAuthTokenError) throw new SubscriptionError(`no CAMARA access token: ${err.message}`, { cause: err })
      throw err
    }
  }
}
