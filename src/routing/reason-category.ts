import { hasData, hasSms, isInvalidNumberCode, isSuccessCode, smsNotReported } from '../domain/reachability.js'
import type { NotificationRequest } from '../notifications/types.js'
import { type Decision, type ReachabilityInput, usableChannels } from './decide.js'

/** Why a decision went the way it did, in a few words fit for a metric label (the reason text is free). */
export type ReasonCategory =
  /** The device is connected for the chosen channel. */
  | 'connected'
  /** Not reachable, or connected for no channel the message can use: on_unreachable decided. */
  | 'unreachable'
  /** The upstream gave no answer: on_unknown decided. */
  | 'no_answer'
  /** An answer whose status code is not a reading of the device: on_unknown decided. */
  | 'unknown_status'
  /** Connected for DATA alone, and only SMS can carry the message: the SMS state is not reported, on_unknown decided. */
  | 'sms_not_reported'
  /** The number is invalid or unknown to the network. */
  | 'invalid_number'
  /** The message has no channel it can use. */
  | 'no_usable_channel'

/** Sorts a decision of decide() by the rule that made it, from the same inputs. */
export function reasonCategory (decision: Decision, reachability: ReachabilityInput, request: NotificationRequest): ReasonCategory {
  const usable = usableChannels(request)
  if (usable.size === 0) return 'no_usable_channel'
  if (reachability === null) return 'no_answer'
  const code = reachability.status.code
  if (isInvalidNumberCode(code)) return 'invalid_number'
  if (!isSuccessCode(code)) return 'unknown_status'
  if (decision.channel === 'push' && hasData(reachability)) return 'connected'
  if (decision.channel === 'sms' && hasSms(reachability)) return 'connected'
  if (usable.has('sms') && smsNotReported(reachability)) return 'sms_not_reported'
  return 'unreachable'
}
