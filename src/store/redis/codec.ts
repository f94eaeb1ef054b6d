import type { Notification, NotificationEvent } from '../../notifications/types.js'
import type { NotificationPatch } from '../store.js'

// A notification is a hash: what never changes as one JSON field, what transitions change as fields of their own.

export function notificationToFields (n: Notification): string[] {
  const { status, channel, reason, attempts, updated_at: updatedAt, expires_at: expiresAt, provider_message_id: providerMessageId, reachability, ...fixed } = n
  return [
    'doc', JSON.stringify(fixed),
    ...patchToFields({ status, channel, reason, attempts, updated_at: updatedAt, expires_at: expiresAt, provider_message_id: providerMessageId, reachability }),
  ]
}

export function patchToFields (patch: NotificationPatch): string[] {
  const fields: string[] = []
  for (const [key, value] of Object.entries(patch)) {
    if (value === undefined) continue
    fields.push(key, key === 'reachability' ? JSON.stringify(value) : String(value))
  }
  return fields
}

export function fieldsToNotification (hash: Record<string, string>): Notification | null {
  if (!hash.doc) return null
  const fixed = JSON.parse(hash.doc) as Omit<Notification, keyof NotificationPatch>
  return {
    ...fixed,
    status: hash.status as Notification['status'],
    channel: hash.channel as Notification['channel'],
    reason: hash.reason ?? '',
    attempts: Number(hash.attempts ?? 0),
    updated_at: hash.updated_at ?? fixed.created_at,
    expires_at: hash.expires_at!,
    ...(hash.provider_message_id ? { provider_message_id: hash.provider_message_id } : {}),
    reachability: hash.reachability ? JSON.parse(hash.reachability) : null,
  }
}

export function encodeEvents (events: NotificationEvent[]): string[] {
  return events.map(e => JSON.stringify(e))
}
