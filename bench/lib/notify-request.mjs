// What the notify benchmarks send and the server they send it to: one request, its token, the server's environment.
import { SignJWT } from 'jose'

const SECRET = 'bench-secret-0123456789-0123456789-abcdef'

/**
 * A real UK mobile number (libphonenumber-js checks it, as it does a customer's) that the sandbox's hash reports
 * connected for DATA and SMS. The +990 test range would skip that check: 7 to 16 µs of CPU for a number not seen
 * lately (bench/phone).
 */
export const NOTIFY_NUMBER = '+447911123402'

/** The cache-hit request: that number, push content and a token. */
export const NOTIFY_BODY = JSON.stringify({
  to: NOTIFY_NUMBER,
  message: { sms: { text: 'Your code is 123456' }, push: { title: 'Sign-in code', body: 'Your code is 123456' } },
  push_token: 'bench-push-token',
  client_ref: 'bench',
})

/** reachroute as the benchmarks run it: production mode, no workers, Redis under the run's own prefix. */
export function serverEnv ({ port, redisUrl, prefix }) {
  return {
    PORT: String(port), HOST: '127.0.0.1', NODE_ENV: 'production', LOG_LEVEL: 'warn',
    REDIS_URL: redisUrl, REDIS_KEY_PREFIX: prefix, WORKERS: 'off', AUTH_HS256_SECRET: SECRET,
    // One caller sends everything: the limiter still counts each request but never refuses.
    RATE_LIMIT_NOTIFICATIONS_PER_MINUTE: '1000000000',
  }
}

/** A token the server above accepts for notifying and looking up. */
export function notifyToken () {
  return new SignJWT({ scope: 'notifications:write reachability:read' })
    .setProtectedHeader({ alg: 'HS256' }).setSubject('bench').setIssuedAt().setExpirationTime('1h').sign(new TextEncoder().encode(SECRET))
}

/** A token for GET /metrics (production mode serves it to the ops scope only). */
export function opsToken () {
  return new SignJWT({ scope: 'ops' })
    .setProtectedHeader({ alg: 'HS256' }).setSubject('bench-ops').setIssuedAt().setExpirationTime('1h').sign(new TextEncoder().encode(SECRET))
}

/**
 * The server's young-generation GCs so far (scavenges), from prom-client's nodejs_gc_duration_seconds:
 * how many, and their total pause in seconds. Two readings around a run give its count and mean pause.
 */
export async function minorGcs (baseUrl, token) {
  const res = await fetch(`${baseUrl}/metrics`, { headers: { authorization: `Bearer ${token}` } })
  if (!res.ok) throw new Error(`GET /metrics answered ${res.status}`)
  const text = await res.text()
  const read = name => {
    const value = text.match(new RegExp(`^nodejs_gc_duration_seconds_${name}\\{kind="minor"\\} (\\S+)$`, 'm'))?.[1]
    if (value === undefined) throw new Error(`GET /metrics has no nodejs_gc_duration_seconds_${name}{kind="minor"}`)
    return Number(value)
  }
  return { count: read('count'), seconds: read('sum') }
}

/** Looks the number up once, so every request of the run is a cache hit. */
export async function warmCache (baseUrl, token) {
  const res = await fetch(`${baseUrl}/v1/reachability/${encodeURIComponent(NOTIFY_NUMBER)}`, { headers: { authorization: `Bearer ${token}` } })
  if (!res.ok) throw new Error(`warm-up failed: ${res.status}`)
}
