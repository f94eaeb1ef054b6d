import { isInvalidNumberCode, isSuccessCode, isTransientCode, type UpstreamAnswer } from '../domain/reachability.js'

export interface CachePolicy {
  reachableSeconds: number
  unreachableSeconds: number
  invalidSeconds: number
}

/**
 * How long an answer stays fresh, by outcome; 0 means "do not cache".
 * Transient failures are never cached, nor are answers that say our own setup is wrong
 * (INVALID_PURPOSE, UNAUTHORIZED, unknown codes): fixing the setup must take effect at once.
 */
export function freshSeconds (answer: UpstreamAnswer, policy: CachePolicy): number {
  const code = answer.status.code
  if (isSuccessCode(code)) return answer.is_reachable ? policy.reachableSeconds : policy.unreachableSeconds
  if (isInvalidNumberCode(code)) return policy.invalidSeconds
  if (isTransientCode(code)) return 0
  if (code === 'NO_COVERAGE' || code === 'UNSUPPORTED_NETWORK_TYPE') return policy.unreachableSeconds
  return 0
}
