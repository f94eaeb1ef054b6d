import { createHash, createHmac, timingSafeEqual } from 'node:crypto'
import { jwtVerify } from 'jose'

// Signatures on bodies we send (push webhook, status callbacks) and on Vonage's status webhooks.

const PREFIX = 'sha256='

/** `sha256=<hex HMAC-SHA256 of the exact body bytes>`: sign the bytes that go on the wire, not a re-serialisation. */
export function hmacSignature (body: string | Buffer, secret: string): string {
  return PREFIX + createHmac('sha256', secret).update(body).digest('hex')
}

/** True when `signature` is `sha256=<hex>` of the body under the secret; compared in constant time. */
export function verifyHmacSignature (body: string | Buffer, secret: string, signature: string | undefined): boolean {
  if (!signature) return false
  const expected = Buffer.from(hmacSignature(body, secret))
  const given = Buffer.from(signature.trim().toLowerCase())
  return given.length === expected.length && timingSafeEqual(given, expected)
}

/**
 * How long a signed Vonage webhook is taken after its `iat`: Vonage sends one again for up to 24 h until it is
 * answered, so a token of a day ago may be a retry; an older one (or one without `iat`) is a replay.
 */
export const VONAGE_WEBHOOK_MAX_AGE_SECONDS = 24 * 3600 + 300

/**
 * Vonage signs its webhooks with an HS256 JWT in `Authorization: Bearer ...` under the account's
 * signature secret; its `payload_hash` claim is the hex SHA-256 of the body. Both are required: a token
 * without the hash would vouch for any body. Its `iat` is required too, at most VONAGE_WEBHOOK_MAX_AGE_SECONDS
 * old and not in the future (30 s of clock skew allowed).
 * Never throws: anything that does not check out is false.
 */
export async function verifyVonageSignature (
  authorizationHeader: string | undefined,
  rawBody: string | Buffer,
  secret: string,
): Promise<boolean> {
  const match = /^Bearer\s+(\S+)$/i.exec(authorizationHeader?.trim() ?? '')
  if (!match?.[1] || !secret) return false
  try {
    const { payload } = await jwtVerify(match[1], new TextEncoder().encode(secret), {
      algorithms: ['HS256'], requiredClaims: ['iat'], maxTokenAge: VONAGE_WEBHOOK_MAX_AGE_SECONDS, clockTolerance: 30,
    })
    if (typeof payload.payload_hash !== 'string') return false
    const hash = createHash('sha256').update(rawBody).digest('hex')
    return payload.payload_hash.toLowerCase() === hash
  } catch {
    return false
  }
}
