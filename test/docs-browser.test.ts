import t from 'tap'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { isDeepStrictEqual } from 'node:util'
import { chromium, type Browser, type Page } from 'playwright-core'
import { buildTestApp } from './helpers/app.js'

// /docs in a real browser: headless Chromium (the Debian package) driven by playwright-core. The page lists
// every operation of the served OpenAPI document with its parameters, body and responses and their schemas,
// and "Authorize" + "Try it out" + "Execute" on a reachability route answers 200.
//
// The screenshot goes to docs/swagger-ui.png (shown in the README) when that file is missing or with
// UPDATE_SCREENSHOT=1; otherwise to a temporary file, so an ordinary test run leaves the working tree alone.

const CHROMIUM = '/usr/bin/chromium'
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const SCREENSHOT = join(ROOT, 'docs', 'swagger-ui.png')
const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'patch', 'options', 'head', 'trace']
// About 20 s on a quiet 2-core machine; more when the machine is shared.
t.setTimeout(180_000)

interface Operation {
  operationId: string
  tags?: string[]
  parameters?: { name: string, in: string }[]
  requestBody?: unknown
  responses: Record<string, { content?: Record<string, { schema?: { $ref?: string } }> }>
}
interface Spec { paths: Record<string, Record<string, Operation>>, components: { schemas: Record<string, { properties?: Record<string, unknown> }> } }

/** Reads until the page shows `expected` (Swagger UI resolves an operation after it opens) or `ms` pass; the last reading. */
async function settled<T> (read: () => Promise<T>, expected: T, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    const value = await read()
    if (isDeepStrictEqual(value, expected) || Date.now() > deadline) return value
    await sleep(50)
  }
}

const haveChromium = existsSync(CHROMIUM)
if (!haveChromium && process.env.CI === 'true') {
  t.fail(`CI=true and ${CHROMIUM} is missing: install the Debian package chromium (.ci/run does)`)
}

t.test('/docs in headless Chromium', { skip: !haveChromium && `${CHROMIUM} is missing (apt-get install -y chromium)` }, async t => {
  const { app, bearer } = await buildTestApp()
  t.teardown(() => app.close())
  const base = await app.listen({ port: 0, host: '127.0.0.1' })
  const spec = app.swagger() as unknown as Spec
  const operations = Object.entries(spec.paths).flatMap(([path, item]) =>
    Object.entries(item).filter(([method]) => HTTP_METHODS.includes(method)).map(([method, op]) => ({ path, method, op })))
  t.ok(operations.length >= 10, `the document has ${operations.length} operations`)

  const browser: Browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run', '--disable-quic', '--disable-sync'],
  })
  t.teardown(() => browser.close())
  const page: Page = await browser.newPage({ viewport: { width: 1280, height: 1000 } })
  page.setDefaultTimeout(20_000)
  const pageErrors: string[] = []
  page.on('pageerror', err => pageErrors.push(err.message))

  const answer = await page.goto(`${base}/docs`)
  t.equal(answer?.status(), 200, '/docs answers')
  await page.locator('.opblock').first().waitFor()
  t.match(await page.locator('.info .title').innerText(), /reachroute/, 'the API title')

  t.test('every operation is listed, under its tag, with its method and path', async t => {
    const listed = await page.locator('.opblock').evaluateAll(blocks => blocks.map(b => ({
      id: b.id,
      method: b.querySelector('.opblock-summary-method')?.textContent?.toLowerCase() ?? '',
      path: b.querySelector('.opblock-summary-path')?.getAttribute('data-path') ?? '',
    })))
    const expected = operations.flatMap(({ path, method, op }) => (op.tags ?? ['default']).map(tag => ({ id: `operations-${tag}-${op.operationId}`, method, path })))
    const key = (o: { id: string, method: string, path: string }) => `${o.method} ${o.path} ${o.id}`
    t.same(listed.map(key).sort(), expected.map(key).sort(), `${expected.length} operations on the page, as in the document`)
  })

  t.test('each operation shows its parameters, body and responses, with their schemas', async t => {
    for (const { path, method, op } of operations) {
      const block = page.locator(`[id="operations-${op.tags?.[0] ?? 'default'}-${op.operationId}"]`)
      await block.locator('.opblock-summary-control').click()
      const body = block.locator('.opblock-body')
      await body.waitFor()
      const what = `${method.toUpperCase()} ${path}`

      const expectedParams = (op.parameters ?? []).map(p => `${p.in}:${p.name.toLowerCase()}`).sort()
      const params = await settled(async () => (await body.locator('table.parameters tr[data-param-name]').evaluateAll(rows =>
        rows.map(r => `${r.getAttribute('data-param-in')}:${r.getAttribute('data-param-name')}`))).sort(), expectedParams)
      t.same(params, expectedParams, `${what}: its parameters`)

      if (op.requestBody) {
        const requestBody = body.locator('.opblock-section-request-body')
        await requestBody.locator('button.tablinks[data-name="model"]').click()
        t.ok(await requestBody.locator('.json-schema-2020-12').count() > 0, `${what}: its request body schema`)
      } else {
        t.equal(await body.locator('.opblock-section-request-body').count(), 0, `${what}: no request body`)
      }

      const codes = await settled(() => body.locator('table.responses-table:not(.live-responses-table) > tbody > tr.response').evaluateAll(rows =>
        rows.map(r => r.getAttribute('data-code') ?? '')), Object.keys(op.responses))
      t.same(codes, Object.keys(op.responses), `${what}: responses ${codes.join(', ')}`)

      // Each response with a body shows its schema under the "Schema" tab: by name when it is a component.
      const expectedSchemas = Object.fromEntries(Object.entries(op.responses).flatMap(([code, response]) => {
        const media = Object.values(response.content ?? {})[0]
        if (!media?.schema) return []
        return [[code, media.schema.$ref?.split('/').at(-1) ?? '(inline)']]
      }))
      const staticRows = 'table.responses-table:not(.live-responses-table) > tbody > tr.response'
      await body.locator(staticRows).evaluateAll(rows => rows.forEach(row =>
        (row.querySelector('button.tablinks[data-name="model"]') as unknown as { click (): void } | null)?.click()))
      const shownSchemas = await settled(async () => {
        const rows = await body.locator(staticRows).evaluateAll(rows => rows.map(row => ({
          code: row.getAttribute('data-code') ?? '',
          schema: !!row.querySelector('.json-schema-2020-12'),
          title: row.querySelector('.json-schema-2020-12__title')?.textContent ?? '',
        })))
        return Object.fromEntries(rows.filter(r => r.schema).map(r => [r.code, expectedSchemas[r.code] === '(inline)' ? '(inline)' : r.title]))
      }, expectedSchemas)
      t.same(shownSchemas, expectedSchemas, `${what}: response schemas ${Object.entries(expectedSchemas).map(([code, name]) => `${code} ${name}`).join(', ')}`)
      await block.locator('.opblock-summary-control').click()
      await body.waitFor({ state: 'detached' })
    }
  })

  t.test('the Schemas section lists every schema, and opens on its properties', async t => {
    const section = page.locator('section.models')
    t.match(await section.locator('h4').innerText(), /Schemas/)
    const names = await section.locator('article[data-json-schema-level="0"] > .json-schema-2020-12-head .json-schema-2020-12__title').allInnerTexts()
    t.same([...names].sort(), Object.keys(spec.components.schemas).sort(), 'one entry per component schema')
    for (const name of ['Reachability', 'Problem', 'Notification']) t.ok(names.includes(name), `${name} is there`)

    const reachability = section.locator('article[data-json-schema-level="0"]', { has: page.locator(':scope > .json-schema-2020-12-head .json-schema-2020-12__title', { hasText: /^Reachability$/ }) })
    await reachability.locator(':scope > .json-schema-2020-12-head button.json-schema-2020-12-accordion').click()
    const properties = await reachability.locator('.json-schema-2020-12-property .json-schema-2020-12__title').allInnerTexts()
    for (const property of Object.keys(spec.components.schemas.Reachability?.properties ?? {})) {
      t.ok(properties.includes(property), `Reachability shows ${property}`)
    }
  })

  t.test('Authorize, then Try it out on GET /v1/reachability/{phone_number}: 200 with SMS', async t => {
    await page.locator('.auth-wrapper button.authorize').click()
    const bearerForm = page.locator('.modal-ux .auth-container', { has: page.locator('h4 code', { hasText: /^bearerAuth$/ }) })
    await bearerForm.locator('input').fill((await bearer('reachability:read', 'docs-browser')).replace(/^Bearer /, ''))
    await bearerForm.locator('button.authorize').click()
    await t.resolves(bearerForm.locator('h6', { hasText: 'Authorized' }).waitFor(), 'the bearer token is taken')
    await page.locator('.modal-ux button.close-modal').click()

    const op = page.locator('[id="operations-reachability-getReachability"]')
    await op.locator('.opblock-summary-control').click()
    await op.locator('button.try-out__btn').click()
    await op.locator('tr[data-param-name="phone_number"] input').fill('+990123411')
    const [response] = await Promise.all([
      page.waitForResponse(r => r.url().includes('/v1/reachability/')),
      op.locator('button.execute').click(),
    ])
    t.equal(response.request().headers().authorization?.startsWith('Bearer '), true, 'the browser sent the token')
    t.equal(response.status(), 200, 'the API answered 200')

    const live = op.locator('table.live-responses-table')
    await live.waitFor()
    t.equal((await live.locator('tr.response .response-col_status').first().innerText()).trim(), '200', 'the page shows 200')
    const shown = await live.locator('.response-col_description .highlight-code').first().innerText()
    t.match(shown, /"connectivity":\s*\[\s*"SMS"\s*\]/, 'the page shows the SMS-only connectivity')
    t.match(shown, /"phone_number":\s*"\+990123411"/)

    // The picture for the README: the page from its top to the end of this live answer.
    await page.evaluate('window.scrollTo(0, 0)')
    const liveBox = await live.boundingBox()
    const update = process.env.UPDATE_SCREENSHOT === '1' || !existsSync(SCREENSHOT)
    const tmp = update ? undefined : mkdtempSync(join(tmpdir(), 'reachroute-docs-'))
    if (tmp) t.teardown(() => rmSync(tmp, { recursive: true, force: true }))
    const file = tmp ? join(tmp, 'swagger-ui.png') : SCREENSHOT
    await page.screenshot({ path: file, fullPage: true, clip: { x: 0, y: 0, width: 1280, height: Math.ceil((liveBox?.y ?? 1000) + (liveBox?.height ?? 0) + 24) } })
    const png = readFileSync(file)
    t.same([...png.subarray(1, 4)], [...Buffer.from('PNG')], `a screenshot at ${update ? 'docs/swagger-ui.png' : 'a temporary file'}`)
  })

  t.test('no script error on the page', async t => {
    t.same(pageErrors, [])
  })
})
