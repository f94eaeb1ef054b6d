import { parsePhoneNumberWithError, ParseError } from 'libphonenumber-js/max'
import { LRUCache } from 'lru-cache'
import { InvalidPhoneNumberError } from './errors.js'

// +990 is not an assigned country code, but it is the test range of Vonage's virtual operator. At least 5 digits
// in all, as CAMARA's phoneNumber pattern (^\+[1-9][0-9]{4,14}$) demands: a shorter one would be accepted here and
// refused by the upstream.
const TEST_RANGE = /^\+990\d{2,12}$/
const SEPARATORS = /[\s().-]/g

/**
 * Normalizes a phone number to E.164. Accepts it with or without the leading "+",
 * with spaces, dots, dashes or brackets; the +990 test range is always accepted.
 * Throws InvalidPhoneNumberError for anything else that is not a valid number.
 */
export function normalizePhoneNumber (input: string): string {
  const known = NORMALIZED.get(input)
  if (known !== undefined) return known
  const e164 = normalize(input)
  NORMALIZED.set(input, e164)
  return e164
}

/**
 * Numbers normalized lately, by their input: libphonenumber's parse and check of a real number take 7 to 16 µs of
 * CPU (bench/phone), on every request that names it; the same number asked again within minutes (the reachability
 * cache's window) costs a lookup here. Only valid numbers are kept: a refusal is worked out again, as it is rare.
 * Normalizing is a pure function of the input (the numbering plans are those of the installed libphonenumber-js).
 */
const NORMALIZED = new LRUCache<string, string>({ max: 20_000 })

function normalize (input: string): string {
  const compact = input.trim().replace(SEPARATORS, '')
  if (compact.length === 0) throw new InvalidPhoneNumberError(input, 'it is empty')
  if (compact.startsWith('00')) throw new InvalidPhoneNumberError(input, 'use the international "+" form, not a "00" prefix')
  const withPlus = compact.startsWith('+') ? compact : `+${compact}`
  if (!/^\+\d{2,15}$/.test(withPlus)) throw new InvalidPhoneNumberError(input, 'an E.164 number has a "+" and 2 to 15 digits')
  if (withPlus.startsWith('+990')) {
    if (TEST_RANGE.test(withPlus)) return withPlus
    throw new InvalidPhoneNumberError(input, 'a number of the +990 test range has 5 to 15 digits')
  }
  try {
    const parsed = parsePhoneNumberWithError(withPlus)
    if (!parsed.isValid()) throw new InvalidPhoneNumberError(input, 'no such number exists in its country\'s numbering plan')
    return parsed.number
  } catch (err) {
    if (err instanceof ParseError) throw new InvalidPhoneNumberError(input, err.message.toLowerCase().replaceAll('_', ' '))
    throw err
  }
}

/** For logs: keeps the country code and the last three digits, e.g. +44*******123. */
export function maskPhoneNumber (e164: string): string {
  if (e164.length <= 6) return e164.replace(/\d/g, '*')
  const cc = e164.startsWith('+') ? e164.slice(0, 3) : e164.slice(0, 2)
  return cc + '*'.repeat(e164.length - cc.length - 3) + e164.slice(-3)
}
