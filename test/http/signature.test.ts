import t from 'tap'
import { createHash, createHmac } from 'node:crypto'
import { SignJWT, UnsecuredJWT } from 'jose'
import { hmacSignature, verifyHmacSignature, verifyVonageSignature } from '../../src/http/signature.js'

const secret = 'a-webhook-secret-of-some-length'
const body = '{"id":"n-1","title":"Grüße"}'

t.test('hmacSignature is sha256=<hex HMAC> of the exact body bytes', async t => {
  const expected = 'sha256=' + createHmac('sha256', secret).update(Buffer.from(body, 'utf8')).digest('hex')
  t.equal(hmacSignature(body, secret), expected)
  t.equal(hmacSignature(Buffer.from(body, 'utf8'), secret), expected, 'a string and its UTF-8 bytes sign the same')
})

t.test('verifyHmacSignature', async t => {
  const signature = hmacSignature(body, secret)
  t.ok(verifyHmacSignature(body, secret, signature), 'a good signature passes')
  t.ok(verifyHmacSignature(body, secret, signature.toUpperCase().replace('SHA256=', 'sha256=')), 'hex case does not matter')
  t.notOk(verifyHmacSignature(body, 'another-secret-of-some-length', signature), 'another secret fails')
  t.notOk(verifyHmacSignature(body + ' ', secret, signature), 'a changed body fails')
  t.notOk(verifyHmacSignature(body, secret, signature.slice(0, -2)), 'a truncated signature fails')
  t.notOk(verifyHmacSignature(body, secret, signature.slice('sha256='.length)), 'the bare hex without the scheme fails')
  t.notOk(verifyHmacSignature(body, secret, undefined), 'no signature fails')
  t.notOk(verifyHmacSignature(body, secret, ''), 'an empty signature fails')
})

t.test('verifyVonageSignature', async t => {
  const signatureSecret = 'vonage-signature-secret-0123456789'
  const raw = JSON.stringify({ message_uuid: 'aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee', status: 'delivered', client_ref: 'n-1' })
  const sha256 = (s: string) => createHash('sha256').update(s).digest('hex')
  const sign = (claims: Record<string, unknown>, key = signatureSecret) => new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setIssuedAt()
    .setIssuer('Vonage')
    .setJti(crypto.randomUUID())
    .sign(new TextEncoder().encode(key))

  t.test('a good signature with the body hash passes', async t => {
    t.equal(await verifyVonageSignature(`Bearer ${await sign({ payload_hash: sha256(raw) })}`, raw, signatureSecret), true)
    t.equal(await verifyVonageSignature(`bearer ${await sign({ payload_hash: sha256(raw) })}`, Buffer.from(raw), signatureSecret), true,
      'the scheme is case-insensitive and the body may be bytes')
  })

  t.test('a good signature without payload_hash fails: it would vouch for any body', async t => {
    t.equal(await verifyVonageSignature(`Bearer ${await sign({})}`, raw, signatureSecret), false)
  })

  t.test('another secret fails', async t => {
    const token = await sign({ payload_hash: sha256(raw) }, 'not-the-signature-secret-0123456789')
    t.equal(await verifyVonageSignature(`Bearer ${token}`, raw, signatureSecret), false)
  })

  t.test('a tampered body fails', async t => {
    const token = await sign({ payload_hash: sha256(raw) })
    t.equal(await verifyVonageSignature(`Bearer ${token}`, raw.replace('delivered', 'rejected'), signatureSecret), false)
  })

  t.test('a payload_hash that is not a string fails', async t => {
    t.equal(await verifyVonageSignature(`Bearer ${await sign({ payload_hash: 42 })}`, raw, signatureSecret), false)
  })

  t.test('an unsigned token (alg none) fails', async t => {
    const token = new UnsecuredJWT({ payload_hash: sha256(raw) }).setIssuedAt().encode()
    t.equal(await verifyVonageSignature(`Bearer ${token}`, raw, signatureSecret), false)
  })

  t.test('an expired token fails', async t => {
    const token = await new SignJWT({ payload_hash: sha256(raw) })
      .setProtectedHeader({ alg: 'HS256' })
      .setIssuedAt(1_700_000_000)
      .setExpirationTime(1_700_000_060)
      .sign(new TextEncoder().encode(signatureSecret))
    t.equal(await verifyVonageSignature(`Bearer ${token}`, raw, signatureSecret), false)
  })

  t.test('iat is required and bounds a replay: a day (and 5 min) old at most, Vonage\'s retry window; not in the future', async t => {
    const at = (iat: number | undefined) => {
      const jwt = new SignJWT({ payload_hash: sha256(raw) }).setProtectedHeader({ alg: 'HS256' })
      return (iat === undefined ? jwt : jwt.setIssuedAt(iat)).sign(new TextEncoder().encode(signatureSecret))
    }
    const now = Math.floor(Date.now() / 1000)
    t.equal(await verifyVonageSignature(`Bearer ${await at(undefined)}`, raw, signatureSecret), false, 'no iat')
    t.equal(await verifyVonageSignature(`Bearer ${await at(now - 365 * 86400)}`, raw, signatureSecret), false, 'a year old')
    t.equal(await verifyVonageSignature(`Bearer ${await at(now - 86400 - 400)}`, raw, signatureSecret), false, 'past the retry window')
    t.equal(await verifyVonageSignature(`Bearer ${await at(now - 86400)}`, raw, signatureSecret), true, 'a retry a day later')
    t.equal(await verifyVonageSignature(`Bearer ${await at(now + 20)}`, raw, signatureSecret), true, 'a clock 20 s ahead')
    t.equal(await verifyVonageSignature(`Bearer ${await at(now + 600)}`, raw, signatureSecret), false, 'ten minutes in the future')
  })

  t.test('a missing, malformed or non-Bearer header fails without throwing', async t => {
    const token = await sign({ payload_hash: sha256(raw) })
    t.equal(await verifyVonageSignature(undefined, raw, signatureSecret), false)
    t.equal(await verifyVonageSignature('', raw, signatureSecret), false)
    t.equal(await verifyVonageSignature(`Basic ${token}`, raw, signatureSecret), false)
    t.equal(await verifyVonageSignature('Bearer not.a.jwt', raw, signatureSecret), false)
    t.equal(await verifyVonageSignature(`Bearer ${token}`, raw, ''), false, 'an empty secret verifies nothing')
  })
})
