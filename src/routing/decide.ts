import type { ChannelName } from '../channels/channel.js'
import { hasData, hasSms, isInvalidNumberCode, isSuccessCode, type ReachabilityResult, smsNotReported } from '../domain/reachability.js'
import type { NotificationRequest, RoutedChannel } from '../notifications/types.js'

export interface Decision {
  channel: RoutedChannel
  /** Set when the notification ends at once, nothing sent. */
  final?: 'failed' | 'dropped'
  reason: string
}

/** The reachability a decision was based on; null when the upstream gave no answer at all. */
export type ReachabilityInput = ReachabilityResult | null

/** A channel the request can use at all: allowed, with content, and for push a token. */
export function usableChannels (request: NotificationRequest): Set<ChannelName> {
  const usable = new Set<ChannelName>()
  const allowed = request.routing.channels
  if (allowed.includes('push') && request.message.push && request.push_token) usable.add('push')
  if (allowed.includes('sms') && request.message.sms) usable.add('sms')
  return usable
}

function order (request: NotificationRequest): ChannelName[] {
  return request.routing.prefer === 'sms' ? ['sms', 'push'] : ['push', 'sms']
}

function describeConnectivity (r: ReachabilityResult): string {
  if (!r.is_reachable) return 'not reachable'
  const data = hasData(r)
  const sms = hasSms(r)
  if (data && sms) return 'connected for DATA and SMS'
  if (data) return 'connected for DATA, SMS not reported'
  if (sms) return 'connected for SMS only'
  return `reachable but connected for neither DATA nor SMS (${r.connectivity.join(', ') || 'none'})`
}

function why (channel: ChannelName, request: NotificationRequest, usable: Set<ChannelName>, preferredFirst: boolean, r: ReachabilityResult): string {
  const preferred = request.routing.prefer === channel
  const extra = channel === 'push' ? ' and a push token was given' : ''
  if (preferred) return `${channel} preferred${extra}`
  const other: ChannelName = channel === 'push' ? 'sms' : 'push'
  if (!usable.has(other)) return `${other} not possible for this request; ${channel} instead`
  if (preferredFirst) {
    const notFor = other === 'sms' && smsNotReported(r) ? 'the device is not known to be connected for it' : 'the device is not connected for it'
    return `${other} preferred but ${notFor}; ${channel} instead`
  }
  return `${channel} chosen${extra}`
}

/**
 * The routing decision: the one place where routing rules live. Pure: the same reachability
 * and request always give the same decision.
 */
export function decide (reachability: ReachabilityInput, request: NotificationRequest): Decision {
  const usable = usableChannels(request)
  if (usable.size === 0) {
    return { channel: 'none', final: 'failed', reason: 'no channel can carry this message: it needs SMS text, or push content with a push token, on an allowed channel' }
  }

  if (reachability === null) return onUnknown('the reachability upstream gave no answer', request, usable)
  const code = reachability.status.code
  if (isInvalidNumberCode(code)) {
    return { channel: 'none', final: 'failed', reason: `${code}: ${reachability.status.message || 'the number cannot be reached'}; nothing was sent` }
  }
  if (!isSuccessCode(code)) return onUnknown(`reachability unknown (${code})`, request, usable)

  const state = describeConnectivity(reachability)
  const connected = (c: ChannelName) => c === 'push' ? hasData(reachability) : hasSms(reachability)
  const candidates = order(request).filter(c => usable.has(c))
  const chosen = candidates.find(connected)
  if (chosen) return { channel: chosen, reason: `${state}; ${why(chosen, request, usable, chosen !== candidates[0], reachability)}` }
  // Only SMS can carry it and the answer says nothing of SMS: the caller's policy for an unknown state.
  if (usable.has('sms') && smsNotReported(reachability)) return onUnknown(`${state}, and SMS is the only channel this message can use`, request, usable)

  const forAllowed = reachability.is_reachable ? `${state}, not for any channel this message can use` : state
  switch (request.routing.on_unreachable) {
    case 'drop':
      return { channel: 'none', final: 'dropped', reason: `${forAllowed}; on_unreachable is drop` }
    case 'sms':
      if (usable.has('sms')) return { channel: 'sms', reason: `${forAllowed}; on_unreachable is sms: the carrier's SMS centre stores and forwards` }
      return { channel: 'fallback_queue', reason: `${forAllowed}; on_unreachable is sms but the message has no usable SMS, so it waits in the fallback queue` }
    case 'queue':
      return { channel: 'fallback_queue', reason: `${forAllowed}; queued until the device comes back` }
  }
}

function onUnknown (why: string, request: NotificationRequest, usable: Set<ChannelName>): Decision {
  switch (request.routing.on_unknown) {
    case 'fail':
      return { channel: 'none', final: 'failed', reason: `${why}; on_unknown is fail` }
    case 'queue':
      return { channel: 'fallback_queue', reason: `${why}; on_unknown is queue: waits in the fallback queue for an answer` }
    case 'sms': {
      if (usable.has('sms')) return { channel: 'sms', reason: `${why}; on_unknown is sms` }
      const push = order(request).find(c => usable.has(c))!
      return { channel: push, reason: `${why}; on_unknown is sms but the message has no usable SMS, so ${push} is tried` }
    }
  }
}
