import t from 'tap'
import { buildTestApp } from '../helpers/app.js'

// Integer query parameters were coerced: "1e1", "0x10", " 5" and "" were taken as 10, 16, 5 and 0.

interface Parameter { name: string, in: string, schema?: { type?: string, minimum?: number, maximum?: number } }
type Paths = Record<string, Record<string, { parameters?: Parameter[] }>>

t.test('every integer query parameter takes digits only, within its bounds, and answers a 400 problem otherwise', async t => {
  const { app, bearer } = await buildTestApp()
  t.teardown(() => app.close())
  const authorization = await bearer()
  const paths = (app.swagger() as unknown as { paths: Paths }).paths
  const found: string[] = []
  for (const [path, operations] of Object.entries(paths)) {
    for (const [method, operation] of Object.entries(operations)) {
      for (const parameter of operation.parameters ?? []) {
        if (parameter.in !== 'query' || parameter.schema?.type !== 'integer') continue
        const { minimum = 0, maximum = 1000 } = parameter.schema
        const url = path.replace('{phone_number}', '+990123411').replace(/\{[^}]+\}/g, 'x1')
        const ask = (value: string) => app.inject({ method: method.toUpperCase() as 'GET', url: `${url}?${parameter.name}=${encodeURIComponent(value)}`, headers: { authorization } })
        const where = `${method.toUpperCase()} ${path} ?${parameter.name}`
        found.push(where)
        for (const bad of ['1e1', '0x10', ' 5', '5 ', '', '-1', '2.5', String(maximum + 1), ...(minimum > 0 ? [String(minimum - 1)] : [])]) {
          const res = await ask(bad)
          t.equal(res.statusCode, 400, `${where}=${JSON.stringify(bad)}`)
          t.match(res.json(), { type: /\/validation-error$/, errors: [{ path: `querystring.${parameter.name}`, message: /whole number/ }] }, `${where}=${JSON.stringify(bad)}`)
        }
        for (const good of [String(minimum), String(maximum)]) {
          const res = await ask(good)
          t.not(res.statusCode, 400, `${where}=${good}: ${res.body.slice(0, 200)}`)
        }
      }
    }
  }
  t.ok(found.length >= 5, `checked ${found.join(', ')}`)
})
