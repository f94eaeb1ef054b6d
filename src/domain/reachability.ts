// The normalized answer to "is this phone on the network, and for what?".

/** Insight status codes of Vonage Identity Insights; CAMARA errors are mapped onto the same codes. */
export const STATUS_CODES = [
  'OK',
  'PARTIAL_SUCCESS',
  'NO_COVERAGE',
  'INVALID_PURPOSE',
  'UNAUTHORIZED',
  'INTERNAL_ERROR',
  'SUPPLIER_ERROR',
  'NOT_FOUND',
  'INVALID_NUMBER_FORMAT',
  'UNSUPPORTED_NETWORK_TYPE',
] as const
export type KnownStatusCode = typeof STATUS_CODES[number]

/** Codes whose answer is a real reading of the device's state. */
const SUCCESS_CODES = new Set<string>(['OK', 'PARTIAL_SUCCESS'])
/** Codes that say the number itself is wrong: the answer will not change soon. */
const INVALID_NUMBER_CODES = new Set<string>(['NOT_FOUND', 'INVALID_NUMBER_FORMAT'])
/** Codes that say "try again later": never cached, and a stale entry may stand in. */
const TRANSIENT_CODES = new Set<string>(['INTERNAL_ERROR', 'SUPPLIER_ERROR'])

export function isSuccessCode (code: string): boolean {
  return SUCCESS_CODES.has(code)
}
export function isInvalidNumberCode (code: string): boolean {
  return INVALID_NUMBER_CODES.has(code)
}
export function isTransientCode (code: string): boolean {
  return TRANSIENT_CODES.has(code)
}

export interface ReachabilityStatus {
  code: string
  message: string
}

/** What an upstream says about one number. Unknown connectivity values are kept as they come. */
export interface UpstreamAnswer {
  is_reachable: boolean
  connectivity: string[]
  latest_status_at: string | null
  status: ReachabilityStatus
}

export interface Reachability extends UpstreamAnswer {
  phone_number: string
  checked_at: string
}

/**
 * An upstream's answer as a record checked at `checkedAt`: latest_status_at becomes an ISO instant, or null when
 * the upstream gave none or something that is not a date. A time after the check is the check's time: an
 * operator's clock ahead of ours must not make a device look connected in the future.
 */
export function toRecord (phoneNumber: string, answer: UpstreamAnswer, checkedAt: Date): Reachability {
  const ms = answer.latest_status_at === null ? Number.NaN : Date.parse(answer.latest_status_at)
  const latest = Number.isNaN(ms) ? null : new Date(Math.min(ms, checkedAt.getTime())).toISOString()
  return { phone_number: phoneNumber, ...answer, latest_status_at: latest, checked_at: checkedAt.toISOString() }
}

export type ReachabilitySource = 'cache' | 'upstream' | 'stale_cache'

export interface ReachabilityResult extends Reachability {
  source: ReachabilitySource
}

export function hasData (r: UpstreamAnswer): boolean {
  return r.is_reachable && r.connectivity.includes('DATA')
}
export function hasSms (r: UpstreamAnswer): boolean {
  return r.is_reachable && r.connectivity.includes('SMS')
}
/**
 * Connected for DATA, and SMS not listed: CAMARA defines DATA as connected for data "regardless of the SMS
 * reachability" (Vonage's insight reads the same network state), so the answer says nothing about SMS.
 */
export function smsNotReported (r: UpstreamAnswer): boolean {
  return hasData(r) && !r.connectivity.includes('SMS')
}
