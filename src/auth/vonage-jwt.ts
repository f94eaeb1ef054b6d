import { randomUUID } from 'node:crypto'
import { type CryptoKey, importPKCS8, SignJWT } from 'jose'
import type { AccessTokenProvider } from './oauth-token.js'

export interface VonageJwtSignerOptions {
  applicationId: string
  /** The application's private key, PKCS#8 PEM. */
  privateKey: string
  /** Lifetime of a token; Vonage's SDKs use 900 s. */
  ttlSeconds?: number
  now?: () => number
}

/** A token is replaced this long before it expires, so none expires in flight. */
const RENEW_BEFORE_SECONDS = 60

/**
 * Vonage application JWTs (RS256). Signing costs about a millisecond, so a token is signed
 * once and shared by every request, concurrent ones included, until shortly before it expires.
 */
/** A token being signed (or signed: `signed`), and when it is to be replaced. */
interface CurrentToken { token: Promise<string>, renewAt: number, signed?: string }

export class VonageJwtSigner implements AccessTokenProvider {
  private readonly ttlSeconds: number
  private readonly now: () => number
  private key: Promise<CryptoKey> | undefined
  private current: CurrentToken | undefined

  constructor (private readonly options: VonageJwtSignerOptions) {
    this.ttlSeconds = options.ttlSeconds ?? 900
    this.now = options.now ?? Date.now
  }

  token (): Promise<string> {
    const now = this.now()
    if (this.current && now < this.current.renewAt) return this.current.token
    const iat = Math.floor(now / 1000)
    const renewAfter = this.ttlSeconds - Math.min(RENEW_BEFORE_SECONDS, this.ttlSeconds / 2)
    const token = this.sign(iat)
    const current: CurrentToken = { token, renewAt: (iat + renewAfter) * 1000 }
    this.current = current
    // A failed signing is not kept: the next call tries again.
    token.then(signed => { current.signed = signed }, () => { if (this.current === current) this.current = undefined })
    return token
  }

  /** Vonage refused this token (401): the next call signs a new one, unless a newer one has replaced it already. */
  invalidate (token: string): void {
    if (this.current?.signed === token) this.current = undefined
  }

  /** Nothing to close: the JWT is signed here. */
  async close (): Promise<void> {}

  private async sign (iat: number): Promise<string> {
    // Keys pasted into an environment variable often carry literal "\n".
    this.key ??= importPKCS8(this.options.privateKey.replaceAll('\\n', '\n'), 'RS256')
    return new SignJWT({ application_id: this.options.applicationId })
      .setProtectedHeader({ alg: 'RS256', typ: 'JWT' })
      .setIssuedAt(iat)
      .setJti(randomUUID())
      .setExpirationTime(iat + this.ttlSeconds)
      .sign(await this.key)
  }
}
