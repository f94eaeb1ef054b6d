import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import fp from 'fastify-plugin'
import { jsonSchemaTransform, jsonSchemaTransformObject } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { problemResponse, problems } from '../routes/schemas/problem.js'
import {
  type HeaderDocs, headerDocs, IDEMPOTENT_REPLAYED, RATE_LIMIT, REQUEST_ID, RETRY_AFTER_IN_FLIGHT, RETRY_AFTER_RATE_LIMITED, RETRY_AFTER_UNAVAILABLE,
  SHARED_HEADERS, WWW_AUTHENTICATE,
} from '../routes/schemas/headers.js'
import { inUnits } from './errors.js'
import { bodyKind } from './no-body.js'

// The version of the HTTP contract (the /v1 of the paths), not of the package.
const API_VERSION = '1.0.0'

export default fp(async (app) => {
  // Fastify's own default (1 MiB) where the app sets none.
  const bodyLimit = app.initialConfig.bodyLimit ?? 1024 * 1024
  // A route with a transform of its own (POST /v1/campaigns: its NDJSON body) skips the one below: what every route's
  // spec gets is put around its transform. Before @fastify/swagger's own onRoute hook, which keeps the route's config.
  app.addHook('onRoute', route => {
    const own = route.config?.swaggerTransform
    if (typeof own !== 'function') return
    route.config = {
      ...route.config,
      swaggerTransform: input => {
        const { documented, headers } = documentRoute(input as TransformInput, bodyLimit)
        return withHeaders(own(documented) as TransformOutput, headers)
      },
    }
  })
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'reachroute',
        version: API_VERSION,
        description: 'Delivers a customer notification over the channel that will actually reach the phone. ' +
          'Asks whether a phone is on the mobile network right now, and for DATA, SMS, both or nothing, then routes accordingly. ' +
          'Every /v1 route and the Vonage-compatible ones need `Authorization: Bearer <JWT>` with the scope named on the route, except the ' +
          'two provider webhooks, which their senders authenticate: `/v1/webhooks/vonage/messages` (Vonage\'s signed JWT) and ' +
          '`/v1/webhooks/camara` (the CAMARA sink token). Errors are RFC 9457 problem documents. ' +
          'HEAD is answered only where this document lists it (health, readiness, metrics): on any other GET path it would do ' +
          'the GET\'s work for nothing, and is a 405 problem whose Allow header names the methods the path takes. ' +
          'Text fields (message texts, push title, body and data, push token, client_ref, metadata, a campaign\'s name and vars, ' +
          'map keys included) are UTF-8 text: a lone UTF-16 surrogate (half an emoji, `\\ud83d`) or a control character other than ' +
          'tab, line feed and carriage return is a 400 naming it and where; a body whose bytes are not UTF-8, or a charset other ' +
          'than UTF-8, is refused (400, 415). Every answer but the docs\' carries `Cache-Control: no-store`, and every one the security ' +
          'headers (Content-Security-Policy, X-Content-Type-Options: nosniff, X-Frame-Options: DENY, Referrer-Policy: no-referrer; ' +
          'Strict-Transport-Security with HSTS_MAX_AGE_SECONDS); the reports, which answer JSON or CSV by Accept, carry `Vary: Accept`.',
      },
      tags: [
        { name: 'reachability', description: 'Is a phone on the network, and for what (scope reachability:read)' },
        { name: 'vonage-compatible', description: 'Vonage Identity Insights request and answer shapes, served through reachroute' },
        { name: 'notifications', description: 'Notify a customer over the channel that reaches the phone (scopes notifications:write, notifications:read)' },
        { name: 'campaigns', description: 'One message to many recipients, each routed by reachability, on lanes of their own (scopes campaigns:write, campaigns:read)' },
        { name: 'reports', description: 'Contact hygiene and IoT fleet reports, fleet scans (scope reports:read)' },
        { name: 'queue', description: 'The fallback queue, outboxes and dead letters (scope ops)' },
        { name: 'webhooks', description: 'Status webhooks from providers, verified by their signatures' },
        { name: 'ops', description: 'Health and readiness' },
      ],
      components: {
        securitySchemes: {
          bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'A JWT whose "scope" claim lists the scopes, space separated' },
          sinkToken: { type: 'http', scheme: 'bearer', description: 'The CAMARA sink access token (CAMARA_SINK_TOKEN) given to the operator at subscription' },
          vonageSignature: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'Vonage\'s HS256 webhook signature under VONAGE_SIGNATURE_SECRET, with payload_hash = SHA-256 of the body' },
        },
      },
    },
    transform: input => {
      const { documented, headers } = documentRoute(input, bodyLimit)
      return withHeaders(jsonSchemaTransform(documented), headers)
    },
    transformObject: input => shareHeaders(markOptionalBodies(jsonSchemaTransformObject(input))),
  })
  if (!app.config.docsEnabled) return
  if (app.config.docsAuth === 'ops') {
    // Every docs route needs the ops scope, Swagger UI's own files included: nothing of the docs is served without it.
    const guard = app.requireScope('ops')
    app.addHook('onRoute', route => {
      if (isDocsRoute(route.url)) route.onRequest = [...[route.onRequest ?? []].flat(), guard]
    })
  }
  // No validator badge: it would send the spec's URL to validator.swagger.io.
  await app.register(swaggerUi, { routePrefix: '/docs', uiConfig: { persistAuthorization: true, tryItOutEnabled: false, validatorUrl: null } })
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger())
}, { name: 'swagger', fastify: '5.x', dependencies: ['config', 'auth', 'head-requests'] })

/** Swagger UI's routes (its page, files and spec) and /openapi.json. */
export function isDocsRoute (url: string): boolean {
  return url === '/docs' || url.startsWith('/docs/') || url === '/openapi.json'
}

type TransformInput = Parameters<typeof jsonSchemaTransform>[0]

/** Operations whose body may be left out: @fastify/swagger marks every requestBody required. */
const optionalBodies = new Set<string>()

/**
 * What every route's own schema would repeat: on a route with path parameters, a 400 for a path that does not decode
 * and a 414 for a parameter longer than the router takes; on the methods whose body Fastify reads (a body sent to a
 * route that takes none included), a 413 naming the route's limit and a 415; on a route that takes no body, its 400;
 * on a route that needs a bearer token, the 503 of a key set that could not be fetched. Where the route documents a
 * 400 or a 503 of its own, these are added to its description.
 */
function documentRoute (input: TransformInput, appBodyLimit: number): { documented: TransformInput, headers: Record<string, HeaderDocs> } {
  const schema = input.schema as {
    operationId?: string, body?: unknown, params?: unknown, headers?: unknown, security?: Record<string, unknown>[], response?: Record<string, unknown>
  } | undefined
  if (!schema?.response) return { documented: input, headers: {} }
  const body = bodyKind(input.route)
  if (schema.operationId && body === 'optional') optionalBodies.add(schema.operationId)
  // A token that must be given (not one that may: an empty alternative).
  const bearer = schema.security?.some(s => 'bearerAuth' in s) === true && !schema.security.some(s => Object.keys(s).length === 0)
  const limit = input.route.bodyLimit ?? appBodyLimit
  const added: Record<string, ProblemAnswer> = {
    ...(schema.params ? { 400: BAD_PATH, 414: PARAM_TOO_LONG } : {}),
    ...(body ? { 413: problemResponse(`The body is larger than this operation's limit of ${inUnits(limit)}`), 415: UNSUPPORTED_MEDIA_TYPE } : {}),
    // Every route that takes no body answers one sent anyway alike (plugins/no-body.ts).
    ...(body === 'none' ? { 400: schema.params ? also(BODY_SENT, BAD_PATH) : BODY_SENT } : {}),
    ...(bearer ? { 503: AUTH_UNAVAILABLE } : {}),
  }
  const response: Record<string, unknown> = { ...added, ...schema.response }
  // The general 413 a route picked says less than the one naming its limit.
  if (added[413] && response[413] === problems[413]) response[413] = added[413]
  for (const status of ['400', '503']) {
    const own = schema.response[status]
    if (added[status] && own && own !== added[status] && typeof own === 'object' && 'description' in own) response[status] = also(own as ProblemAnswer, added[status])
  }
  return {
    documented: { ...input, schema: (input.route.method === 'HEAD' ? headOperation(schema, response) : { ...schema, response }) as typeof input.schema },
    headers: answerHeaders(schema, response),
  }
}

/** Answers given before the rate limiter counts the request (auth, the router): they carry no RateLimit-* headers. */
const BEFORE_RATE_LIMIT = new Set(['401', '403', '414'])

/**
 * The headers each answer of an operation carries, by status: X-Request-Id on every one; WWW-Authenticate on a 401;
 * Retry-After on a 429 and a 503, and on the 409 of an operation taking an Idempotency-Key (the key in flight), whose
 * success may carry Idempotent-Replayed; RateLimit-* on the answers of a rate-limited operation (its 429 is
 * documented: plugins/rate-limit.ts) that pass the limiter; and those the route declares in its own answer (`headers`).
 */
function answerHeaders (schema: { headers?: unknown }, response: Record<string, unknown>): Record<string, HeaderDocs> {
  const limited = '429' in response
  const idempotent = schema.headers instanceof z.ZodObject && 'idempotency-key' in schema.headers.shape
  return Object.fromEntries(Object.entries(response).map(([status, answer]) => [status, {
    ...headerDocs(
      REQUEST_ID,
      ...(status === '401' ? [WWW_AUTHENTICATE] : []),
      ...(status === '429' ? [RETRY_AFTER_RATE_LIMITED] : status === '503' ? [RETRY_AFTER_UNAVAILABLE] : status === '409' && idempotent ? [RETRY_AFTER_IN_FLIGHT] : []),
      ...(limited && !BEFORE_RATE_LIMIT.has(status) ? RATE_LIMIT : []),
      ...(idempotent && status.startsWith('2') ? [IDEMPOTENT_REPLAYED] : []),
    ),
    ...(answer instanceof z.ZodType ? {} : (answer as { headers?: HeaderDocs }).headers),
  }]))
}

type TransformOutput = ReturnType<typeof jsonSchemaTransform>

/**
 * Puts each answer's headers on the answer fastify-type-provider-zod made (it keeps a response's description and
 * content only), where @fastify/swagger documents them (a response's `headers`).
 */
function withHeaders (output: TransformOutput, headers: Record<string, HeaderDocs>): TransformOutput {
  const response = (output.schema as { response?: Record<string, Record<string, unknown>> } | undefined)?.response ?? {}
  for (const [status, answer] of Object.entries(response)) {
    if (headers[status]) answer.headers = headers[status]
  }
  return output
}

/**
 * The HEAD twin of a GET (plugins/head-requests.ts): the GET's answers, each without its body. @fastify/swagger named
 * it `<operationId>-head`; camelCase like every other operationId.
 */
function headOperation (schema: { operationId?: string, summary?: string, description?: string }, response: Record<string, unknown>) {
  return {
    ...schema,
    operationId: schema.operationId?.replace(/-head$/, 'Head'),
    summary: `${schema.summary} (HEAD: headers only)`,
    description: `The status and headers GET answers, without the body. ${schema.description}`,
    response: Object.fromEntries(Object.entries(response).map(([status, answer]) =>
      [status, z.null().meta({ description: answer instanceof z.ZodType ? z.globalRegistry.get(answer)?.description : (answer as { description?: string }).description })])),
  }
}

const BODY_SENT = problemResponse('A body was sent with Content-Type: application/json (valid JSON or not): this operation takes no body. ' +
  'An empty one, or {}, is none, with that Content-Type too')
const PARAM_TOO_LONG = problemResponse('A path parameter is longer than the router takes (100 characters)')
const BAD_PATH = problemResponse('The path does not decode: a percent-encoding that is not one (%ZZ), or not UTF-8')
const AUTH_UNAVAILABLE = problemResponse('The key set bearer tokens are checked against (AUTH_JWKS_URL) could not be fetched, so the token ' +
  'could not be checked (auth-unavailable): our outage, not a bad token; retry after Retry-After seconds')

type ProblemAnswer = ReturnType<typeof problemResponse>

/** An answer that may also be given for another reason: both descriptions. */
function also (answer: ProblemAnswer, other: ProblemAnswer): ProblemAnswer {
  return { ...answer, description: `${answer.description.replace(/\.$/, '')}. Or: ${other.description}` }
}
const UNSUPPORTED_MEDIA_TYPE = {
  ...problemResponse('A body was sent with a Content-Type this operation does not take, a charset other than UTF-8, or a Content-Encoding (bodies are taken uncompressed)'),
  headers: {
    'Accept-Encoding': { type: 'string', description: 'On the answer to a compressed body (Content-Encoding): identity, the only encoding taken', examples: ['identity'] },
  } satisfies HeaderDocs,
}

function markOptionalBodies<T> (document: T): T {
  const paths = (document as { paths?: Record<string, Record<string, { operationId?: string, requestBody?: { required?: boolean } }>> }).paths ?? {}
  for (const operations of Object.values(paths)) {
    for (const operation of Object.values(operations)) {
      if (operation.requestBody && operation.operationId && optionalBodies.has(operation.operationId)) operation.requestBody.required = false
    }
  }
  return document
}

/**
 * Each header many answers carry is written once, in components.headers, and referred to from each answer: written out
 * in every answer, X-Request-Id and the RateLimit-* headers alone would double the spec's size.
 */
function shareHeaders<T> (document: T): T {
  type Header = { description?: string, schema?: unknown } | { $ref: string }
  const spec = document as { components?: { headers?: Record<string, Header> }, paths?: Record<string, Record<string, { responses?: Record<string, { headers?: Record<string, Header> }> }>> }
  const shared: Record<string, Header> = {}
  for (const operations of Object.values(spec.paths ?? {})) {
    for (const operation of Object.values(operations)) {
      for (const answer of Object.values(operation.responses ?? {})) {
        for (const [name, header] of Object.entries(answer.headers ?? {})) {
          const known = SHARED_HEADERS.find(h => h.name === name && 'description' in header && h.doc.description === header.description)
          if (!known) continue
          shared[known.component] ??= header
          answer.headers![name] = { $ref: `#/components/headers/${known.component}` }
        }
      }
    }
  }
  spec.components = { ...spec.components, headers: { ...spec.components?.headers, ...shared } }
  return document
}
