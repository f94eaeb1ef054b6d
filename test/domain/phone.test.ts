import t from 'tap'
import { InvalidPhoneNumberError } from '../../src/domain/errors.js'
import { maskPhoneNumber, normalizePhoneNumber } from '../../src/domain/phone.js'

t.test('valid numbers are normalized to E.164, with or without "+" and separators', async t => {
  t.equal(normalizePhoneNumber('+447911123456'), '+447911123456')
  t.equal(normalizePhoneNumber('447911123456'), '+447911123456')
  t.equal(normalizePhoneNumber(' +44 7911 123-456 '), '+447911123456')
  t.equal(normalizePhoneNumber('+1 (415) 555-2671'), '+14155552671')
})

t.test('the +990 test range is accepted although 990 is no country code', async t => {
  t.equal(normalizePhoneNumber('+990123400'), '+990123400')
  t.equal(normalizePhoneNumber('990123499'), '+990123499')
  t.equal(normalizePhoneNumber('+99012'), '+99012')
  t.equal(normalizePhoneNumber('+990123456789012'), '+990123456789012')
})

t.test('a +990 number shorter than CAMARA\'s 5 digits is refused with a reason', async t => {
  for (const short of ['+9901', '+990', '9901']) {
    const err = (() => { try { normalizePhoneNumber(short) } catch (e) { return e } })()
    t.ok(err instanceof InvalidPhoneNumberError, short)
    t.match((err as Error).message, /5 to 15 digits/, short)
  }
})

t.test('every accepted number matches CAMARA\'s phoneNumber pattern', async t => {
  const camara = /^\+[1-9][0-9]{4,14}$/
  for (let digits = 1; digits <= 16; digits++) {
    for (const input of [`+990${'1'.repeat(digits)}`, `+44${'7'.repeat(digits)}`]) {
      let normalized: string | undefined
      try { normalized = normalizePhoneNumber(input) } catch { continue }
      t.match(normalized, camara, input)
    }
  }
})

t.test('invalid numbers are refused with a reason', async t => {
  for (const bad of ['', '   ', 'abc', '+', '+4412', '00447911123456', '+99912345', '+44791112345678901', '+447700900123']) {
    t.throws(() => normalizePhoneNumber(bad), InvalidPhoneNumberError, `refuses ${JSON.stringify(bad)}`)
  }
})

t.test('masking keeps the country code and the last three digits', async t => {
  t.equal(maskPhoneNumber('+447911123456'), '+44*******456')
  t.equal(maskPhoneNumber('+990123400'), '+99****400')
})

t.test('a refused number is quoted back with its invisible characters shown: a bidi mark or zero-width space as \\uXXXX', async t => {
  const error = new InvalidPhoneNumberError('\u202a+99012\u200b3400\u0000', 'it holds characters that are not digits')
  t.equal(error.message, '"\\u202a+99012\\u200b3400\\u0000" is not a valid phone number: it holds characters that are not digits')
})

t.test('a number normalized lately is answered alike from the cache of numbers; a refused one stays refused', async t => {
  for (const input of ['+44 7911 123456', '447911123456', '+447911123456']) {
    t.equal(normalizePhoneNumber(input), '+447911123456', `${input}: first`)
    t.equal(normalizePhoneNumber(input), '+447911123456', `${input}: again`)
  }
  for (let i = 0; i < 2; i++) t.throws(() => normalizePhoneNumber('+44123'), InvalidPhoneNumberError, `a refusal, time ${i + 1}`)
})
