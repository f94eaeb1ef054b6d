import t from 'tap'
import { decodeProtectedHeader, importSPKI, jwtVerify } from 'jose'
import { VonageJwtSigner } from '../../src/auth/vonage-jwt.js'
import { generateApplicationKeys } from '../fakes/vonage.js'

const keys = await generateApplicationKeys()
const publicKey = await importSPKI(keys.publicKey, 'RS256')
const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

t.test('an RS256 JWT with application_id, iat, jti and exp = iat + ttl', async t => {
  const now = Date.parse('2026-03-01T12:00:00.500Z')
  const signer = new VonageJwtSigner({ applicationId: 'app-1', privateKey: keys.privateKey, now: () => now })
  const token = await signer.token()
  t.same(decodeProtectedHeader(token), { alg: 'RS256', typ: 'JWT' })
  const { payload } = await jwtVerify(token, publicKey, { algorithms: ['RS256'], currentDate: new Date(now) })
  t.equal(payload.application_id, 'app-1')
  t.equal(payload.iat, Math.floor(now / 1000))
  t.equal(payload.exp, Math.floor(now / 1000) + 900, 'the SDKs\' 900 s by default')
  t.match(payload.jti, UUID_V4)
})

t.test('one token is shared, concurrent callers included, until 60 s before it expires', async t => {
  let now = Date.parse('2026-03-01T12:00:00.000Z')
  const signer = new VonageJwtSigner({ applicationId: 'app-1', privateKey: keys.privateKey, ttlSeconds: 300, now: () => now })
  const first = await Promise.all([signer.token(), signer.token(), signer.token()])
  t.equal(new Set(first).size, 1)
  now += 239_999
  t.equal(await signer.token(), first[0])
  now += 1
  const renewed = await signer.token()
  t.not(renewed, first[0])
  const { payload } = await jwtVerify(renewed, publicKey, { currentDate: new Date(now) })
  t.equal(payload.exp, now / 1000 + 300)
})

t.test('a key pasted with literal \\n escapes is read', async t => {
  const signer = new VonageJwtSigner({ applicationId: 'app-1', privateKey: keys.privateKey.replaceAll('\n', '\\n') })
  await t.resolves(jwtVerify(await signer.token(), publicKey))
})

t.test('a key that is no PKCS#8 PEM fails the signing', async t => {
  const signer = new VonageJwtSigner({ applicationId: 'app-1', privateKey: 'not a key' })
  await t.rejects(signer.token())
})
