import t from 'tap'
import { buildTestApp } from '../helpers/app.js'

// How a validation error reads: a bad key of a map (metadata, push data) says what is wrong with it, not zod's
// "Invalid key in record"; and a long key or value the caller sent is not echoed back whole.

const { app, bearer } = await buildTestApp()
t.teardown(() => app.close())
const authorization = await bearer()

interface FieldError { path: string, message: string }

const send = async (fields: object) => {
  const res = await app.inject({ method: 'POST', url: '/v1/notifications', headers: { authorization },
    payload: { to: '+990123400', message: { sms: { text: 'hi' } }, ...fields } })
  t.equal(res.statusCode, 400, res.body.slice(0, 300))
  t.equal(res.headers['content-type'], 'application/problem+json; charset=utf-8')
  return res.json() as { detail: string, errors: FieldError[] }
}
const push = (data: Record<string, string>) => ({ push_token: 'tok', message: { push: { title: 't', body: 'b', data } } })
const clipped = (text: string) => `${text.slice(0, 40)}…`

t.test('a metadata or push data key that is empty or too long: the problem says why', async t => {
  const cases: [string, object, string, RegExp][] = [
    ['an empty metadata key', { metadata: { '': 'x' } }, 'body.metadata.""', /^Too small: expected string to have >=1 characters$/],
    ['a metadata key of 65', { metadata: { ['k'.repeat(65)]: 'x' } }, `body.metadata.${clipped('k'.repeat(65))}`, /^Too big: expected string to have <=64 characters$/],
    ['an empty push data key', push({ '': 'x' }), 'body.message.push.data.""', /^Too small: expected string to have >=1 characters$/],
    ['a push data key of 101', push({ ['d'.repeat(101)]: 'x' }), `body.message.push.data.${clipped('d'.repeat(101))}`, /^Too big: expected string to have <=100 characters$/],
  ]
  for (const [what, fields, path, message] of cases) {
    const problem = await send(fields)
    t.match(problem.errors, [{ path, message }], what)
    t.notMatch(problem.detail, /Invalid key in record/, `${what}: not zod's "Invalid key in record"`)
    t.equal(problem.detail, `${path}: ${problem.errors[0]!.message}`, what)
  }
  const short = await send({ metadata: { ['k'.repeat(60)]: 'x'.repeat(501) } })
  t.match(short.errors, [{ path: `body.metadata.${'k'.repeat(60)}`, message: /<=500 characters/ }], 'a key of 60 characters is shown whole')
})

t.test('a 5,000-character key is not echoed back whole, in the path nor in a message', async t => {
  const long = 'q'.repeat(5000)
  for (const [what, fields] of [
    ['a metadata key', { metadata: { [long]: 'x' } }],
    ['a push data key', push({ [long]: 'x' })],
    ['a metadata value under a long key', { metadata: { [long.slice(0, 64)]: 'v'.repeat(5000) } }],
    ['an unknown field', { [long]: 1 }],
    ['an unknown field in routing', { routing: { [long]: 1 } }],
    ['an unknown field with a quote in it', { [`a"${long}`]: 1 }],
  ] as const) {
    const problem = await send(fields)
    const text = JSON.stringify(problem)
    t.notMatch(text, /q{41}/, `${what}: at most 40 characters of it`)
    t.ok(text.length < 1500, `${what}: ${text.length} characters`)
    t.match(problem.errors[0]!.path + problem.errors[0]!.message, /q{38,40}…/, `${what}: its first 40 characters and an ellipsis`)
  }
})

t.test('a key holding a lone surrogate, a control or an invisible character is shown with it as \\uXXXX: the problem is JSON any parser reads', async t => {
  const cases: [string, object, string, RegExp][] = [
    ['a metadata key with half an emoji', { metadata: { 'k\udc00': 'v' } }, 'body.metadata.k\\udc00', /^not well-formed Unicode: a lone UTF-16 surrogate/],
    ['a push data key with a NUL', push({ 'k\u0000': 'v' }), 'body.message.push.data.k\\u0000', /^a control character \(U\+0000\)/],
    ['a long metadata key cut inside an emoji pair', { metadata: { ['k'.repeat(39) + '\u{1F4E6}' + 'k'.repeat(30)]: 'v' } }, `body.metadata.${'k'.repeat(39)}\\ud83d…`, /^Too big/],
    ['an unknown field with a bidi mark', { 'x\u202e': 1 }, 'body', /^Unrecognized key: "x\\u202e"$/],
  ]
  for (const [what, fields, path, message] of cases) {
    const problem = await send(fields)
    t.match(problem.errors, [{ path, message }], what)
    const texts = [problem.detail, ...problem.errors.flatMap(e => [e.path, e.message])]
    t.notOk(texts.some(text => /[\p{Cs}\p{Cc}\p{Cf}]/u.test(text)), `${what}: nothing unseen in the answer`)
  }
})
