import { randomBytes } from 'node:crypto'
import {
  createRemoteJWKSet,
  errors as joseErrors,
  importSPKI,
  jwtVerify,
  SignJWT,
  type JWTPayload,
  type JWTVerifyGetKey,
  type JWTVerifyOptions,
} from 'jose'
import { AuthUnavailableError, UnauthorizedError } from '../domain/errors.js'
import { hasLoneSurrogate } from '../domain/unicode.js'
import { SCOPES } from './scopes.js'

// Verifies the bearer tokens of internal callers. Knows nothing of HTTP beyond the header's text.

export interface Principal {
  subject: string
  scopes: ReadonlySet<string>
}

export interface InboundAuthOptions {
  jwksUrl?: string | undefined
  publicKey?: string | undefined
  hs256Secret?: string | undefined
  issuer?: string | undefined
  audience?: string | undefined
  jwksTimeoutMs: number
  jwksCooldownMs: number
}

type KeySource = { kind: 'jwks', getKey: JWTVerifyGetKey } | { kind: 'key', key: Awaited<ReturnType<typeof importSPKI>> | Uint8Array, algorithms: string[] }

/** Unicode's control characters (C0, DEL and C1). */
const CONTROL = /\p{Cc}/u
/** The clock difference tolerated between the token's issuer and this process, for `exp` and `nbf` (seconds). */
export const CLOCK_TOLERANCE_SECONDS = 30
const ASYMMETRIC_ALGS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA']
// Verified tokens are remembered so a busy caller does not pay a signature check per request.
const CACHE_LIMIT = 10_000

/** The key set could not be had (timeout, not 200, not a key set, network): our outage, not a bad token. */
function keySetUnavailable (cause: unknown): AuthUnavailableError {
  return new AuthUnavailableError('the key set that tokens are checked against (AUTH_JWKS_URL) could not be fetched: try again shortly', 5, { cause })
}

export class InboundAuth {
  private readonly verified = new Map<string, { principal: Principal, exp: number }>()

  private constructor (
    private readonly source: KeySource,
    private readonly verifyOptions: JWTVerifyOptions,
    readonly hs256Secret: Uint8Array | undefined,
  ) {}

  static async create (options: InboundAuthOptions): Promise<InboundAuth> {
    const verifyOptions: JWTVerifyOptions = { requiredClaims: ['exp'], clockTolerance: CLOCK_TOLERANCE_SECONDS }
    if (options.issuer) verifyOptions.issuer = options.issuer
    if (options.audience) verifyOptions.audience = options.audience
    if (options.jwksUrl) {
      const getKey = createRemoteJWKSet(new URL(options.jwksUrl), {
        timeoutDuration: options.jwksTimeoutMs,
        cooldownDuration: options.jwksCooldownMs,
      })
      return new InboundAuth({ kind: 'jwks', getKey }, { ...verifyOptions, algorithms: ASYMMETRIC_ALGS }, undefined)
    }
    if (options.publicKey) {
      const pem = options.publicKey.replace(/\\n/g, '\n')
      const alg = await detectAlgorithm(pem)
      return new InboundAuth({ kind: 'key', key: await importSPKI(pem, alg), algorithms: [alg] }, verifyOptions, undefined)
    }
    const secret = new TextEncoder().encode(options.hs256Secret ?? randomBytes(32).toString('base64url'))
    return new InboundAuth({ kind: 'key', key: secret, algorithms: ['HS256'] }, verifyOptions, secret)
  }

  /** The principal of a token verified before and not yet expired, without a signature check; else undefined. */
  remembered (authorization: string | undefined, nowMs = Date.now()): Principal | undefined {
    const token = authorization === undefined ? undefined : tokenOf(authorization)
    const cached = token === undefined ? undefined : this.verified.get(token)
    return cached && cached.exp * 1000 > nowMs ? cached.principal : undefined
  }

  /** Checks "Bearer <jwt>"; throws UnauthorizedError, or AuthUnavailableError when the key set cannot be fetched. */
  async authenticate (authorization: string | undefined, nowMs = Date.now()): Promise<Principal> {
    if (!authorization) throw new UnauthorizedError('an "Authorization: Bearer <token>" header is required')
    const token = tokenOf(authorization)
    if (token === undefined) throw new UnauthorizedError('the Authorization header must be "Bearer <JWT>"')
    const cached = this.verified.get(token)
    if (cached && cached.exp * 1000 > nowMs) return cached.principal

    const payload = await this.verify(token)
    // The subject names the caller: its Idempotency-Keys, rate limit and notifications are its own. Tokens
    // without one would all share them.
    if (payload.sub === undefined || payload.sub === '') {
      throw new UnauthorizedError('the token has no "sub" claim: it names the caller, whose Idempotency-Keys and rate limit are its own')
    }
    if (typeof payload.sub !== 'string') throw new UnauthorizedError(`the token's "sub" claim is a ${Array.isArray(payload.sub) ? 'list' : typeof payload.sub}, not a string`)
    // A lone surrogate is written as U+FFFD in UTF-8, where the caller's keys are scoped: two such subjects would share them.
    if (hasLoneSurrogate(payload.sub)) throw new UnauthorizedError('the token\'s "sub" claim is not well-formed Unicode (it holds a lone surrogate)')
    // The caller's keys are scoped as `<sub>\0<key>` (and `<sub>\0campaign\0<key>`): a NUL in a subject would reach
    // another caller's keys. No control character names a caller.
    if (CONTROL.test(payload.sub)) throw new UnauthorizedError('the token\'s "sub" claim holds a control character')
    const principal: Principal = {
      subject: payload.sub,
      scopes: new Set(typeof payload.scope === 'string' ? payload.scope.split(' ').filter(Boolean) : []),
    }
    if (this.verified.size >= CACHE_LIMIT) this.verified.clear()
    this.verified.set(token, { principal, exp: payload.exp! })
    return principal
  }

  private async verify (token: string): Promise<JWTPayload> {
    try {
      const { payload } = this.source.kind === 'jwks'
        ? await jwtVerify(token, this.source.getKey, this.verifyOptions)
        : await jwtVerify(token, this.source.key, { ...this.verifyOptions, algorithms: this.source.algorithms })
      return payload
    } catch (err) {
      // The key set could not be had (timeout, not 200, not a key set): our outage, not a bad token.
      if (err instanceof joseErrors.JWKSTimeout || err instanceof joseErrors.JOSEError && (err.code === 'ERR_JWKS_INVALID' || (this.source.kind === 'jwks' && err.code === 'ERR_JOSE_GENERIC'))) {
        throw keySetUnavailable(err)
      }
      if (err instanceof joseErrors.JOSEError) throw new UnauthorizedError(`the token was refused: ${describe(err)}`, { cause: err })
      // A fetch failure of the key set is a plain TypeError from undici.
      if (this.source.kind === 'jwks') throw keySetUnavailable(err)
      throw new UnauthorizedError('the token was refused', { cause: err })
    }
  }

  /** Signs a token with the HS256 secret (development and tests only). */
  async issue (claims: { sub: string, scope: string, ttlSeconds: number, issuer?: string | undefined, audience?: string | undefined }): Promise<string> {
    if (!this.hs256Secret) throw new Error('tokens can only be issued with an HS256 secret')
    const jwt = new SignJWT({ scope: claims.scope })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject(claims.sub)
      .setIssuedAt()
      .setExpirationTime(`${claims.ttlSeconds}s`)
    if (claims.issuer) jwt.setIssuer(claims.issuer)
    if (claims.audience) jwt.setAudience(claims.audience)
    return jwt.sign(this.hs256Secret)
  }
}

export const ALL_SCOPES = SCOPES.join(' ')

const BEARER = /^Bearer\s+([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)\s*$/i

function tokenOf (authorization: string): string | undefined {
  return BEARER.exec(authorization)?.[1]
}

function describe (err: joseErrors.JOSEError): string {
  switch (err.code) {
    case 'ERR_JWT_EXPIRED': return 'it has expired'
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED': return `claim check failed (${(err as joseErrors.JWTClaimValidationFailed).claim}: ${err.message})`
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED': return 'bad signature'
    case 'ERR_JOSE_ALG_NOT_ALLOWED': return 'algorithm not allowed'
    case 'ERR_JWKS_NO_MATCHING_KEY': return 'no key matches its "kid"'
    default: return err.message
  }
}

async function detectAlgorithm (pem: string): Promise<string> {
  const { createPublicKey } = await import('node:crypto')
  const key = createPublicKey(pem)
  switch (key.asymmetricKeyType) {
    case 'rsa': return 'RS256'
    case 'ec': return ({ prime256v1: 'ES256', secp384r1: 'ES384', secp521r1: 'ES512' } as Record<string, string>)[key.asymmetricKeyDetails?.namedCurve ?? ''] ?? 'ES256'
    case 'ed25519': return 'EdDSA'
    default: throw new Error(`AUTH_PUBLIC_KEY: unsupported key type ${key.asymmetricKeyType}`)
  }
}
