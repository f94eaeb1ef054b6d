import { type CryptoKey, importPKCS8, SignJWT } from 'jose'
import { z } from 'zod'
import { ConfigError } from '../config.js'
import { OAuthTokenError, OAuthTokenProvider, type TokenRequest } from './oauth-token.js'

// OAuth2 access tokens for FCM HTTP v1 from a service account (docs/upstream-apis.md section 5):
// an RS256 assertion exchanged at the token URL (oauth-token.ts shares the answer until shortly before it expires).

export const FCM_SCOPE = 'https://www.googleapis.com/auth/firebase.messaging'
const JWT_BEARER_GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer'
/** Google accepts assertions living at most an hour. */
const ASSERTION_TTL_SECONDS = 3600

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

/** No access token could be had (the name FCM's callers know it by). */
export { OAuthTokenError as FcmTokenError }

export interface FcmAccessTokenProviderOptions {
  serviceAccount: ServiceAccount
  /** e.g. https://oauth2.googleapis.com/token; also the assertion's audience. */
  tokenUrl: string
  /** Budget of one token request. */
  timeoutMs: number
  now?: () => number
}

/** How long the token URL's refusal of the service account stays the answer without asking it again. */
export const FCM_REFUSAL_KEPT_MS = 30_000

/** The JWT-bearer grant (RFC 7523) with a service account; caching and sharing are OAuthTokenProvider's. */
export class FcmAccessTokenProvider extends OAuthTokenProvider {
  private key: Promise<CryptoKey> | undefined

  constructor (private readonly options: FcmAccessTokenProviderOptions) {
    // The delivery worker retries the whole send. A refusal (a revoked key, a wrong account) is the answer for a while:
    // every send would otherwise make a token request of its own, at the push rate.
    super({ tokenUrl: options.tokenUrl, timeoutMs: options.timeoutMs, refusalKeptMs: FCM_REFUSAL_KEPT_MS, ...(options.now ? { now: options.now } : {}) })
  }

  protected async grant (startedAt: number): Promise<TokenRequest> {
    const assertion = await this.sign(Math.floor(startedAt / 1000))
    return { form: { grant_type: JWT_BEARER_GRANT, assertion } }
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
      throw new OAuthTokenError(`cannot sign the assertion with the service account's private_key (${(err as Error).message})`, false,
        undefined, { cause: err })
    }
  }
}
