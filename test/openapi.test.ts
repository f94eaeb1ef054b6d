import t, { type Test } from 'tap'
import diagnostics from 'node:diagnostics_channel'
import { readFileSync } from 'node:fs'
import { isDeepStrictEqual } from 'node:util'
import type { FastifyInstance, RouteOptions } from 'fastify'
import { z } from 'zod'
import { isDocsRoute } from '../plugins/swagger.js'
import { firstDifference, generateSpec, SPEC_PATH, specConfig } from '../scripts/openapi.js'
import { buildApp } from '../src/app.js'
import { ALL_SCOPES } from '../src/auth/inbound.js'

// The committed openapi/openapi.json is what the code generates, and it documents every operation.

interface JsonSchema {
  $ref?: string
  type?: string | string[]
  const?: unknown
  enum?: unknown[]
  description?: string
  examples?: unknown
  example?: unknown
  properties?: Record<string, JsonSchema>
  items?: JsonSchema
  anyOf?: JsonSchema[]
  oneOf?: JsonSchema[]
  allOf?: JsonSchema[]
  $defs?: Record<string, JsonSchema>
}
interface Media { schema?: JsonSchema, example?: unknown, examples?: unknown }
interface Parameter extends Media { name: string, in: string, description?: string }
interface Operation {
  operationId?: string
  summary?: string
  description?: string
  security?: Record<string, string[]>[]
  parameters?: Parameter[]
  requestBody?: { required?: boolean, content: Record<string, Media> }
  responses: Record<string, { description?: string, content?: Record<string, Media>, headers?: Record<string, { description?: string, schema?: JsonSchema }> }>
}
interface Spec {
  openapi: string
  info: { description: string }
  paths: Record<string, Record<string, Operation>>
  components: { schemas: Record<string, JsonSchema>, securitySchemes: Record<string, Record<string, string>> }
}

const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'patch', 'options', 'head', 'trace']

/** Builds the app as the generator does, remembering every route's options (its zod schemas) as it is declared. */
async function buildCapturingApp (): Promise<{ app: FastifyInstance, routes: RouteOptions[] }> {
  const routes: RouteOptions[] = []
  const capture = (message: unknown) => {
    const { fastify } = message as { fastify: FastifyInstance }
    fastify.addHook('onRoute', route => { routes.push(route) })
  }
  diagnostics.subscribe('fastify.initialization', capture)
  try {
    const app = await buildApp({ config: specConfig(), logger: false })
    await app.ready()
    return { app, routes }
  } finally {
    diagnostics.unsubscribe('fastify.initialization', capture)
  }
}

function operations (spec: Spec): { where: string, path: string, op: Operation }[] {
  return Object.entries(spec.paths).flatMap(([path, item]) =>
    Object.entries(item).filter(([method]) => HTTP_METHODS.includes(method))
      .map(([method, op]) => ({ where: `${method.toUpperCase()} ${path}`, path, op })))
}

/** Follows a local $ref ("#/$defs/X" or "#/components/schemas/X"), keeping the keywords written beside it. */
function resolver (root: unknown): (schema: JsonSchema | undefined) => JsonSchema | undefined {
  return function resolve (schema: JsonSchema | undefined): JsonSchema | undefined {
    if (!schema?.$ref) return schema
    const { $ref, ...beside } = schema
    const target = $ref.replace(/^#\//, '').split('/').reduce<unknown>((node, key) => (node as Record<string, unknown> | undefined)?.[key], root)
    return { ...resolve(target as JsonSchema | undefined), ...beside }
  }
}

/** Examples as fastify-swagger may have moved them: `examples` array, `examples` object of {value}, or one `example`. */
function examplesOf (holder: Media | JsonSchema | undefined): unknown[] | undefined {
  if (!holder) return undefined
  if (Array.isArray(holder.examples)) return holder.examples
  if (holder.examples && typeof holder.examples === 'object') return Object.values(holder.examples).map(e => (e as { value: unknown }).value)
  if (holder.example !== undefined) return [holder.example]
  return undefined
}

/**
 * Reports each description or examples list the zod schema has (as zod renders it) that the spec lost.
 * `topExamples` is where the spec keeps the examples of the top level, when fastify-swagger moved them.
 */
function compareDocs (expectedRoot: JsonSchema, actualRoot: JsonSchema | undefined, spec: Spec, where: string,
  topExamples?: Media): string[] {
  const lost: string[] = []
  const resolveExpected = resolver(expectedRoot)
  const resolveActual = resolver(spec)
  const walk = (e: JsonSchema | undefined, a: JsonSchema | undefined, at: string, stack: JsonSchema[]) => {
    const expected = resolveExpected(e)
    const actual = resolveActual(a)
    if (!expected || stack.includes(expected)) return
    if (!actual) {
      lost.push(`${at}: missing from the spec`)
      return
    }
    if (expected.description !== undefined && actual.description !== expected.description) {
      lost.push(`${at}: description ${JSON.stringify(actual.description)}, zod has ${JSON.stringify(expected.description)}`)
    }
    const exampleHolder = at === where && topExamples ? topExamples : actual
    if (expected.examples !== undefined && !isDeepStrictEqual(examplesOf(exampleHolder), expected.examples)) {
      lost.push(`${at}: examples ${JSON.stringify(examplesOf(exampleHolder))}, zod has ${JSON.stringify(expected.examples)}`)
    }
    const inner = [...stack, expected]
    for (const [name, property] of Object.entries(expected.properties ?? {})) {
      walk(property, actual.properties?.[name], `${at}.${name}`, inner)
    }
    if (expected.items) walk(expected.items, actual.items, `${at}[]`, inner)
    for (const key of ['anyOf', 'oneOf', 'allOf'] as const) {
      expected[key]?.forEach((branch, i) => walk(branch, actual[key]?.[i], `${at}<${key} ${i}>`, inner))
    }
  }
  walk(expectedRoot, actualRoot, where, [])
  return lost
}

/**
 * The zod schema as JSON Schema, with every description and example its metadata has. zod itself leaves out
 * the examples of a schema that transforms when rendering its input side; they are put back, for the spec should carry them.
 */
function toJsonSchema (schema: unknown, io: 'input' | 'output'): JsonSchema | undefined {
  if (!(schema instanceof z.ZodType)) return undefined
  return z.toJSONSchema(schema, {
    io,
    unrepresentable: 'any',
    override: ({ zodSchema, jsonSchema }) => {
      const meta = z.globalRegistry.get(zodSchema)
      if (meta?.examples !== undefined && jsonSchema.examples === undefined) jsonSchema.examples = meta.examples as unknown[]
    },
  }) as JsonSchema
}

// Gaps known and reported to the routes' owners; a gap not listed here fails the test. None is open: the bodies whose
// phone number transforms keep their examples through `x-examples` (routes/schemas/docs.ts), and every webhook declares
// its security scheme. Add an entry (a prefix of the reported line) only with a comment saying why it cannot be closed.
const KNOWN_GAPS: string[] = []

/** Splits what is wrong into the known gaps (shown as a comment) and the rest, which must be empty. */
function unknownGaps (t: Test, found: string[]): string[] {
  const known = found.filter(f => KNOWN_GAPS.some(gap => f.startsWith(gap)))
  if (known.length > 0) t.comment(`known gaps, still open:\n${known.join('\n')}`)
  return found.filter(f => !known.includes(f))
}

const PARAMETER_LOCATIONS = { params: 'path', querystring: 'query', headers: 'header' } as const

/** Everything documented on one route's zod schemas that its operation in the spec does not carry. */
function lostDocs (route: RouteOptions, op: Operation, spec: Spec, where: string): string[] {
  const schema = route.schema as Record<string, unknown> | undefined
  if (!schema) return []
  const lost: string[] = []
  for (const [part, location] of Object.entries(PARAMETER_LOCATIONS)) {
    const expected = toJsonSchema(schema[part], 'input')
    for (const [name, property] of Object.entries(expected?.properties ?? {})) {
      const parameter = op.parameters?.find(p => p.in === location && p.name === name)
      if (!parameter) {
        lost.push(`${where} ${location} parameter ${name}: missing from the spec`)
        continue
      }
      const described = { ...parameter.schema, description: parameter.description ?? parameter.schema?.description }
      lost.push(...compareDocs({ ...property, $defs: expected?.$defs }, described, spec, `${where} ${location} parameter ${name}`, parameter))
    }
  }
  const body = toJsonSchema(schema.body, 'input')
  if (body) {
    const media = op.requestBody?.content['application/json']
    lost.push(...compareDocs(body, media?.schema, spec, `${where} body`, media))
  }
  for (const [status, response] of Object.entries((schema.response ?? {}) as Record<string, unknown>)) {
    const documented = op.responses[status]
    if (!documented) {
      lost.push(`${where} response ${status}: missing from the spec`)
      continue
    }
    const direct = toJsonSchema(response, 'output')
    if (direct) {
      // An answer without a body (204) keeps its schema's description as the response's.
      const media = documented.content ? Object.values(documented.content)[0] : { schema: { description: documented.description } }
      lost.push(...compareDocs(direct, media?.schema, spec, `${where} response ${status}`, media))
      continue
    }
    const { description, content = {} } = response as { description?: string, content?: Record<string, { schema: unknown }> }
    // plugins/swagger.ts adds to a route's 400 and 503 what every such route may also answer ("… Or: …"), and names
    // the route's limit in place of the general 413.
    const kept = description === undefined || documented.description === description ||
      (documented.description ?? '').startsWith(`${description.replace(/\.$/, '')}. Or: `) ||
      (status === '413' && description === 'The body is larger than this route accepts' && /^The body is larger than this operation's limit of \d+ [KM]iB$/.test(documented.description ?? ''))
    if (!kept) lost.push(`${where} response ${status}: description lost`)
    for (const [type, { schema: s }] of Object.entries(content)) {
      const expected = toJsonSchema(s, 'output')
      const media = documented.content?.[type]
      if (expected) lost.push(...compareDocs(expected, media?.schema, spec, `${where} response ${status} ${type}`, media))
    }
  }
  return lost
}

const PRIMITIVE_TYPES = ['string', 'number', 'integer', 'boolean']

/**
 * Every field the spec shows, with what it lacks: each property of a request or response schema needs a description,
 * and each one holding a value (a primitive, or an array of them) an example, unless it can only have one value.
 * A field of a component schema is named after the component (reported once, however many operations use it).
 */
function undocumentedFields (spec: Spec, schema: JsonSchema | undefined, at: string): string[] {
  const resolve = resolver(spec)
  const found: string[] = []
  const walk = (node: JsonSchema | undefined, where: string, seen: string[]) => {
    if (node?.$ref && seen.includes(node.$ref)) return
    const inner = node?.$ref ? [...seen, node.$ref] : seen
    const s = resolve(node)
    if (!s) return
    if (node?.$ref) where = node.$ref.replace('#/components/schemas/', '')
    for (const [name, property] of Object.entries(s.properties ?? {})) {
      const p = resolve(property)!
      const lacks: string[] = []
      if (!p.description?.trim()) lacks.push('a description')
      const branches = [p, ...(p.anyOf ?? []).map(b => resolve(b)!)]
      const holdsValue = branches.some(b => {
        const types = ([] as string[]).concat(b.type ?? [])
        return types.some(type => PRIMITIVE_TYPES.includes(type)) ||
          (types.includes('array') && ([] as string[]).concat(resolve(b.items)?.type ?? []).some(type => PRIMITIVE_TYPES.includes(type)))
      })
      const oneValue = p.const !== undefined || p.enum?.length === 1
      if (holdsValue && !oneValue && examplesOf(p) === undefined) lacks.push('an example')
      if (lacks.length > 0) found.push(`${where}.${name} lacks ${lacks.join(' and ')}`)
      walk(property, `${where}.${name}`, inner)
    }
    if (s.items) walk(s.items, `${where}[]`, inner)
    for (const key of ['anyOf', 'oneOf', 'allOf'] as const) s[key]?.forEach((branch, i) => walk(branch, `${where}<${key} ${i}>`, inner))
  }
  walk(schema, at, [])
  return found
}

t.test('the committed openapi/openapi.json is what the code generates', async t => {
  const committed = readFileSync(SPEC_PATH, 'utf8')
  const generated = await generateSpec()
  const diff = firstDifference(committed, generated)
  t.equal(diff, undefined, `openapi/openapi.json is out of date: run \`npm run openapi\` and commit it. ${diff ?? ''}`)
  t.ok(generated.endsWith('}\n'), 'pretty JSON with a trailing newline')
})

t.test('the spec', async t => {
  const { app, routes } = await buildCapturingApp()
  t.teardown(() => app.close())
  const spec = app.swagger() as unknown as Spec
  const ops = operations(spec)
  t.ok(ops.length > 0, 'has operations')

  t.test('is OpenAPI 3.1 and declares the bearer security scheme', async t => {
    t.match(spec.openapi, /^3\.1\.\d+$/)
    t.match(spec.components.securitySchemes.bearerAuth, { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' })
  })

  t.test('every operation has a summary, a description and a unique operationId', async t => {
    for (const { where, op } of ops) {
      t.ok(op.summary?.trim(), `${where} has a summary`)
      t.ok(op.description?.trim(), `${where} has a description`)
      t.ok(op.operationId?.trim(), `${where} has an operationId`)
    }
    const ids = ops.map(o => o.op.operationId)
    t.same(ids.filter((id, i) => ids.indexOf(id) !== i), [], 'operationIds are unique')
  })

  t.test('every authenticated operation declares its security and its 401 problem, 403 too where a scope is needed', async t => {
    const problem = { description: String, content: { 'application/problem+json': { schema: Object } } }
    const scoped = ops.filter(o => /^\/(v1|identity-insights|v0\.1\/identity-insights)(\/|$)/.test(o.path) && !o.path.startsWith('/v1/webhooks/'))
    t.ok(scoped.length >= 4, 'the /v1 and Vonage-compatible operations are there')
    for (const { where, op } of scoped) {
      t.ok(op.security?.some(requirement => 'bearerAuth' in requirement), `${where} declares bearerAuth`)
      t.match(op.responses['401'], problem, `${where} documents its 401 problem`)
      t.match(op.responses['403'], problem, `${where} documents its 403 problem`)
    }
    // Webhooks are signed by their sender, not called with our tokens: a declared scheme and a 401, no scope.
    const gaps: string[] = []
    for (const { where, op } of ops.filter(o => o.path.startsWith('/v1/webhooks/'))) {
      const schemes = op.security?.flatMap(requirement => Object.keys(requirement)) ?? []
      if (schemes.length === 0 || !schemes.every(s => s in spec.components.securitySchemes)) gaps.push(`${where} declares its security`)
      t.match(op.responses['401'], problem, `${where} documents its 401 problem`)
    }
    t.same(unknownGaps(t, gaps), [], 'every webhook declares how it is authenticated')
  })

  t.test('the intro says truly which routes need a bearer token: the /v1 ones that take none are named as exceptions', async t => {
    const withoutBearer = ops.filter(o => o.path.startsWith('/v1/') && !o.op.security?.some(requirement => 'bearerAuth' in requirement))
    t.ok(withoutBearer.length >= 2, withoutBearer.map(o => o.where).join(', '))
    for (const { where, path } of withoutBearer) t.ok(spec.info.description.includes(`\`${path}\``), `${where}: named in the intro`)
  })

  t.test('a body the route lets out is not required; every operation with a path parameter documents its 414', async t => {
    const optional = ops.filter(o => o.op.requestBody?.required === false).map(o => o.where)
    t.same(optional, ['POST /v1/queue/dead/{id}/retry'], 'only the dead-letter retry takes no body')
    const res = await app.inject({ method: 'POST', url: '/v1/queue/dead/ntf_00_x/retry' })
    t.not(res.statusCode, 400, 'and the route does take a request without one (401 here: no token)')
    const withParams = ops.filter(o => o.path.includes('{'))
    t.ok(withParams.length >= 5)
    for (const { where, op } of withParams) t.match(op.responses['414'], { content: { 'application/problem+json': { schema: Object } } }, `${where} documents 414`)
    const long = await app.inject({ method: 'GET', url: `/v1/notifications/${'x'.repeat(101)}` })
    t.equal(long.statusCode, 414, 'as the router answers')
  })

  t.test('answers every route of a kind may give are documented on each: a path that does not decode, the key set down, the body limit', async t => {
    const problemAnswer = { content: { 'application/problem+json': { schema: Object } } }
    for (const { where, op, path } of ops.filter(o => o.path.includes('{'))) {
      t.match(op.responses['400'], { ...problemAnswer, description: /The path does not decode/ }, `${where}: its 400 for a path that does not decode`)
      const res = await app.inject({ method: where.split(' ')[0] as 'GET', url: path.replace(/\{[^}]+\}/, '%ZZ') })
      t.equal(res.statusCode, 400, `${where}: a path that does not decode is a 400`)
    }
    const bearer = ops.filter(o => o.op.security?.some(r => 'bearerAuth' in r) && !o.op.security.some(r => Object.keys(r).length === 0))
    t.ok(bearer.length >= 15)
    for (const { where, op } of bearer) t.match(op.responses['503'], { ...problemAnswer, description: /AUTH_JWKS_URL.*auth-unavailable/ }, `${where}: its 503 for a key set that could not be fetched`)
    const limits: Record<string, string> = {
      'POST /v1/notifications': '64 KiB', 'POST /v1/reachability/batch': '64 KiB', 'POST /v1/reports/refresh': '512 KiB', 'POST /v1/campaigns': '64 MiB',
      'POST /identity-insights/v1/requests': '8 KiB', 'POST /v1/webhooks/camara': '16 KiB', 'DELETE /v1/queue/dead/{id}': '1 KiB',
    }
    for (const [where, limit] of Object.entries(limits)) {
      t.match(ops.find(o => o.where === where)?.op.responses['413']?.description, limit, `${where}: its 413 names its limit`)
    }
    t.match(spec.components.schemas.Problem, { properties: { required_scope: { type: 'string' } } }, 'a 403\'s required_scope is in the Problem schema')
  })

  t.test('the rules the server enforces beyond types are in the spec; each body names every Content-Type it takes', async t => {
    const body = (path: string, type = 'application/json') => spec.paths[path]!.post!.requestBody!.content[type]!.schema
    t.match(body('/v1/notifications'), {
      properties: {
        message: { anyOf: [{ required: ['sms'] }, { required: ['push'] }], properties: { push: { properties: { data: { maxProperties: 50 } } } } },
        routing: { properties: { channels: { uniqueItems: true } } },
        metadata: { maxProperties: 20 },
        callback_url: { pattern: '^[Hh][Tt][Tt][Pp][Ss]?://' },
      },
    }, 'a notification: sms, push or both; each channel once; map sizes; http(s) callbacks only')
    t.match(body('/v1/campaigns'), {
      properties: { recipients: { items: { type: 'object', required: ['to'], additionalProperties: false, properties: { vars: { maxProperties: 50 } } } } },
    }, 'a campaign\'s recipients are described as each is read')
    t.ok(body('/v1/campaigns', 'application/x-ndjson'), 'and its NDJSON body')
    t.match(body('/identity-insights/v1/requests'), { properties: { insights: { required: ['reachability'], maxProperties: 1 } } })
    t.same(Object.keys(spec.paths['/v1/webhooks/camara']!.post!.requestBody!.content), ['application/cloudevents+json', 'application/json'],
      'CAMARA events come as CloudEvents JSON')
  })

  t.test('every description and example of the zod schemas reaches the spec', async t => {
    const lost: string[] = []
    let compared = 0
    for (const route of routes) {
      const methods = ([] as string[]).concat(route.method).map(m => m.toLowerCase())
      const path = route.url.replace(/:([A-Za-z0-9_]+)/g, '{$1}')
      for (const method of methods) {
        const op = spec.paths[path]?.[method]
        if (!op) continue // hidden routes (the docs UI, /openapi.json) and the HEAD twins that are refused
        compared++
        if (method === 'head') continue // its GET's answers without bodies: checked against the GET below
        lost.push(...lostDocs(route, op, spec, `${method.toUpperCase()} ${path}`))
      }
    }
    t.equal(compared, ops.length, 'every operation of the spec was compared with its route')
    t.same(unknownGaps(t, lost), [], 'nothing documented in zod is missing from the spec')
  })

  t.test('HEAD: the spec lists exactly the HEAD routes that answer it, each with its GET\'s answers and no body', async t => {
    const authorization = `Bearer ${await app.auth.issue({ sub: 'spec', scope: ALL_SCOPES, ttlSeconds: 60 })}`
    const specPath = (url: string) => url.replace(/:([A-Za-z0-9_]+)/g, '{$1}')
    const answered: string[] = []
    const hidden: string[] = []
    const refused: string[] = []
    // The app's own HEAD routes (the security-headers plugin builds a probe instance of its own, captured too).
    for (const route of routes.filter(r => [r.method].flat().includes('HEAD') && app.hasRoute({ method: 'HEAD', url: r.url }))) {
      const path = specPath(route.url)
      const res = await app.inject({ method: 'HEAD', url: route.url.replace(/:[A-Za-z0-9_]+|\*/g, 'x'), headers: { authorization } })
      if (res.statusCode === 405) {
        refused.push(path)
        const methods = Object.keys(spec.paths[path] ?? {}).filter(m => HTTP_METHODS.includes(m)).map(m => m.toUpperCase()).sort()
        t.equal(res.headers.allow, methods.join(', '), `HEAD ${path}: Allow names the methods the spec gives the path`)
      } else if (spec.paths[path]?.get) {
        answered.push(path)
      } else {
        hidden.push(route.url)
      }
    }
    const documented = ops.filter(o => o.where.startsWith('HEAD ')).map(o => o.path)
    t.same(documented.sort(), answered.sort(), 'every HEAD answered is documented, and no HEAD refused is')
    t.same(answered.sort(), ['/healthz', '/metrics', '/readyz'], 'the probes and the metrics answer HEAD')
    t.same(hidden.filter(url => !isDocsRoute(url)), [], 'a HEAD answered but not documented is one of the docs, hidden as their GETs are')
    t.ok(refused.includes('/v1/reachability/{phone_number}') && refused.length >= 9, `refused: ${refused.join(', ')}`)

    for (const path of documented) {
      const head = spec.paths[path]!.head!
      const get = spec.paths[path]!.get!
      t.equal(head.operationId, `${get.operationId}Head`, `HEAD ${path} operationId`)
      t.same(head.security, get.security, `HEAD ${path} needs what its GET needs`)
      t.same(Object.keys(head.responses), Object.keys(get.responses), `HEAD ${path} answers what its GET answers`)
      for (const [status, response] of Object.entries(head.responses)) {
        t.equal(response.description, get.responses[status]!.description, `HEAD ${path} ${status} described as the GET's`)
        t.equal(response.content, undefined, `HEAD ${path} ${status} has no body`)
      }
    }
  })

  t.test('the response headers the server sends are in the spec, on the answers that send them', async t => {
    const headersOf = (op: Operation, status: string) => Object.keys(op.responses[status]?.headers ?? {})
    const gaps: string[] = []
    const want = (where: string, op: Operation, status: string, names: string[]) => {
      for (const name of names) {
        // Written once in components.headers, referred to from each answer.
        const header = resolver(spec)(op.responses[status]?.headers?.[name] as JsonSchema | undefined) as { description?: string, schema?: JsonSchema } | undefined
        if (!header?.description?.trim() || !header.schema?.type) gaps.push(`${where} ${status} lacks ${name}`)
      }
    }
    for (const { where, op } of ops) {
      for (const status of Object.keys(op.responses)) want(where, op, status, ['X-Request-Id'])
      if (op.responses['401']) want(where, op, '401', ['WWW-Authenticate'])
      if (op.responses['503']) want(where, op, '503', ['Retry-After'])
      if (op.responses['429']) {
        want(where, op, '429', ['Retry-After', 'RateLimit-Limit', 'RateLimit-Remaining', 'RateLimit-Reset'])
        for (const status of Object.keys(op.responses).filter(s => /^2/.test(s))) want(where, op, status, ['RateLimit-Limit', 'RateLimit-Remaining', 'RateLimit-Reset'])
      }
    }
    t.ok(ops.filter(o => o.op.responses['429']).length >= 15, 'the rate-limited operations are there')
    for (const [where, status] of [['post /v1/notifications', '202'], ['post /v1/campaigns', '202']] as const) {
      const [method, path] = where.split(' ') as [string, string]
      want(where, spec.paths[path]![method]!, status, ['Idempotent-Replayed'])
      want(where, spec.paths[path]![method]!, '409', ['Retry-After'])
    }
    for (const path of ['/v1/reports/stale-contacts', '/v1/reports/offline-devices']) want(`get ${path}`, spec.paths[path]!.get!, '200', ['X-Next-Cursor'])
    t.same(gaps, [], 'every header is documented where it is sent')
    t.notOk(headersOf(spec.paths['/v1/campaigns/{id}/pause']!.post!, '409').includes('Retry-After'), 'not where it is not sent: a campaign action\'s 409 has no Retry-After')
    t.notOk(headersOf(spec.paths['/v1/reachability/{phone_number}']!.get!, '401').includes('RateLimit-Limit'), 'nor on an answer given before the rate limiter counts')
    t.same(headersOf(spec.paths['/healthz']!.get!, '200'), ['X-Request-Id'], 'the probes are not rate limited')

    // What the server sends, checked against the spec: each of these headers in an answer is documented for it.
    const tracked = ['x-request-id', 'www-authenticate', 'retry-after', 'ratelimit-limit', 'ratelimit-remaining', 'ratelimit-reset', 'idempotent-replayed', 'x-next-cursor']
    const authorization = `Bearer ${await app.auth.issue({ sub: 'spec', scope: ALL_SCOPES, ttlSeconds: 60 })}`
    const notification = { to: '+990123411', message: { sms: { text: 'hi' } } }
    const requests: [string, string, string, object?, Record<string, string>?][] = [
      ['GET', '/v1/reachability/{phone_number}', '/v1/reachability/+990123411'],
      ['GET', '/v1/reachability/{phone_number}', '/v1/reachability/+990123411', undefined, { authorization: '' }],
      ['POST', '/v1/notifications', '/v1/notifications', notification, { 'idempotency-key': 'spec-headers' }],
      ['POST', '/v1/notifications', '/v1/notifications', notification, { 'idempotency-key': 'spec-headers' }],
      ['GET', '/v1/queue/dead', '/v1/queue/dead'],
      ['GET', '/healthz', '/healthz'],
    ]
    let checked = 0
    for (const [method, path, url, payload, extra] of requests) {
      const res = await app.inject({ method: method as 'GET', url, headers: { authorization, ...extra }, ...(payload ? { payload } : {}) })
      const documented = headersOf(spec.paths[path]![method.toLowerCase()]!, String(res.statusCode)).map(name => name.toLowerCase())
      for (const name of tracked.filter(n => res.headers[n] !== undefined)) {
        t.ok(documented.includes(name), `${method} ${path} ${res.statusCode} sends ${name}: documented`)
        checked++
      }
    }
    t.ok(checked >= 10, `${checked} headers sent`)
  })

  t.test('every answer, parameter, body and field is described, with examples', async t => {
    const gaps: string[] = []
    for (const { where, op } of ops) {
      for (const [status, response] of Object.entries(op.responses)) {
        if (!response.description?.trim() || response.description === 'Default Response') gaps.push(`${where} response ${status} lacks its own description`)
        for (const [type, media] of Object.entries(response.content ?? {})) gaps.push(...undocumentedFields(spec, media.schema, `${where} response ${status} ${type}`))
      }
      for (const parameter of op.parameters ?? []) {
        const at = `${where} ${parameter.in} parameter ${parameter.name}`
        if (!parameter.description?.trim()) gaps.push(`${at} lacks a description`)
        if (examplesOf(parameter) === undefined && examplesOf(parameter.schema) === undefined) gaps.push(`${at} lacks an example`)
      }
      for (const [type, media] of Object.entries(op.requestBody?.content ?? {})) {
        if (examplesOf(media) === undefined && examplesOf(resolver(spec)(media.schema)) === undefined) gaps.push(`${where} body ${type} lacks an example`)
        gaps.push(...undocumentedFields(spec, media.schema, `${where} body ${type}`))
      }
    }
    t.same(unknownGaps(t, [...new Set(gaps)]), [], 'nothing undocumented')
  })
})
