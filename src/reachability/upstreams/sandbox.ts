import { createHash } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type { UpstreamAnswer } from '../../domain/reachability.js'
import { type ReachabilityUpstream, type UpstreamCheckOptions, UpstreamFailure } from './upstream.js'

const DAY_MS = 86_400_000
const OK = { code: 'OK', message: 'Success' }

export interface SandboxOptions {
  /** How long +990123444 stays unreachable after this process first asked about it. */
  comebackSeconds: number
  now?: () => number
}

/**
 * The built-in upstream: deterministic, no network. Vonage's test numbers answer as documented
 * in the README; every other number gets a stable answer derived from a hash of the number.
 */
export class SandboxUpstream implements ReachabilityUpstream {
  readonly name = 'sandbox'
  private readonly firstSeen = new Map<string, number>()
  private readonly now: () => number

  constructor (private readonly options: SandboxOptions) {
    this.now = options.now ?? Date.now
  }

  async check (phoneNumber: string, options: UpstreamCheckOptions = {}): Promise<UpstreamAnswer> {
    const now = this.now()
    const seenBefore = this.firstSeen.has(phoneNumber)
    if (!seenBefore) this.firstSeen.set(phoneNumber, now)
    const ago = (ms: number) => new Date(now - ms).toISOString()

    switch (phoneNumber) {
      case '+990123400': return reachable(['DATA', 'SMS'], ago(60_000))
      case '+990123411': return reachable(['SMS'], ago(60_000))
      case '+990123422': return reachable(['DATA'], ago(60_000))
      case '+990123433': return unreachable(ago(70 * DAY_MS))
      case '+990123444': {
        const since = this.firstSeen.get(phoneNumber)!
        const backAt = since + this.options.comebackSeconds * 1000
        return now < backAt ? unreachable(new Date(since).toISOString()) : reachable(['DATA', 'SMS'], new Date(backAt).toISOString())
      }
      case '+990123455': return failed('NO_COVERAGE', 'The network of this number is not covered')
      case '+990123466': return failed('SUPPLIER_ERROR', 'The supplier returned an error')
      case '+990123477':
        await sleep(3000, undefined, { signal: options.signal })
        return reachable(['DATA', 'SMS'], ago(60_000))
      case '+990123488':
        if (!seenBefore) throw new UpstreamFailure('sandbox: HTTP 503 on the first call for this number', 1)
        return reachable(['DATA', 'SMS'], ago(60_000))
      case '+990123499': return failed('NOT_FOUND', 'The number is not known to the network')
    }
    if (phoneNumber.startsWith('+990')) return failed('INVALID_NUMBER_FORMAT', 'The phone number format is not valid')
    return hashed(phoneNumber, now)
  }

  async close (): Promise<void> {}
}

function reachable (connectivity: string[], latestStatusAt: string): UpstreamAnswer {
  return { is_reachable: true, connectivity, latest_status_at: latestStatusAt, status: OK }
}
function unreachable (latestStatusAt: string): UpstreamAnswer {
  return { is_reachable: false, connectivity: [], latest_status_at: latestStatusAt, status: OK }
}
function failed (code: string, message: string): UpstreamAnswer {
  return { is_reachable: false, connectivity: [], latest_status_at: null, status: { code, message } }
}

/** About 70% DATA+SMS, 15% SMS only, 5% DATA only, 10% not reachable; stable through a UTC day. */
function hashed (phoneNumber: string, now: number): UpstreamAnswer {
  const digest = createHash('sha256').update(phoneNumber).digest()
  const bucket = digest.readUInt32BE(0) % 100
  const ageMs = digest.readUInt32BE(4) % (90 * DAY_MS / 1000) * 1000
  const latest = new Date(Math.floor(now / DAY_MS) * DAY_MS - ageMs).toISOString()
  if (bucket < 70) return reachable(['DATA', 'SMS'], latest)
  if (bucket < 85) return reachable(['SMS'], latest)
  if (bucket < 90) return reachable(['DATA'], latest)
  return unreachable(latest)
}
