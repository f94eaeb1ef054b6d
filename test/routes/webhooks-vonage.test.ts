import { createHash } from 'node:crypto'
import { SignJWT } from 'jose'
import t, { type Test } from 'tap'
import { buildTestApp } from '../helpers/app.js'

const SECRET = 'vonage-signature-secret-for-webhook-tests'
const URL = '/v1/webhooks/vonage/messages'

async function sign (body: string, secret = SECRET): Promise<string> {
  const jwt = await new SignJWT({ payload_hash: createHash('sha256').update(body).digest('hex') })
    .setProtectedHeader({ alg: 'HS256' }).setIssuedAt().sign(new TextEncoder().encode(secret))
  return `Bearer ${jwt}`
}

async function setup (t: Test) {
  const { app } = await buildTestApp({ VONAGE_SIGNATURE_SECRET: SECRET })
  t.teardown(() => app.close())
  const post = (payload: string | undefined, authorization: string) => app.inject({
    method: 'POST', url: URL,
    headers: { authorization, ...(payload === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(payload === undefined ? {} : { payload }),
  })
  return { post }
}

const NOT_A_STATUS = JSON.stringify({ status: 42, unexpected: true })
const A_STATUS = JSON.stringify({ message_uuid: 'aaaaaaaa-bbbb-4ccc-8ddd-0123456789ab', timestamp: '2026-11-25T10:42:07.000Z', status: 'delivered' })

t.test('a forged request is 401 before its body is validated: no field errors', async t => {
  const { post } = await setup(t)
  const forged: Record<string, [string | undefined, string]> = {
    'another secret, invalid body': [NOT_A_STATUS, await sign(NOT_A_STATUS, 'another-secret-another-secret-another')],
    'a hash of another body, invalid body': [NOT_A_STATUS, await sign(A_STATUS)],
    'not a JWT, invalid body': [NOT_A_STATUS, 'Bearer abc.def.ghi'],
    'not a JWT, empty object': ['{}', 'Bearer abc.def.ghi'],
    'not a JWT, malformed JSON': ['{"status":', 'Bearer abc.def.ghi'],
    'a hash of another body, malformed JSON': ['{"status":', await sign(A_STATUS)],
    'not a JWT, no body': [undefined, 'Bearer abc.def.ghi'],
    'a hash of a body, no body sent': [undefined, await sign(A_STATUS)],
    'the right secret but no payload_hash, a good body': [A_STATUS, `Bearer ${await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256' }).setIssuedAt().sign(new TextEncoder().encode(SECRET))}`],
  }
  for (const [what, [payload, authorization]] of Object.entries(forged)) {
    const res = await post(payload, authorization)
    t.equal(res.statusCode, 401, what)
    t.equal(res.headers['content-type'], 'application/problem+json; charset=utf-8')
    const problem = res.json()
    t.match(problem, { type: /\/unauthorized$/, status: 401, detail: /signature/ }, what)
    t.notOk(problem.errors, `${what}: no field errors`)
  }
})

t.test('a signed request is still validated: a bad body is 400, malformed JSON is 400, a good one 204', async t => {
  const { post } = await setup(t)
  const invalid = await post(NOT_A_STATUS, await sign(NOT_A_STATUS))
  t.equal(invalid.statusCode, 400)
  t.match(invalid.json(), { type: /validation-error$/, errors: [{ path: /^body\./ }] })
  const malformed = await post('{"status":', await sign('{"status":'))
  t.equal(malformed.statusCode, 400)
  t.match(malformed.json(), { type: /malformed-json$/ })
  t.equal((await post(A_STATUS, await sign(A_STATUS))).statusCode, 204)
})
