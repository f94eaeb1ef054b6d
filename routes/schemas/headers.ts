/**
 * Answer headers as the spec documents them: the `headers` of a response, as @fastify/swagger takes them (each a JSON
 * Schema with its description). plugins/swagger.ts gives each answer those it carries whatever the route (X-Request-Id,
 * WWW-Authenticate, Retry-After, RateLimit-*, Idempotent-Replayed); a route declares its own in its response. The spec
 * holds each once, under its `component` name in components.headers, and every answer that carries it refers to it.
 */
export interface HeaderDoc {
  type: 'string' | 'integer'
  description: string
  examples?: unknown[]
}

export interface NamedHeader {
  /** The header's name in the answer. */
  name: string
  /** Its entry in the spec's components.headers. */
  component: string
  doc: HeaderDoc
}

/** A response's `headers`, as @fastify/swagger reads them. */
export type HeaderDocs = Record<string, HeaderDoc>

export const headerDocs = (...headers: NamedHeader[]): HeaderDocs => Object.fromEntries(headers.map(h => [h.name, h.doc]))

export const REQUEST_ID: NamedHeader = {
  name: 'X-Request-Id',
  component: 'RequestId',
  doc: {
    type: 'string',
    description: 'The id of this request, also in every log line about it and in a problem\'s request_id: the request\'s own X-Request-Id when it ' +
      'was given once and is 1 to 128 characters, each a letter (A-Z, a-z), a digit or one of _ . : @ / + = -; otherwise a new UUID',
    examples: ['0b9f6f4e-7c61-4c1d-9f55-3a2e8d1c7b42'],
  },
}

export const WWW_AUTHENTICATE: NamedHeader = {
  name: 'WWW-Authenticate',
  component: 'WwwAuthenticate',
  doc: { type: 'string', description: 'How to authenticate: a bearer token', examples: ['Bearer realm="reachroute"'] },
}

export const RETRY_AFTER_RATE_LIMITED: NamedHeader = {
  name: 'Retry-After',
  component: 'RetryAfterRateLimited',
  doc: { type: 'integer', description: 'Seconds until the caller\'s count for the current minute starts again', examples: [42] },
}

export const RETRY_AFTER_UNAVAILABLE: NamedHeader = {
  name: 'Retry-After',
  component: 'RetryAfterUnavailable',
  doc: {
    type: 'integer',
    description: 'Seconds to wait before sending again: 2 when the store did not answer, 1 while the instance shuts down, ' +
      '5 (or the upstream\'s own Retry-After) when the reachability upstream or the auth key set did not answer',
    examples: [2],
  },
}

export const RETRY_AFTER_IN_FLIGHT: NamedHeader = {
  name: 'Retry-After',
  component: 'RetryAfterInFlight',
  doc: {
    type: 'integer',
    description: 'Seconds to wait before sending again: 1 for a notification (an accept takes milliseconds, and the retry then gets the first ' +
      'answer replayed; a claim whose request died lapses after 30 s); for a campaign, what is left of the claim its first request holds ' +
      'while its recipients are read in',
    examples: [1],
  },
}

export const RATE_LIMIT: NamedHeader[] = [
  { name: 'RateLimit-Limit', component: 'RateLimitLimit', doc: { type: 'integer', description: 'Requests a caller may make in a minute on this route\'s group (RATE_LIMIT_*_PER_MINUTE)', examples: [600] } },
  { name: 'RateLimit-Remaining', component: 'RateLimitRemaining', doc: { type: 'integer', description: 'Requests left to the caller in the current minute', examples: [599] } },
  { name: 'RateLimit-Reset', component: 'RateLimitReset', doc: { type: 'integer', description: 'Seconds until the current minute\'s count starts again', examples: [42] } },
]

export const IDEMPOTENT_REPLAYED: NamedHeader = {
  name: 'Idempotent-Replayed',
  component: 'IdempotentReplayed',
  doc: {
    type: 'string',
    description: '"true" when this is the stored answer to an earlier request with the same Idempotency-Key and body (nothing was done again); absent otherwise',
    examples: ['true'],
  },
}

export const NEXT_CURSOR: NamedHeader = {
  name: 'X-Next-Cursor',
  component: 'NextCursor',
  doc: {
    type: 'string',
    description: 'With a CSV answer (Accept: text/csv), the next_cursor of this page, to give as cursor for the next one; absent on the last page',
    examples: ['WyJ2MiIsMTc5NTY3MzcwMDAwMCwxNzk1NjczNjAyMzAzLCIrNDQ3OTExMTAwMDAwIl0'],
  },
}

export const SHARED_HEADERS: readonly NamedHeader[] = [
  REQUEST_ID, WWW_AUTHENTICATE, RETRY_AFTER_RATE_LIMITED, RETRY_AFTER_UNAVAILABLE, RETRY_AFTER_IN_FLIGHT, ...RATE_LIMIT, IDEMPOTENT_REPLAYED, NEXT_CURSOR,
]
