import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { envSchema } from '../src/config.js'
import { register } from '../src/metrics/registry.js'
import { buildTestApp } from './helpers/app.js'
import { ROOT } from './helpers/build.js'

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
