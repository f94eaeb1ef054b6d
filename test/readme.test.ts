import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { z } from 'zod'
import { NotificationBody } from '../routes/schemas/notification.js'
import { envSchema } from '../src/config.js'
import { register } from '../src/metrics/registry.js'
import { buildTestApp } from './helpers/app.js'
import { ROOT } from './helpers/build.js'
import { waitFor } from './helpers/wait.js'

// The README lists every environment variable, npm script, endpoint and metric: each table is checked against
// what the code has, both ways where the README could go stale.

const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')

/** The lines of a `## title` section, up to the next `## ` heading. */
function section (title: string): string {
  const start = readme.indexOf(`\n## ${title}\n`)
  if (start < 0) throw new Error(`README.md has no "## ${title}" section`)
  const end = readme.indexOf('\n## ', start + 1)
  return readme.slice(start, end < 0 ? undefined : end)
}

/** The first cell of each table row of a section, without its backticks. */
function firstCells (text: string): string[] {
  return text.split('\n').filter(line => line.startsWith('| `')).map(line => line.split('|')[1]!.trim().replaceAll('`', ''))
}

t.test('every environment variable src/config.ts reads has a row under Configuration, and no row names another', async t => {
  const documented = firstCells(section('Configuration'))
  const known = Object.keys(envSchema.shape)
  t.same(known.filter(name => !documented.includes(name)), [], 'no variable left out')
  t.same(documented.filter(name => !known.includes(name)), [], 'no row for a variable the code does not read')
})

t.test('each Configuration row gives the default the schema has', async t => {
  // Defaults worked out from other variables: the row says how, in words.
  const computed = ['METRICS_AUTH', 'FCM_PROJECT_ID']
  const shape = envSchema.shape as Record<string, { safeParse: (value: unknown) => { data?: unknown } }>
  const rows = section('Configuration').split('\n').filter(line => line.startsWith('| `')).map(line => line.split('|').map(cell => cell.trim()))
  for (const [, nameCell, defaultCell] of rows) {
    const name = nameCell!.replaceAll('`', '')
    if (computed.includes(name) || shape[name] === undefined) continue
    const schemaDefault = shape[name].safeParse(undefined).data
    if (schemaDefault === undefined) t.match(defaultCell, /^unset/, `${name}: no default`)
    else t.equal(/^`([^`]*)`/.exec(defaultCell!)?.[1], String(schemaDefault), `${name}: default ${String(schemaDefault)}`)
  }
})

t.test('every npm script has a row under npm scripts, and no row names another', async t => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
  const documented = firstCells(section('npm scripts')).map(cell => cell.replace(/^npm (run )?/, ''))
  const scripts = Object.keys(pkg.scripts)
  t.same(scripts.filter(name => !documented.includes(name)), [], 'no script left out')
  t.same(documented.filter(name => !scripts.includes(name)), [], 'no row for a script package.json does not have')
})

t.test('every operation of the OpenAPI document has a row under Endpoints, and every row is a route', async t => {
  // Rows look like "| GET | `/v1/x/{id}?cursor=` | scope | …", or "| POST | `/a/{id}/pause`, `/resume` | …".
  const rows = section('Endpoints').split('\n').filter(line => /^\| [A-Z]+ \| `/.test(line)).flatMap(line => {
    const [, method, paths] = line.split('|').map(cell => cell.trim())
    const listed = paths!.split(',').map(p => p.trim().replaceAll('`', '').replace(/\?.*$/, ''))
    const base = listed[0]!.slice(0, listed[0]!.lastIndexOf('/'))
    return listed.map((path, i) => `${method} ${i > 0 && path.split('/').length === 2 ? base + path : path}`)
  })
  // The committed document: test/openapi.test.ts checks it is what the routes generate.
  const spec = JSON.parse(readFileSync(join(ROOT, 'openapi', 'openapi.json'), 'utf8')) as { paths: Record<string, object> }
  const operations = Object.entries(spec.paths).flatMap(([path, ops]) => Object.keys(ops).map(method => `${method.toUpperCase()} ${path}`))
  t.same(operations.filter(op => !rows.includes(op)), [], 'no operation left out')
  // The Swagger UI and the document itself are served but kept out of the document.
  const hidden = ['GET /docs', 'GET /openapi.json']
  t.same(rows.filter(row => !operations.includes(row) && !hidden.includes(row)), [], 'no row for a route the service does not have')
})

t.test('every reachroute_ metric has a row under Metrics, and no row names another', async t => {
  // Building the app loads every module that defines a metric.
  const { app } = await buildTestApp()
  t.teardown(() => app.close())
  const registered = (await register.getMetricsAsJSON()).map(m => m.name).filter(name => name.startsWith('reachroute_'))
  const documented = firstCells(section('Metrics'))
  t.ok(registered.length >= 13, `${registered.length} metrics registered`)
  t.same(registered.filter(name => !documented.includes(name)), [], 'no metric left out')
  t.same(documented.filter(name => !registered.includes(name)), [], 'no row for a metric the service does not have')
})

t.test('the POST /v1/notifications field list gives every limit the schema has', async t => {
  interface Schema { properties?: Record<string, Schema>, propertyNames?: Schema, additionalProperties?: Schema | boolean, items?: Schema, [limit: string]: unknown }
  const LIMITS = ['minLength', 'maxLength', 'minimum', 'maximum', 'minItems', 'maxItems', 'maxProperties']
  const root = z.toJSONSchema(NotificationBody, { io: 'input', unrepresentable: 'any' }) as Schema
  // Each field's row, or the row of the nearest field above it (message.push gives its title, body and data).
  const rows = new Map(section('Endpoints').split('\n').filter(line => line.startsWith('| `')).map(line => [line.split('|')[1]!.trim().replaceAll('`', ''), line]))
  const rowOf = (path: string): string | undefined => {
    for (let at = path; at; at = at.slice(0, Math.max(0, at.lastIndexOf('.')))) if (rows.has(at)) return rows.get(at)
    return undefined
  }
  const missing: string[] = []
  let checked = 0
  const walk = (schema: Schema, path: string) => {
    const limits: [string, unknown][] = [
      ...LIMITS.map(k => [k, schema[k]] as [string, unknown]),
      ...LIMITS.map(k => [`key ${k}`, schema.propertyNames?.[k]] as [string, unknown]),
      ...LIMITS.map(k => [`value ${k}`, typeof schema.additionalProperties === 'object' ? schema.additionalProperties[k] : undefined] as [string, unknown]),
    ].filter(([, n]) => typeof n === 'number')
    for (const [what, n] of limits) {
      checked++
      // The number as written, not a part of another (1000 is not in 11000, nor 500 in 1,500).
      if (!new RegExp(`(?<![\\d,])${n}(?!\\d|,\\d)`).test(rowOf(path) ?? '')) missing.push(`${path} ${what} ${n}`)
    }
    for (const [name, inner] of Object.entries(schema.properties ?? {})) walk(inner, path ? `${path}.${name}` : name)
  }
  walk(root, '')
  t.ok(checked >= 25, `${checked} limits`)
  t.same(missing, [], 'each limit is in its field\'s row')
})

t.test('the failover reason the README shows is the one the sandbox gives', async t => {
  const { app, bearer } = await buildTestApp({ WORKERS: 'on', WORKER_IDLE_POLL_MS: '20' })
  t.teardown(() => app.close())
  const authorization = await bearer()
  const accepted = await app.inject({ method: 'POST', url: '/v1/notifications', headers: { authorization },
    payload: { to: '+990123400', message: { sms: { text: 'hi' }, push: { title: 't', body: 'b' } }, push_token: 'invalid-1' } })
  t.equal(accepted.statusCode, 202)
  const sent = await waitFor(async () => {
    const n = (await app.inject({ url: `/v1/notifications/${accepted.json().id}`, headers: { authorization } })).json()
    return n.status === 'sent' ? n : undefined
  }, 10_000, 'the SMS after the failover')
  t.match(sent, { channel: 'sms', reason: /failed over to SMS/ })
  t.ok(readme.includes(`\`${sent.reason}\``), `the README quotes "${sent.reason}"`)
})

t.test('the README says which X-Request-Id values are kept, as the app keeps them', async t => {
  const { app } = await buildTestApp()
  t.teardown(() => app.close())
  const kept = ['a', 'x'.repeat(128), 'Az09_.:@/+=-', 'order-5521/retry=2']
  const replaced = ['x'.repeat(129), 'a b', 'é', 'a,b', 'a;b', '"a"', '<a>']
  const answer = async (headers: Record<string, string | string[]>) => (await app.inject({ url: '/healthz', headers })).headers['x-request-id']
  for (const id of kept) t.equal(await answer({ 'x-request-id': id }), id, `${id.slice(0, 20)} kept`)
  for (const id of replaced) t.match(await answer({ 'x-request-id': id }), /^[0-9a-f-]{36}$/, `${id.slice(0, 20)} replaced with a UUID`)
  t.match(await answer({ 'x-request-id': ['a', 'b'] }), /^[0-9a-f-]{36}$/, 'given twice: replaced')
  t.match(await answer({ 'x-request-id': '' }), /^[0-9a-f-]{36}$/, 'empty: replaced')
  const rule = 'incoming `X-Request-Id` is kept when it is given once and is 1 to 128 characters, each a letter (`A`–`Z`, `a`–`z`), a digit or one of `_` `.` `:` `@` `/` `+` `=` `-`'
  t.ok(readme.replace(/\s+/g, ' ').includes(rule), `the README says: ${rule}`)
})
