import { type CryptoKey, importPKCS8, SignJWT } from 'jose'
import { z } from 'zod'
import { ConfigError } from '../config.js'
import { type HttpAnswer, HttpClient, isRetryableStatus, isTransientError, retryAfterSeconds } from '../http/retry.js'

// OAuth2 access tokens for FCM HTTP v1 from a service account (docs/upstream-apis.md section 5):
// an RS256 assertion exchanged at the token URL, the answer shared until shortly before it expires.

export const FCM_SCOPE = 'https://www.googleapis.com/auth/firebase.messaging'
const JWT_BEARER_GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer'
/** Google accepts assertions living at most an hour. */
const ASSERTION_TTL_SECONDS = 3600
/** A token is replaced this long before it expires, so none expires in flight. */
const RENEW_BEFORE_SECONDS = 60

const serviceAccountSchema = z.object({
  client_email: z.string().min(1),
  private_key: z.string().min(1),
  private_key_id: z.string().min(1).optional(),
  project_id: z.string().min(1).optional(),
})

export type ServiceAccount = z.infer<typeof serviceAccountSchema>

/** Reads the service account JSON (FCM_SERVICE_ACCOUNT or the file FCM_SERVICE_ACCOUNT_PATH names). */
export function parseServiceAccount (json: string): ServiceAccount {
  let value: unknown
  try {
    value = JSON.parse(json)
  } catch {
    throw new ConfigError(['FCM_SERVICE_ACCOUNT: is not JSON'])
  }
  const parsed = serviceAccountSchema.safeParse(value)
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map(i => `FCM_SERVICE_ACCOUNT: ${i.path.join('.') || '(root)'}: ${i.message}`))
  }
  return parsed.data
}

const tokenAnswer = z.object({
  access_token: z.string().min(1),
  expires_in: z.coerce.number().int().positive(),
})

const oauthError = z.object({ error: z.string(), error_description: z.string().optional() })

/** No access token could be had; `transient` says whether trying again later may help. */
export class FcmTokenError extends Error {
  constructor (message: string, readonly transient: boolean, readonly retryAfterSeconds?: number, options?: ErrorOptions) {
    super(message, options)
    this.name = 'FcmTokenError'
  }
}

export interface FcmAccessTokenProviderOptions {
  serviceAccount: ServiceAccount
  /** e.g. https://oauth2.googleapis.com/token; also the assertion's audience. */
  tokenUrl: string
  /** Budget of one token request. */
  timeoutMs: number
  now?: () => number
}

export class FcmAccessTokenProvider {
  private readonly now: () => number
  private readonly http: HttpClient
  private readonly path: string
  private key: Promise<CryptoKey> | undefined
  private cached: { token: string, renewAt: number } | undefined
  private inflight: Promise<string> | undefined

  constructor (private readonly options: FcmAccessTokenProviderOptions) {
    this.now = options.now ?? Date.now
    const url = new URL(options.tokenUrl)
    this.path = url.pathname + url.search
    // One attempt: the delivery worker retries the whole send.
    this.http = new HttpClient(url.origin, { timeoutMs: options.timeoutMs, retries: 0, baseMs: 0, maxMs: 0 })
  }

  /** A valid access token: the cached one, or one fetch shared by every concurrent caller. Throws FcmTokenError. */
  token (): Promise<string> {
    if (this.cached && this.now() < this.cached.renewAt) return Promise.resolve(this.cached.token)
    if (!this.inflight) {
      const inflight = this.fetch().finally(() => { if (this.inflight === inflight) this.inflight = undefined })
      this.inflight = inflight
    }
    return this.inflight
  }

  /** FCM refused this token (401): forget it, unless a newer one has replaced it already. */
  invalidate (token: string): void {
    if (this.cached?.token === token) this.cached = undefined
  }

  close (): Promise<void> {
    return this.http.close()
  }

  private async fetch (): Promise<string> {
    const startedAt = this.now()
    const assertion = await this.sign(Math.floor(startedAt / 1000))
    let answer: HttpAnswer
    try {
      answer = await this.http.send({
        method: 'POST',
        path: this.path,
        headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
        body: new URLSearchParams({ grant_type: JWT_BEARER_GRANT, assertion }).toString(),
      })
    } catch (err) {
      throw new FcmTokenError(`no answer from the token URL (${(err as Error).message})`, isTransientError(err), undefined, { cause: err })
    }
    const { statusCode, headers, body } = answer
    if (statusCode < 200 || statusCode >= 300) {
      const detail = readOauthError(body) ?? `HTTP ${statusCode}`
      throw new FcmTokenError(`the token URL answered ${statusCode}: ${detail}`, isRetryableStatus(statusCode), retryAfterSeconds(headers))
    }
    const parsed = tokenAnswer.safeParse(readJson(body))
    if (!parsed.success) throw new FcmTokenError('the token URL answered 2xx without an access_token and expires_in', true)
    const { access_token: token, expires_in: expiresIn } = parsed.data
    // Counted from when the request left, so the token never outlives the cache entry.
    const renewAt = startedAt + (expiresIn - Math.min(RENEW_BEFORE_SECONDS, expiresIn / 2)) * 1000
    this.cached = { token, renewAt }
    return token
  }

  private async sign (iat: number): Promise<string> {
    const account = this.options.serviceAccount
    try {
      // Keys pasted into an environment variable often carry literal "\n".
      this.key ??= importPKCS8(account.private_key.replaceAll('\\n', '\n'), 'RS256')
      return await new SignJWT({ scope: FCM_SCOPE })
        .setProtectedHeader({ alg: 'RS256', typ: 'JWT', ...(account.private_key_id ? { kid: account.private_key_id } : {}) })
        .setIssuer(account.client_email)
        .setAudience(this.options.tokenUrl)
        .setIssuedAt(iat)
        .setExpirationTime(iat + ASSERTION_TTL_SECONDS)
        .sign(await this.key)
    } catch (err) {
      throw new FcmTokenError(`cannot sign the assertion with the service account's private_key (${(err as Error).message})`, false,
        undefined, { cause: err })
    }
  }
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
