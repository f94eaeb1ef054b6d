import { STATUS_CODES } from 'node:http'
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { AppError, StoreUnavailableError } from '../src/domain/errors.js'

// The one place where failures become RFC 9457 problem documents.

export const PROBLEM_TYPE_BASE = 'https://reachroute.dev/problems/'

export interface Problem {
  type: string
  title: string
  status: number
  detail?: string
  instance?: string
  [extra: string]: unknown
}

export const PROBLEM_CONTENT_TYPE = 'application/problem+json; charset=utf-8'

export function sendProblem (reply: FastifyReply, problem: Problem, headers: Record<string, string> = {}): FastifyReply {
  return reply.code(problem.status).headers(headers).type('application/problem+json').send(problem)
}

/** The longest URL, or framework message quoting one, echoed into a problem: a URL may be many KB long. */
const MAX_ECHO = 200

function clip (text: string): string {
  return text.length <= MAX_ECHO ? text : text.slice(0, MAX_ECHO) + '…'
}

function problem (request: FastifyRequest, status: number, slug: string, title: string, detail: string, extras: Record<string, unknown> = {}): Problem {
  return { type: PROBLEM_TYPE_BASE + slug, title, status, detail, instance: clip(request.url), request_id: request.id, ...extras }
}

/**
 * A problem for an answer written outside Fastify (the METRICS_PORT listener, a plain node:http server): no Fastify
 * request exists, so it names the request by its URL alone. `detail` may quote the path: it is clipped here.
 */
export function bareProblem (status: number, slug: string, title: string, detail: (path: string) => string, url = '/'): Problem {
  return { type: PROBLEM_TYPE_BASE + slug, title, status, detail: detail(clip(url.split('?')[0]!)), instance: clip(url) }
}

const CLIENT_ERRORS: Record<string, [number, string, string]> = {
  FST_ERR_CTP_INVALID_JSON_BODY: [400, 'malformed-json', 'Body is not valid JSON'],
  FST_ERR_CTP_EMPTY_JSON_BODY: [400, 'malformed-json', 'Body is empty'],
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: [400, 'bad-request', 'Content-Length does not match the body'],
  FST_ERR_BAD_URL: [400, 'bad-request', 'URL is not valid'],
  FST_ERR_MAX_PARAM_LENGTH: [414, 'uri-too-long', 'A path parameter is too long'],
}

export function toProblem (err: FastifyError | Error, request: FastifyRequest): { problem: Problem, headers: Record<string, string> } {
  if (err instanceof AppError) {
    return { problem: problem(request, err.status, err.slug, err.title, err.message, err.extras), headers: err.headers }
  }
  const fe = err as FastifyError
  if (fe.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
    const given = request.headers['content-type']
    return {
      problem: problem(request, 415, 'unsupported-media-type', 'Unsupported media type',
        `${given ? `Content-Type "${clip(given)}"` : 'a body without a Content-Type'} is not one this operation takes (its requestBody in /openapi.json lists them)`),
      headers: {},
    }
  }
  if (fe.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
    const limit = request.routeOptions.bodyLimit
    return { problem: problem(request, 413, 'payload-too-large', 'Body is too large', `the body is over this operation's limit of ${limit} bytes (${inUnits(limit)})`), headers: {} }
  }
  const known = fe.code ? CLIENT_ERRORS[fe.code] : undefined
  // Fastify's messages for a bad URL or a too-long parameter quote the whole URL.
  if (known) return { problem: problem(request, known[0], known[1], known[2], clip(fe.message)), headers: {} }
  // @fastify/rate-limit has already set Retry-After and the RateLimit-* headers on the reply.
  if (fe.statusCode === 429) return { problem: problem(request, 429, 'rate-limited', 'Too many requests', fe.message), headers: {} }
  if (fe.statusCode && fe.statusCode >= 400 && fe.statusCode < 500) {
    return { problem: problem(request, fe.statusCode, 'bad-request', 'Bad request', clip(fe.message)), headers: {} }
  }
  return { problem: problem(request, 500, 'internal-error', 'Internal error', 'something went wrong on our side; the request id identifies it in our logs'), headers: {} }
}

/** A size in bytes as the README gives the limits: 1 KiB, 64 KiB, 1 MiB. */
export function inUnits (bytes: number): string {
  if (bytes >= 1024 * 1024 && bytes % (1024 * 1024) === 0) return `${bytes / (1024 * 1024)} MiB`
  if (bytes >= 1024 && bytes % 1024 === 0) return `${bytes / 1024} KiB`
  return `${bytes} bytes`
}

/**
 * The whole HTTP/1.1 answer to a request that never got past the HTTP parser (the server's 'clientError'): no
 * request exists yet, so the document names none, and the connection is closed after it.
 */
export function clientErrorResponse (code: string | undefined, headers: Readonly<Record<string, string>> = {}): string {
  const [status, slug, title, detail]: [number, string, string, string] =
    code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'request-header-fields-too-large', 'Request headers are too large', 'the request line and headers are larger than this server accepts']
      : code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'request-timeout', 'Request timed out', 'the request was not received in time']
        : [400, 'bad-request', 'Bad request', `the request is not valid HTTP/1.1${code && /^[A-Z0-9_]{1,64}$/.test(code) ? ` (${code})` : ''}`]
  const body = JSON.stringify({ type: PROBLEM_TYPE_BASE + slug, title, status, detail } satisfies Problem)
  const head = [
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}`,
    `content-type: ${PROBLEM_CONTENT_TYPE}`,
    `content-length: ${Buffer.byteLength(body)}`,
    'connection: close',
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
  ]
  return head.join('\r\n') + '\r\n\r\n' + body
}

export default fp(async (app) => {
  app.setErrorHandler((err: FastifyError, request, reply) => {
    const { problem: p, headers } = toProblem(err, request)
    if (p.status >= 500 && !(err instanceof AppError)) request.log.error({ err }, 'unhandled error')
    else if (p.status >= 500) request.log.warn({ problem: p.type, detail: err instanceof StoreUnavailableError ? err.logDetail : p.detail }, 'service unavailable')
    return sendProblem(reply, p, headers)
  })
  app.setNotFoundHandler((request, reply) =>
    sendProblem(reply, problem(request, 404, 'not-found', 'Not found', `no route for ${request.method} ${clip(request.url.split('?')[0]!)}`)))
}, { name: 'errors', fastify: '5.x' })
