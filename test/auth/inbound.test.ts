import t from 'tap'
import { type CryptoKey, exportJWK, exportSPKI, generateKeyPair, type JWTPayload, SignJWT } from 'jose'
import { InboundAuth, type InboundAuthOptions } from '../../src/auth/inbound.js'
import { UnauthorizedError, AuthUnavailableError } from '../../src/domain/errors.js'
import { buildTestApp } from '../helpers/app.js'
import { refusingUrl, startFakeJwks } from '../fakes/jwks.js'

const HS256_SECRET = 'inbound-auth-test-secret-of-32-chars-or-more'
const ISSUER = 'https://idp.example.test/'
const AUDIENCE = 'reachroute'

const rsa = await generateKeyPair('RS256', { extractable: true })
const otherRsa = await generateKeyPair('RS256', { extractable: true })
const publicKeyPem = await exportSPKI(rsa.publicKey)
const KID = 'key-1'
const jwk = { ...await exportJWK(rsa.publicKey), kid: KID, alg: 'RS256', use: 'sig' }

const now = () => Math.floor(Date.now() / 1000)
const base64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url')

/** A token with a valid issuer, audience and expiry unless the claims say otherwise; RS256 with kid "key-1" by default. */
async function token (claims: JWTPayload = {}, options: { alg?: string, key?: CryptoKey | Uint8Array, kid?: string | null } = {}): Promise<string> {
  const alg = options.alg ?? 'RS256'
  const kid = options.kid === null ? {} : { kid: options.kid ?? KID }
  return new SignJWT({ iss: ISSUER, aud: AUDIENCE, sub: 'caller-1', scope: 'reachability:read', iat: now(), exp: now() + 600, ...claims })
    .setProtectedHeader({ alg, typ: 'JWT', ...kid })
    .sign(options.key ?? rsa.privateKey)
}

function options (extra: Partial<InboundAuthOptions>): InboundAuthOptions {
  return { issuer: ISSUER, audience: AUDIENCE, jwksTimeoutMs: 500, jwksCooldownMs: 30_000, ...extra }
}

/** Rejects when the promise takes longer than ms: a call that hangs fails the test instead of the run. */
async function within<T> (ms: number, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`still pending after ${ms} ms`)), ms) })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}

const bearer = (jwt: string) => `Bearer ${jwt}`

t.test('AUTH_PUBLIC_KEY (RS256 PEM)', async t => {
  const auth = await InboundAuth.create(options({ publicKey: publicKeyPem }))

  t.test('accepts a valid token and reads its subject and scopes', async t => {
    const principal = await auth.authenticate(bearer(await token({ scope: 'reachability:read  notifications:write ' })))
    t.equal(principal.subject, 'caller-1')
    t.same([...principal.scopes].sort(), ['notifications:write', 'reachability:read'], 'space separated, extra spaces ignored')
  })

  t.test('a PEM with escaped newlines, as one-line environment files carry it, works too', async t => {
    const oneLine = await InboundAuth.create(options({ publicKey: publicKeyPem.replace(/\n/g, '\\n') }))
    t.ok(await oneLine.authenticate(bearer(await token())))
  })

  t.test('a token without a scope claim, or with a non-string one, has no scopes', async t => {
    t.equal((await auth.authenticate(bearer(await token({ scope: undefined })))).scopes.size, 0)
    t.equal((await auth.authenticate(bearer(await token({ scope: ['reachability:read'] })))).scopes.size, 0)
  })

  t.test('refuses, with 401', async t => {
    const refusals: [string, () => Promise<string>][] = [
      ['alg "none"', async () => `${base64url({ alg: 'none', typ: 'JWT' })}.${base64url({ iss: ISSUER, aud: AUDIENCE, scope: 'reachability:read', exp: now() + 600 })}.`],
      ['HS256 signed with the public key\'s PEM text as the secret', () => token({}, { alg: 'HS256', key: new TextEncoder().encode(publicKeyPem) })],
      ['a token signed by another key', () => token({}, { key: otherRsa.privateKey })],
      ['an expired token', () => token({ iat: now() - 1200, exp: now() - 600 })],
      ['a token not valid before an hour from now', () => token({ nbf: now() + 3600 })],
      ['a wrong issuer', () => token({ iss: 'https://evil.example.test/' })],
      ['a wrong audience', () => token({ aud: 'someone-else' })],
      ['no exp', () => token({ exp: undefined })],
      ['a tampered payload', async () => {
        const [header, , signature] = (await token()).split('.')
        return `${header}.${base64url({ iss: ISSUER, aud: AUDIENCE, scope: 'ops', exp: now() + 600 })}.${signature}`
      }],
    ]
    for (const [name, make] of refusals) {
      await t.rejects(auth.authenticate(bearer(await make())), UnauthorizedError, name)
    }
  })

  t.test('refuses a missing or garbled Authorization header', async t => {
    for (const header of [undefined, '', 'Bearer', 'Bearer ', 'Basic dXNlcjpwYXNz', 'Bearer not-a-jwt', 'Bearer a.b', 'Bearer a.b.c.d',
      `Token ${await token()}`, 'Bearer abc.def.ghi', `Bearer ${await token()} trailing`]) {
      const refused = await auth.authenticate(header).then(() => undefined, (err: unknown) => err)
      t.type(refused, UnauthorizedError, JSON.stringify(header))
      t.equal((refused as UnauthorizedError).status, 401)
    }
  })

  t.test('a refusal carries the WWW-Authenticate challenge and says why', async t => {
    const refused = await auth.authenticate(bearer(await token({ iat: now() - 1200, exp: now() - 600 }))).catch((err: unknown) => err)
    t.match(refused, { status: 401, headers: { 'www-authenticate': /^Bearer / }, message: /expired/ })
  })
})

t.test('AUTH_HS256_SECRET', async t => {
  const secret = new TextEncoder().encode(HS256_SECRET)
  const auth = await InboundAuth.create(options({ hs256Secret: HS256_SECRET }))

  t.test('accepts a token signed with the secret', async t => {
    const principal = await auth.authenticate(bearer(await token({ scope: 'ops' }, { alg: 'HS256', key: secret, kid: null })))
    t.same([...principal.scopes], ['ops'])
  })

  t.test('issues tokens it accepts, carrying the issuer and audience it checks', async t => {
    const issued = await auth.issue({ sub: 'dev', scope: 'reachability:read ops', ttlSeconds: 60, issuer: ISSUER, audience: AUDIENCE })
    const principal = await auth.authenticate(bearer(issued))
    t.equal(principal.subject, 'dev')
    t.same([...principal.scopes], ['reachability:read', 'ops'])
  })

  t.test('refuses another secret, an RS256 token, and alg "none"', async t => {
    await t.rejects(auth.authenticate(bearer(await token({}, { alg: 'HS256', key: new TextEncoder().encode('x'.repeat(40)), kid: null }))), UnauthorizedError)
    await t.rejects(auth.authenticate(bearer(await token())), UnauthorizedError)
    await t.rejects(auth.authenticate(bearer(`${base64url({ alg: 'none' })}.${base64url({ exp: now() + 600 })}.`)), UnauthorizedError)
  })

  t.test('refuses a token without a subject: Idempotency-Keys and rate limits belong to it', async t => {
    for (const sub of [undefined, '']) {
      await t.rejects(auth.authenticate(bearer(await token({ sub }, { alg: 'HS256', key: secret }))), { name: 'UnauthorizedError', message: /no "sub" claim/ })
    }
    for (const [sub, what] of [[42, 'a number'], [['a'], 'a list'], [{ id: 'a' }, 'an object']] as const) {
      await t.rejects(auth.authenticate(bearer(await token({ sub: sub as unknown as string }, { alg: 'HS256', key: secret }))),
        { name: 'UnauthorizedError', message: /"sub" claim is a (number|list|object), not a string/ }, what)
    }
  })

  t.test('refuses a subject that is not well-formed Unicode: in UTF-8 two such subjects would be one caller', async t => {
    for (const sub of ['\ud800', 'caller-\udfff', '\udc00\ud800']) {
      await t.rejects(auth.authenticate(bearer(await token({ sub }, { alg: 'HS256', key: secret }))), { name: 'UnauthorizedError', message: /lone surrogate/ }, JSON.stringify(sub))
    }
    const emoji = await auth.authenticate(bearer(await token({ sub: 'caller-\u{1F600}' }, { alg: 'HS256', key: secret })))
    t.equal(emoji.subject, 'caller-\u{1F600}', 'a surrogate pair is a character like any other')
  })

  t.test('refuses a subject with a control character: a NUL would reach another caller\'s Idempotency-Keys', async t => {
    for (const sub of ['victim\u0000campaign', 'caller\n', '\u0085caller', 'a\u007fb']) {
      await t.rejects(auth.authenticate(bearer(await token({ sub }, { alg: 'HS256', key: secret }))), { name: 'UnauthorizedError', message: /control character/ }, JSON.stringify(sub))
    }
  })

  t.test('tolerates 30 s of clock difference with the issuer, no more', async t => {
    t.ok(await auth.authenticate(bearer(await token({ sub: 'skewed', nbf: now() + 5 }, { alg: 'HS256', key: secret }))), 'nbf 5 s ahead: taken')
    await t.rejects(auth.authenticate(bearer(await token({ sub: 'ahead', nbf: now() + 60 }, { alg: 'HS256', key: secret }))), UnauthorizedError, 'nbf a minute ahead: refused')
    t.ok(await auth.authenticate(bearer(await token({ sub: 'late', iat: now() - 600, exp: now() - 10 }, { alg: 'HS256', key: secret }))), 'expired 10 s ago: taken')
    await t.rejects(auth.authenticate(bearer(await token({ sub: 'gone', iat: now() - 600, exp: now() - 60 }, { alg: 'HS256', key: secret }))), UnauthorizedError, 'expired a minute ago: refused')
  })

  t.test('refuses an expired token and one without exp', async t => {
    await t.rejects(auth.authenticate(bearer(await token({ iat: now() - 1200, exp: now() - 600 }, { alg: 'HS256', key: secret }))), UnauthorizedError)
    await t.rejects(auth.authenticate(bearer(await token({ exp: undefined }, { alg: 'HS256', key: secret }))), UnauthorizedError)
  })

  t.test('without any AUTH_* source a random secret is made: its own tokens pass, others do not', async t => {
    const random = await InboundAuth.create(options({ issuer: undefined, audience: undefined }))
    t.ok(await random.authenticate(bearer(await random.issue({ sub: 'dev', scope: 'ops', ttlSeconds: 60 }))))
    await t.rejects(random.authenticate(bearer(await auth.issue({ sub: 'dev', scope: 'ops', ttlSeconds: 60 }))), UnauthorizedError)
  })
})

t.test('AUTH_JWKS_URL', async t => {
  const jwks = await startFakeJwks([jwk])
  t.teardown(() => jwks.close())

  t.test('accepts a token whose kid is in the key set', async t => {
    const auth = await InboundAuth.create(options({ jwksUrl: jwks.url }))
    const principal = await auth.authenticate(bearer(await token({ scope: 'reachability:read campaigns:read' })))
    t.same([...principal.scopes], ['reachability:read', 'campaigns:read'])
    t.match(jwks.requests, ['GET /.well-known/jwks.json'])
  })

  t.test('refuses an unknown kid, an HS256 token, alg "none", a wrong issuer or audience, and a missing exp', async t => {
    const auth = await InboundAuth.create(options({ jwksUrl: jwks.url }))
    await t.rejects(auth.authenticate(bearer(await token({}, { kid: 'no-such-key' }))), UnauthorizedError, 'unknown kid')
    await t.rejects(auth.authenticate(bearer(await token({}, { key: otherRsa.privateKey }))), UnauthorizedError, 'another key, known kid')
    await t.rejects(auth.authenticate(bearer(await token({}, { alg: 'HS256', key: new TextEncoder().encode(publicKeyPem) }))), UnauthorizedError, 'HS256')
    await t.rejects(auth.authenticate(bearer(`${base64url({ alg: 'none', kid: KID })}.${base64url({ iss: ISSUER, aud: AUDIENCE, exp: now() + 600 })}.`)),
      UnauthorizedError, 'alg none')
    await t.rejects(auth.authenticate(bearer(await token({ iss: 'https://evil.example.test/' }))), UnauthorizedError, 'issuer')
    await t.rejects(auth.authenticate(bearer(await token({ aud: 'someone-else' }))), UnauthorizedError, 'audience')
    await t.rejects(auth.authenticate(bearer(await token({ exp: undefined }))), UnauthorizedError, 'no exp')
  })

  t.test('a verified token is remembered: the key set is not fetched again for it', async t => {
    const auth = await InboundAuth.create(options({ jwksUrl: jwks.url }))
    const jwt = await token()
    await auth.authenticate(bearer(jwt))
    const fetched = jwks.requests.length
    jwks.mode = 'down'
    t.teardown(() => { jwks.mode = 'up' })
    t.ok(await auth.authenticate(bearer(jwt)))
    t.equal(jwks.requests.length, fetched)
  })

  t.test('a slow key set rejects with 503 within about the configured timeout, never hangs', async t => {
    const slow = await startFakeJwks([jwk])
    t.teardown(() => slow.close())
    slow.mode = 'slow'
    slow.delayMs = 10_000
    const auth = await InboundAuth.create(options({ jwksUrl: slow.url, jwksTimeoutMs: 300 }))
    const started = Date.now()
    const refused = await within(3000, auth.authenticate(bearer(await token())).catch((err: unknown) => err))
    const elapsed = Date.now() - started
    t.type(refused, AuthUnavailableError)
    t.match(refused, { status: 503, headers: { 'retry-after': /^\d+$/ } })
    t.ok(elapsed >= 250 && elapsed < 1300, `rejected after ${elapsed} ms (timeout 300 ms)`)
  })

  t.test('a key set endpoint that refuses connections rejects with 503 at once', async t => {
    const auth = await InboundAuth.create(options({ jwksUrl: await refusingUrl(), jwksTimeoutMs: 300 }))
    const refused = await within(3000, auth.authenticate(bearer(await token())).catch((err: unknown) => err))
    t.type(refused, AuthUnavailableError)
  })

  t.test('a key set endpoint answering 503 or garbage rejects at once with 503 (our outage, not a bad token)', async t => {
    for (const mode of ['down', 'garbage'] as const) {
      const broken = await startFakeJwks([jwk])
      t.teardown(() => broken.close())
      broken.mode = mode
      const auth = await InboundAuth.create(options({ jwksUrl: broken.url, jwksTimeoutMs: 300 }))
      const refused = await within(3000, auth.authenticate(bearer(await token())).then(() => undefined, (err: unknown) => err))
      t.ok(refused instanceof AuthUnavailableError,
        `${mode}: refused with ${(refused as Error | undefined)?.name}: ${(refused as Error | undefined)?.message}`)
    }
  })

  t.test('through HTTP: a slow key set answers a 503 problem; once it answers, the token passes', async t => {
    const idp = await startFakeJwks([jwk])
    t.teardown(() => idp.close())
    idp.mode = 'slow'
    const { app } = await buildTestApp({ AUTH_HS256_SECRET: undefined, AUTH_JWKS_URL: idp.url, AUTH_JWKS_TIMEOUT_MS: '300', AUTH_ISSUER: ISSUER, AUTH_AUDIENCE: AUDIENCE })
    t.teardown(() => app.close())
    const authorization = bearer(await token())
    const unavailable = await within(3000, app.inject({ url: '/v1/reachability/+990123400', headers: { authorization } }))
    t.equal(unavailable.statusCode, 503)
    t.equal(unavailable.headers['content-type'], 'application/problem+json; charset=utf-8')
    t.ok(unavailable.headers['retry-after'])
    idp.mode = 'up'
    const ok = await app.inject({ url: '/v1/reachability/+990123400', headers: { authorization } })
    t.equal(ok.statusCode, 200)
  })

  t.test('through HTTP: a key set down, refusing or slow never holds a request past the timeout, even 20 at once', async t => {
    const idp = await startFakeJwks([jwk])
    t.teardown(() => idp.close())
    // A long timeout where the answer must not wait for it, a short one where it must end in it.
    const env = { AUTH_HS256_SECRET: undefined, AUTH_JWKS_TIMEOUT_MS: '5000', AUTH_ISSUER: ISSUER, AUTH_AUDIENCE: AUDIENCE }
    const timed = async (app: Awaited<ReturnType<typeof buildTestApp>>['app'], authorization: string) => {
      const started = Date.now()
      const res = await within(3000, app.inject({ url: '/v1/reachability/+990123400', headers: { authorization } }))
      return { res, ms: Date.now() - started }
    }

    for (const mode of ['down', 'refusing'] as const) {
      idp.mode = 'down'
      const { app } = await buildTestApp({ ...env, AUTH_JWKS_URL: mode === 'refusing' ? await refusingUrl() : idp.url })
      t.teardown(() => app.close())
      const { res, ms } = await timed(app, bearer(await token()))
      t.equal(res.statusCode, 503, `${mode}: 503`)
      t.equal(res.headers['content-type'], 'application/problem+json; charset=utf-8')
      t.match(res.json(), { type: /auth-unavailable$/, title: 'Token signing keys unavailable', detail: /AUTH_JWKS_URL/ })
      t.ok(ms < 1000, `${mode}: answered in ${ms} ms, without waiting for the 5 s timeout`)
    }

    idp.mode = 'slow'
    const { app } = await buildTestApp({ ...env, AUTH_JWKS_URL: idp.url, AUTH_JWKS_TIMEOUT_MS: '300' })
    t.teardown(() => app.close())
    const started = Date.now()
    const answers = await within(3000, Promise.all(Array.from({ length: 20 }, async (_, i) =>
      app.inject({ url: '/v1/reachability/+990123400', headers: { authorization: bearer(await token({ sub: `caller-${i}` })) } }))))
    const elapsed = Date.now() - started
    t.same(answers.map(a => a.statusCode), Array(20).fill(503), 'each a 503, none hanging')
    t.ok(elapsed < 1500, `20 requests at once answered within ${elapsed} ms (timeout 300 ms)`)

    // Refused on their face, without asking the slow key set.
    const patient = (await buildTestApp({ ...env, AUTH_JWKS_URL: idp.url })).app
    t.teardown(() => patient.close())
    const faceRefusals: [string, string][] = [
      ['alg "none"', `${base64url({ alg: 'none', kid: KID })}.${base64url({ iss: ISSUER, aud: AUDIENCE, scope: 'reachability:read', exp: now() + 600 })}.`],
      ['HS256 signed with the public key', await token({}, { alg: 'HS256', key: new TextEncoder().encode(publicKeyPem) })],
      ['not a JWT', 'not-a-jwt'],
    ]
    for (const [name, jwt] of faceRefusals) {
      const { res, ms } = await timed(patient, bearer(jwt))
      t.equal(res.statusCode, 401, `${name}: 401`)
      t.match(res.headers['www-authenticate'], /^Bearer /)
      t.equal(res.headers['content-type'], 'application/problem+json; charset=utf-8')
      t.ok(ms < 1000, `${name}: refused in ${ms} ms, not after the 5 s timeout`)
    }
  })

  t.test('through HTTP: each refused token is a 401 problem with the challenge', async t => {
    const idp = await startFakeJwks([jwk])
    t.teardown(() => idp.close())
    const { app } = await buildTestApp({ AUTH_HS256_SECRET: undefined, AUTH_JWKS_URL: idp.url, AUTH_JWKS_TIMEOUT_MS: '300', AUTH_ISSUER: ISSUER, AUTH_AUDIENCE: AUDIENCE })
    t.teardown(() => app.close())
    const refusals: [string, string][] = [
      ['alg "none"', `${base64url({ alg: 'none', kid: KID })}.${base64url({ iss: ISSUER, aud: AUDIENCE, scope: 'reachability:read', exp: now() + 600 })}.`],
      ['HS256 signed with the public key', await token({}, { alg: 'HS256', key: new TextEncoder().encode(publicKeyPem) })],
      ['expired', await token({ iat: now() - 1200, exp: now() - 600 })],
      ['not yet valid', await token({ nbf: now() + 3600 })],
      ['wrong issuer', await token({ iss: 'https://evil.example.test/' })],
      ['wrong audience', await token({ aud: 'someone-else' })],
      ['unknown kid', await token({}, { kid: 'no-such-key' })],
      ['signed by another key under a known kid', await token({}, { key: otherRsa.privateKey })],
    ]
    for (const [name, jwt] of refusals) {
      const res = await within(3000, app.inject({ url: '/v1/reachability/+990123400', headers: { authorization: bearer(jwt) } }))
      t.equal(res.statusCode, 401, name)
      t.match(res.headers['www-authenticate'], /^Bearer /, `${name}: challenge`)
      t.match(res.json(), { type: /unauthorized$/, status: 401 }, `${name}: problem`)
    }
    t.equal((await app.inject({ url: '/v1/reachability/+990123400', headers: { authorization: bearer(await token()) } })).statusCode, 200, 'a good token passes')
  })
})
