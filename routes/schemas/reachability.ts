import { z } from 'zod'
import { normalizePhoneNumber } from '../../src/domain/phone.js'

export const PHONE_NUMBER_META = {
  description: 'A phone number in E.164 form; the leading "+" is optional. The +990 test range of the sandbox is accepted.',
  examples: ['+447911123456', '+990123411'],
}

export const PhoneNumberInput = z.string().min(1).max(32).meta(PHONE_NUMBER_META)

const MAX_AGE_META = {
  description: 'Accept a cached answer only if it is at most this many seconds old (0 forces a fresh upstream lookup)',
  examples: [60],
}

const MaxAgeSeconds = z.number({ error: 'must be a whole number of seconds from 0 to 86400' }).int().min(0).max(86400)

/** max_age in a JSON body: a JSON number, nothing coerced (null, "", true or [7] would all have become 0 or 7). */
export const MaxAge = MaxAgeSeconds.optional().meta(MAX_AGE_META)

/**
 * A whole number in a query string: digits only; "", " 5", "1e3" or "0x10" stay strings and fail as not a number
 * (z.coerce.number would take them as 0, 5, 1000 and 16). The meta sits on the inner schema: the spec describes a
 * request by its input, and zod drops a pipe's examples there.
 */
function digitsOnly (schema: z.ZodNumber) {
  return z.preprocess(value => typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value, schema)
}

/** max_age in a query string. */
export const MaxAgeQuery = digitsOnly(MaxAgeSeconds.meta(MAX_AGE_META)).optional()

/** An integer query parameter from min to max, `fallback` when left out (also its example in the spec). */
export function queryInt ({ min, max, fallback, description }: { min: number, max: number, fallback: number, description: string }) {
  const inner = z.number({ error: `must be a whole number from ${min} to ${max}` }).int().min(min).max(max)
  return digitsOnly(inner.meta({ description, examples: [fallback], default: fallback })).default(fallback)
}

export const ReachabilityStatusSchema = z.object({
  code: z.string().meta({
    description: 'Insight status: OK, PARTIAL_SUCCESS, NO_COVERAGE, INVALID_PURPOSE, UNAUTHORIZED, INTERNAL_ERROR, SUPPLIER_ERROR, NOT_FOUND, INVALID_NUMBER_FORMAT, UNSUPPORTED_NETWORK_TYPE; any other code means "not OK"',
    examples: ['OK'],
  }),
  message: z.string().meta({ description: 'The status in words, as the upstream gave it', examples: ['Success'] }),
}).meta({ description: 'The outcome of the lookup: OK (or PARTIAL_SUCCESS) means is_reachable and connectivity are known' })

export const ReachabilitySchema = z.object({
  phone_number: z.string().meta({ description: 'The number in E.164 form', examples: ['+990123411'] }),
  is_reachable: z.boolean().meta({ description: 'True when the device is attached to the mobile network', examples: [true] }),
  connectivity: z.array(z.string()).meta({
    description: 'What the device is connected for: DATA and/or SMS (empty when not reachable; new values may appear)',
    examples: [['SMS']],
  }),
  latest_status_at: z.string().nullable().meta({ description: 'When the network last updated the device\'s connectivity status', examples: ['2026-11-25T10:41:38.657Z'] }),
  status: ReachabilityStatusSchema,
  checked_at: z.string().meta({ description: 'When reachroute asked the upstream', examples: ['2026-11-25T10:42:00.000Z'] }),
  source: z.enum(['cache', 'upstream', 'stale_cache']).meta({
    description: 'Where this answer came from: the cache, a fresh upstream lookup, or a stale cached entry served because the upstream failed',
    examples: ['upstream'],
  }),
}).meta({ id: 'Reachability', description: 'Whether a phone is on the mobile network, and for what' })

/** A phone number, normalized to E.164 while it is parsed; an invalid one fails validation with the reason. */
export const PhoneNumber = PhoneNumberInput.transform((input, ctx) => {
  try {
    return normalizePhoneNumber(input)
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message })
    return z.NEVER
  }
})
