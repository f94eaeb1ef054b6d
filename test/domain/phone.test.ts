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
  t.equal(normalizePhoneNumber('+9901'), '+9901')
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
