import type { IncomingHttpHeaders } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { Pool } from 'undici'

// Calls to outside HTTP APIs: bounded retries on network errors, timeouts, 429 and 5xx only,
// exponential backoff with full jitter, Retry-After honoured (one longer than the cap ends the
// retries: the answer, with its Retry-After, goes to the caller), and an outer AbortSignal that
// ends everything at once.

export interface RetryPolicy {
  /** Attempts after the first one. */
  retries: number
  baseMs: number
  maxMs: number
  /** In [0, 1); injectable for tests. */
  random?: () => number
}

export interface HttpAnswer {
  statusCode: number
  headers: IncomingHttpHeaders
  body: string
}

/** One attempt took longer than its budget. */
export class AttemptTimeoutError extends Error {
  readonly code = 'ERR_ATTEMPT_TIMEOUT'
  constructor (timeoutMs: number) {
    super(`no answer within ${timeoutMs} ms`)
    this.name = 'AttemptTimeoutError'
  }
}

const TRANSIENT_ERROR_CODES = new Set([
  'ERR_ATTEMPT_TIMEOUT',
  'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_SOCKET',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
  'ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT',
  'EHOSTUNREACH', 'ENETUNREACH', 'ENETDOWN', 'ENOTFOUND', 'EAI_AGAIN',
])

export function isRetryableStatus (statusCode: number): boolean {
  return statusCode === 429 || (statusCode >= 500 && statusCode <= 599)
}

export function isTransientError (err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code
  return typeof code === 'string' && TRANSIENT_ERROR_CODES.has(code)
}

/** Retry-After as milliseconds, from delay-seconds or an HTTP date; undefined when absent or unreadable. */
export function retryAfterMs (headers: IncomingHttpHeaders, now = Date.now()): number | undefined {
  const raw = headers['retry-after']
  const value = (Array.isArray(raw) ? raw[0] : raw)?.trim()
  if (!value) return undefined
  if (/^\d+$/.test(value)) return Number(value) * 1000
  const at = Date.parse(value)
  return Number.isNaN(at) ? undefined : Math.max(0, at - now)
}

/** Retry-After rounded up to whole seconds, as callers pass it on. */
export function retryAfterSeconds (headers: IncomingHttpHeaders): number | undefined {
  const ms = retryAfterMs(headers)
  return ms === undefined ? undefined : Math.ceil(ms / 1000)
}

/** Full jitter: uniform in [0, min(max, base * 2^attempt)). */
export function backoffMs (attempt: number, policy: RetryPolicy): number {
  const ceiling = Math.min(policy.maxMs, policy.baseMs * 2 ** attempt)
  return Math.floor((policy.random ?? Math.random)() * ceiling)
}

/**
 * Asked after the backoff, before an attempt is sent again: false ends the retries there, with the last attempt's
 * answer or error. For a request that is not safe to repeat, e.g. to look whether the failed attempt took effect.
 */
export type BeforeRetry = () => Promise<boolean>

/**
 * Runs `attempt` until its answer is not worth retrying or the retries run out. Then the last
 * answer is returned (its status may still be 429 or 5xx: the caller decides what that means)
 * or the last error is thrown. Once `signal` aborts, its reason is thrown at once.
 */
export async function withRetries (
  attempt: (n: number) => Promise<HttpAnswer>,
  policy: RetryPolicy,
  signal?: AbortSignal,
  beforeRetry?: BeforeRetry,
): Promise<HttpAnswer> {
  for (let n = 0; ; n++) {
    signal?.throwIfAborted()
    let waitMs: number
    let last: { answer: HttpAnswer } | { err: unknown }
    try {
      const answer = await attempt(n)
      if (!isRetryableStatus(answer.statusCode) || n >= policy.retries) return answer
      const hinted = retryAfterMs(answer.headers)
      // Asked to wait longer than we may: not asked again sooner than it said (the caller passes the wait on).
      if (hinted !== undefined && hinted > policy.maxMs) return answer
      waitMs = hinted ?? backoffMs(n, policy)
      last = { answer }
    } catch (err) {
      signal?.throwIfAborted()
      if (!isTransientError(err) || n >= policy.retries) throw err
      waitMs = backoffMs(n, policy)
      last = { err }
    }
    await sleep(waitMs, undefined, { signal }).catch((err: unknown) => {
      signal?.throwIfAborted()
      throw err
    })
    if (beforeRetry && !(await beforeRetry())) {
      if ('answer' in last) return last.answer
      throw last.err
    }
  }
}

export interface HttpClientOptions extends RetryPolicy {
  /** The budget of one attempt, from sending to the last byte of the answer. */
  timeoutMs: number
}

export interface HttpRequest {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE'
  /** Appended to the base URL's path. */
  path: string
  headers?: Record<string, string>
  body?: string
}

/** A keep-alive connection pool to one API, sending each request with retries. */
export class HttpClient {
  private readonly pool: Pool
  private readonly prefix: string

  /** `baseUrl` may carry a path (e.g. an API root); it prefixes every request's path. */
  constructor (baseUrl: string, private readonly options: HttpClientOptions) {
    const url = new URL(baseUrl)
    this.prefix = url.pathname.replace(/\/+$/, '')
    // undici's own timers tick coarsely (about a second): they are a backstop here, the
    // attempt's exact budget is enforced with an AbortSignal.
    this.pool = new Pool(url.origin, {
      connectTimeout: options.timeoutMs,
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
    })
  }

  send (request: HttpRequest, signal?: AbortSignal, beforeRetry?: BeforeRetry): Promise<HttpAnswer> {
    return withRetries(() => this.sendOnce(request, signal), this.options, signal, beforeRetry)
  }

  close (): Promise<void> {
    return this.pool.close()
  }

  private async sendOnce (request: HttpRequest, outer: AbortSignal | undefined): Promise<HttpAnswer> {
    const { timeoutMs } = this.options
    const controller = new AbortController()
    const timer = setTimeout(() => controller.abort(new AttemptTimeoutError(timeoutMs)), timeoutMs)
    const onOuterAbort = () => controller.abort(outer?.reason)
    outer?.addEventListener('abort', onOuterAbort, { once: true })
    try {
      const answer = await this.pool.request({
        method: request.method,
        path: this.prefix + request.path,
        headers: request.headers,
        body: request.body,
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        signal: controller.signal,
      })
      return { statusCode: answer.statusCode, headers: answer.headers, body: await answer.body.text() }
    } finally {
      clearTimeout(timer)
      outer?.removeEventListener('abort', onOuterAbort)
    }
  }
}
