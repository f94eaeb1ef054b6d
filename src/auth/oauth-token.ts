import { z } from 'zod'
import { type HttpAnswer, HttpClient, isRetryableStatus, retryAfterSeconds } from '../http/retry.js'

// OAuth2 access tokens from a token URL (RFC 6749), whatever the grant: the answer shared until shortly before it
// expires, one fetch shared by every concurrent caller, a token the API refused forgotten. The grants beside it:
// fcm-token.ts (JWT bearer, for FCM), client-credentials.ts (for CAMARA).

/** A token is replaced this long before it expires, so none expires in flight. */
const RENEW_BEFORE_SECONDS = 60

/** Where a client of an API gets its bearer token. */
export interface AccessTokenProvider {
  /** A valid access token. Throws OAuthTokenError when none can be had. */
  token (): Promise<string>
  /** The API refused this token (401): forget it, unless a newer one has replaced it already. */
  invalidate (token: string): void
  close (): Promise<void>
}

/** A token given once in the configuration: always the same answer, nothing to renew. */
export class StaticAccessToken implements AccessTokenProvider {
  constructor (private readonly value: string) {}

  token (): Promise<string> {
    return Promise.resolve(this.value)
  }

  invalidate (): void {}

  async close (): Promise<void> {}
}

/** No access token could be had; `transient` says whether trying again later may help. */
export class OAuthTokenError extends Error {
  /** The token URL's HTTP status, when it answered. */
  readonly statusCode: number | undefined

  constructor (message: string, readonly transient: boolean, readonly retryAfterSeconds?: number,
    options?: ErrorOptions & { statusCode?: number }) {
    super(message, options)
    this.name = 'OAuthTokenError'
    this.statusCode = options?.statusCode
  }

  /** The token URL refused us (a 4xx other than 429: wrong client credentials, scope or grant): asking again will not help. */
  get refused (): boolean {
    return this.statusCode !== undefined && this.statusCode >= 400 && this.statusCode < 500 && !this.transient
  }
}

/** What one token request sends besides the grant's form fields: client authentication, when the grant has it. */
export interface TokenRequest {
  form: Record<string, string>
  headers?: Record<string, string>
}

export interface OAuthTokenProviderOptions {
  tokenUrl: string
  /** Budget of one token request. */
  timeoutMs: number
  /**
   * The lifetime assumed for a token answered without `expires_in` (RFC 6749 only recommends it); unset,
   * such an answer is no token.
   */
  assumedExpiresInSeconds?: number
  /**
   * How long a refusal of the token URL (wrong credentials, scope or grant) stays the answer without asking again
   * (default 0: every call after it asks). With bad credentials, every call would otherwise make a token request of
   * its own, at the traffic's rate.
   */
  refusalKeptMs?: number
  /** Told once per failed token request (not once per caller waiting for it). */
  onError?: (err: OAuthTokenError) => void
  now?: () => number
}

const tokenAnswer = z.object({
  access_token: z.string().min(1),
  expires_in: z.coerce.number().int().positive().optional(),
  token_type: z.string().optional(),
})

const oauthError = z.object({ error: z.string(), error_description: z.string().optional() })

/** The token of one grant, kept and shared; a subclass says what the grant sends. */
export abstract class OAuthTokenProvider implements AccessTokenProvider {
  protected readonly now: () => number
  private readonly http: HttpClient
  private readonly path: string
  private cached: { token: string, renewAt: number } | undefined
  private inflight: Promise<string> | undefined
  private refusal: { err: OAuthTokenError, until: number } | undefined

  constructor (protected readonly tokenOptions: OAuthTokenProviderOptions) {
    this.now = tokenOptions.now ?? Date.now
    const url = new URL(tokenOptions.tokenUrl)
    this.path = url.pathname + url.search
    // One attempt: a failed fetch fails the calls waiting for it, and the next call asks again.
    this.http = new HttpClient(url.origin, { timeoutMs: tokenOptions.timeoutMs, retries: 0, baseMs: 0, maxMs: 0 })
  }

  /** The grant's form fields and client authentication for a request leaving at `startedAt` (epoch ms). */
  protected abstract grant (startedAt: number): Promise<TokenRequest>

  /** A valid access token: the cached one, or one fetch shared by every concurrent caller. Throws OAuthTokenError. */
  token (): Promise<string> {
    if (this.cached && this.now() < this.cached.renewAt) return Promise.resolve(this.cached.token)
    if (this.refusal && this.now() < this.refusal.until) return Promise.reject(this.refusal.err)
    if (!this.inflight) {
      const inflight = this.fetch().finally(() => { if (this.inflight === inflight) this.inflight = undefined })
      this.inflight = inflight
    }
    return this.inflight
  }

  invalidate (token: string): void {
    if (this.cached?.token === token) this.cached = undefined
  }

  close (): Promise<void> {
    return this.http.close()
  }

  private async fetch (): Promise<string> {
    try {
      return await this.request()
    } catch (err) {
      if (err instanceof OAuthTokenError) {
        this.tokenOptions.onError?.(err)
        if (err.refused && this.tokenOptions.refusalKeptMs) this.refusal = { err, until: this.now() + this.tokenOptions.refusalKeptMs }
      }
      throw err
    }
  }

  private async request (): Promise<string> {
    const startedAt = this.now()
    const { form, headers } = await this.grant(startedAt)
    let answer: HttpAnswer
    try {
      answer = await this.http.send({
        method: 'POST',
        path: this.path,
        headers: { ...headers, 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: new URLSearchParams(form).toString(),
      })
    } catch (err) {
      // No HTTP answer at all (network, timeout, TLS, a garbled answer): nothing says the grant is wrong, so it is
      // transient, as the same failure of the API call itself is.
      throw new OAuthTokenError(`no answer from the token URL (${(err as Error).message})`, true, undefined, { cause: err })
    }
    const { statusCode, headers: answerHeaders, body } = answer
    if (statusCode < 200 || statusCode >= 300) {
      const detail = readOauthError(body) ?? `HTTP ${statusCode}`
      throw new OAuthTokenError(`the token URL answered ${statusCode}: ${detail}`, isRetryableStatus(statusCode),
        retryAfterSeconds(answerHeaders), { statusCode })
    }
    const parsed = tokenAnswer.safeParse(readJson(body))
    const expiresIn = parsed.data?.expires_in ?? this.tokenOptions.assumedExpiresInSeconds
    if (!parsed.success || expiresIn === undefined) {
      throw new OAuthTokenError('the token URL answered 2xx without an access_token and expires_in', true, undefined, { statusCode })
    }
    const { access_token: token, token_type: tokenType } = parsed.data
    // RFC 6749 section 7.1: a token of a type we do not know must not be used (type names are case-insensitive).
    if (tokenType !== undefined && tokenType.toLowerCase() !== 'bearer') {
      throw new OAuthTokenError(`the token URL issued a ${tokenType} token; only Bearer tokens can be used`, false, undefined, { statusCode })
    }
    // Counted from when the request left, so the token never outlives the cache entry.
    const renewAt = startedAt + (expiresIn - Math.min(RENEW_BEFORE_SECONDS, expiresIn / 2)) * 1000
    this.cached = { token, renewAt }
    return token
  }
}

/**
 * Sends a request with a bearer token from `tokens`. A 401 drops that token, and the request goes once more with a
 * fresh one (a 401 did nothing); when there is no fresh one (a static token), the 401 is the answer.
 * The wait for a token ends when `signal` aborts, with its reason; OAuthTokenError passes through.
 */
export async function sendWithToken (
  tokens: AccessTokenProvider, send: (token: string) => Promise<HttpAnswer>, signal?: AbortSignal,
): Promise<HttpAnswer> {
  const token = await abortable(tokens.token(), signal)
  const answer = await send(token)
  if (answer.statusCode !== 401) return answer
  tokens.invalidate(token)
  const fresh = await abortable(tokens.token(), signal)
  return fresh === token ? answer : send(fresh)
}

/** `promise`, or the signal's reason as soon as it aborts (the work behind `promise` goes on for its other callers). */
function abortable<T> (promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise
  if (signal.aborted) return Promise.reject(signal.reason as Error)
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error)
    signal.addEventListener('abort', onAbort, { once: true })
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort))
  })
}

function readJson (body: string): unknown {
  try {
    return JSON.parse(body)
  } catch {
    return undefined
  }
}

function readOauthError (body: string): string | undefined {
  const parsed = oauthError.safeParse(readJson(body))
  if (!parsed.success) return undefined
  return parsed.data.error_description ? `${parsed.data.error}: ${parsed.data.error_description}` : parsed.data.error
}
