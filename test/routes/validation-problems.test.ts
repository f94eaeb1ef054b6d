import t from 'tap'
import { buildTestApp } from '../helpers/app.js'

// How a validation error reads: a bad key of a map (metadata, push data) says what is wrong with it, not zod's
// "Invalid key in record"; a key that is not a plain name is quoted in the path, so no key reads as two; and a long
// key or value the caller sent is not echoed back whole.

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
    ['an empty metadata key', { metadata: { '': 'x' } }, 'body.metadata[""]', /^Too small: expected string to have >=1 characters$/],
    ['a metadata key of 65', { metadata: { ['k'.repeat(65)]: 'x' } }, `body.metadata["${clipped('k'.repeat(65))}"]`, /^Too big: expected string to have <=64 characters$/],
    ['an empty push data key', push({ '': 'x' }), 'body.message.push.data[""]', /^Too small: expected string to have >=1 characters$/],
    ['a push data key of 101', push({ ['d'.repeat(101)]: 'x' }), `body.message.push.data["${clipped('d'.repeat(101))}"]`, /^Too big: expected string to have <=100 characters$/],
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
    ['a metadata key with half an emoji', { metadata: { 'k\udc00': 'v' } }, 'body.metadata["k\\udc00"]', /^not well-formed Unicode: a lone UTF-16 surrogate/],
    ['a push data key with a NUL', push({ 'k\u0000': 'v' }), 'body.message.push.data["k\\u0000"]', /^a control character \(U\+0000\)/],
    ['a long metadata key cut inside an emoji pair', { metadata: { ['k'.repeat(39) + '\u{1F4E6}' + 'k'.repeat(30)]: 'v' } }, `body.metadata["${'k'.repeat(39)}\\ud83d…"]`, /^Too big/],
    ['an unknown field with a bidi mark', { 'x\u202e': 1 }, 'body', /^Unrecognized key: "x\\u202e"$/],
  ]
  for (const [what, fields, path, message] of cases) {
    const problem = await send(fields)
    t.match(problem.errors, [{ path, message }], what)
    const texts = [problem.detail, ...problem.errors.flatMap(e => [e.path, e.message])]
    t.notOk(texts.some(text => /[\p{Cs}\p{Cc}\p{Cf}]/u.test(text)), `${what}: nothing unseen in the answer`)
  }
})

t.test('a key holding a dot, a slash, a bracket, a quote or only digits is quoted in the path, so it reads as one key', async t => {
  const long = 'v'.repeat(501)
  const cases: [string, object, string][] = [
    ['a dot', { metadata: { 'a.b': long } }, 'body.metadata["a.b"]'],
    ['a slash', { metadata: { 'a/b': long } }, 'body.metadata["a/b"]'],
    ['brackets and a quote', { metadata: { 'a["b"]': long } }, 'body.metadata["a[\\"b\\"]"]'],
    ['a backslash', { metadata: { 'a\\b': long } }, 'body.metadata["a\\\\b"]'],
    ['only digits', { metadata: { 7: long } }, 'body.metadata["7"]'],
    ['a space', { metadata: { 'a b': long } }, 'body.metadata["a b"]'],
    ['a plain name with a hyphen and letters not ASCII', { metadata: { 'prénom-2': long } }, 'body.metadata.prénom-2'],
  ]
  for (const [what, fields, path] of cases) {
    const problem = await send(fields)
    t.match(problem.errors, [{ path, message: /^Too big/ }], what)
    t.equal(problem.detail, `${path}: ${problem.errors[0]!.message}`, `${what}: the detail names it alike`)
  }
  const two = await send({ metadata: { 'a.b': long, a: long } })
  t.same(two.errors.map(e => e.path).sort(), ['body.metadata.a', 'body.metadata["a.b"]'], 'a key "a.b" and a key "a" are two paths')
})

t.test('a query string or header refused by its schema is named alike', async t => {
  const res = await app.inject({ method: 'GET', url: '/v1/campaigns?limit=0', headers: { authorization } })
  t.equal(res.statusCode, 400)
  t.match(res.json(), { errors: [{ path: 'querystring.limit' }] })
})

t.test('a campaign names its faults alike: a refused recipient\'s reason and a refused campaign\'s paths', async t => {
  const campaign = (recipients: object[], extra: object = {}) => app.inject({ method: 'POST', url: '/v1/campaigns', headers: { authorization },
    payload: { name: 'paths', message: { sms: { text: 'Hi {{name}}' } }, recipients, ...extra } })
  const res = await campaign([{ to: '+990123400' }, { to: '+990123401', vars: { '': 'x', 'a.b': 'v'.repeat(1001) } }])
  t.equal(res.statusCode, 202, res.body)
  t.same(res.json().rejected, [{ line: 2, reason: 'vars[""]: Too small: expected string to have >=1 characters; vars["a.b"]: Too big: expected string to have <=1000 characters' }],
    'what is wrong with the key, not "Invalid key in record", and the key quoted')
  const refused = await campaign([{ to: '+990123400' }], { metadata: { 'a.b': 'x' } })
  t.equal(refused.statusCode, 400, refused.body)
  t.match(refused.json(), { detail: 'the campaign is not valid: Unrecognized key: "metadata"', errors: [{ path: 'body', message: 'Unrecognized key: "metadata"' }] })
})
