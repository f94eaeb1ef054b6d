import type { IncomingHttpHeaders } from 'node:http'
import type { z } from 'zod'
import { type HttpAnswer, HttpClient, type HttpRequest, retryAfterSeconds } from '../../http/retry.js'
import { UpstreamFailure } from './upstream.js'

// What the HTTP upstreams (vonage, camara) do alike: one keep-alive client with bounded retries, and
// every way of not getting a usable answer turned into an UpstreamFailure that names the upstream.

export interface HttpUpstreamPolicy {
  /** Budget of one attempt. */
  timeoutMs: number
  retries: number
  retryBaseMs: number
  retryMaxMs: number
  random?: () => number
}

export function upstreamHttpClient (baseUrl: string, policy: HttpUpstreamPolicy): HttpClient {
  return new HttpClient(baseUrl, {
    timeoutMs: policy.timeoutMs,
    retries: policy.retries,
    baseMs: policy.retryBaseMs,
    maxMs: policy.retryMaxMs,
    ...(policy.random ? { random: policy.random } : {}),
  })
}

/** Sends a check with its retries. No answer at all is an UpstreamFailure; the caller's own deadline passes through as it is. */
export async function sendCheck (upstream: string, http: HttpClient, request: HttpRequest, signal: AbortSignal | undefined): Promise<HttpAnswer> {
  try {
    return await http.send(request, signal)
  } catch (err) {
    if (signal?.aborted) throw err
    throw new UpstreamFailure(`${upstream}: no answer (${(err as Error).message})`, undefined, { cause: err })
  }
}

/** A 2xx body as JSON; a body that is not JSON is no answer. */
export function answerJson (upstream: string, body: string): unknown {
  try {
    return JSON.parse(body)
  } catch (err) {
    throw new UpstreamFailure(`${upstream}: the answer is not JSON`, undefined, { cause: err })
  }
}

/** An error body read with its schema, or undefined when it is not JSON of that shape. */
export function errorBody<T> (schema: z.ZodType<T>, body: string): T | undefined {
  try {
    const parsed = schema.safeParse(JSON.parse(body))
    return parsed.success ? parsed.data : undefined
  } catch {
    return undefined
  }
}

/** 429 or 5xx on the last attempt: unavailable for now, with the upstream's Retry-After when it gave one. */
export function stillFailing (upstream: string, statusCode: number, attempts: number, detail: string, headers: IncomingHttpHeaders): UpstreamFailure {
  const after = retryAfterSeconds(headers)
  // A Retry-After longer than the retry cap ends the retries early (see withRetries): said so, not "after N attempts".
  return new UpstreamFailure(`${upstream}: HTTP ${statusCode} ${after === undefined ? `after ${attempts} attempts` : `(it asks to wait ${after} s)`}: ${detail}`, after)
}

/** A 4xx that says nothing about the number (a wrong path, purpose or base URL): no answer, not retried, not counted by the breaker. */
export function refusedRequest (upstream: string, statusCode: number, detail: string): UpstreamFailure {
  return new UpstreamFailure(`${upstream}: HTTP ${statusCode}: ${detail}`, undefined, { refused: true, statusCode })
}
