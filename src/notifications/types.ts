import type { ChannelName } from '../channels/channel.js'
import type { ReachabilityResult } from '../domain/reachability.js'

export const NOTIFICATION_STATUSES = ['accepted', 'queued', 'sending', 'sent', 'delivered', 'failed', 'expired', 'dropped'] as const
export type NotificationStatus = typeof NOTIFICATION_STATUSES[number]
export const FINAL_STATUSES: ReadonlySet<NotificationStatus> = new Set(['delivered', 'failed', 'expired', 'dropped'])
/** `sent` is final unless a delivery receipt may still move it to delivered or failed. */
export function isFinal (status: NotificationStatus): boolean {
  return FINAL_STATUSES.has(status) || status === 'sent'
}

export type RoutedChannel = ChannelName | 'fallback_queue' | 'none'

export interface Routing {
  prefer: ChannelName
  channels: ChannelName[]
  on_unreachable: 'queue' | 'sms' | 'drop'
  on_unknown: 'sms' | 'queue' | 'fail'
  ttl_seconds: number
  max_age?: number | undefined
  /** When the ttl passes in the fallback queue: expire, or send as SMS (the SMS centre stores and forwards). */
  on_expiry?: 'expire' | 'sms' | undefined
}

/** The longest texts a message may carry, in characters (code points, as JSON Schema's maxLength counts them). */
/**
 * What moved a notification's expiry past its ttl, marked on the event that moved it (`deadline`): a retry from the
 * dead-letter list, or the SMS window on_expiry sms gives.
 */
export type DeadlineCause = 'dead_letter_retry' | 'on_expiry_sms'

/**
 * The time a notification had, in words, for the reason it expired: its ttl (`the ttl of 60 s`), or, once its expiry
 * was moved, that expiry and what moved it (read from the latest event marked `deadline`).
 */
export function timeAllowed (n: Pick<Notification, 'created_at' | 'expires_at' | 'request'>, events: readonly NotificationEvent[] = []): string {
  const ttl = n.request.routing.ttl_seconds
  if (Date.parse(n.expires_at) - Date.parse(n.created_at) === ttl * 1000) return `the ttl of ${ttl} s`
  const cause = events.findLast(e => typeof e.deadline === 'string')?.deadline as DeadlineCause | undefined
  if (cause === 'on_expiry_sms') return `the expiry of ${n.expires_at} (the SMS window on_expiry sms gave once the ttl passed)`
  if (cause === 'dead_letter_retry') return `the expiry of ${n.expires_at} (a retry from the dead-letter list set it)`
  return `the expiry of ${n.expires_at}`
}

export const MESSAGE_LIMITS = { smsText: 1000, pushTitle: 200, pushBody: 2000, pushDataValue: 1000 } as const

/**
 * Push data keys FCM refuses (its reference: "from", "message_type", or any word starting with "google" or "gcm"):
 * refused at accept, not sent to fail there.
 */
export function isReservedPushDataKey (key: string): boolean {
  const k = key.toLowerCase()
  return k === 'from' || k === 'message_type' || k.startsWith('google') || k.startsWith('gcm')
}

export interface NotificationMessage {
  sms?: { text: string } | undefined
  push?: { title: string, body: string, data?: Record<string, string> | undefined } | undefined
}

/** What a caller asks for, after validation. */
export interface NotificationRequest {
  to: string
  message: NotificationMessage
  push_token?: string | undefined
  routing: Routing
  client_ref?: string | undefined
  callback_url?: string | undefined
  metadata?: Record<string, string> | undefined
}

export interface NotificationEvent {
  at: string
  type: 'accepted' | 'routed' | 'enqueued' | 'attempt' | 'provider_answer' | 'retry_scheduled' | 'failover' | 'recheck' | 'receipt' | 'final' | 'callback'
  detail: string
  [extra: string]: unknown
}

/** The events since the latest final one: what the current final status (or delivery, after a retry) has done. */
export function eventsSinceFinal (events: readonly NotificationEvent[]): NotificationEvent[] {
  return events.slice(events.findLastIndex(e => e.type === 'final') + 1)
}

export interface Notification {
  id: string
  /** The token subject that asked for it. */
  owner: string
  status: NotificationStatus
  channel: RoutedChannel
  reason: string
  request: NotificationRequest
  reachability: ReachabilityResult | null
  attempts: number
  created_at: string
  updated_at: string
  expires_at: string
  campaign_id?: string | undefined
  provider_message_id?: string | undefined
}
