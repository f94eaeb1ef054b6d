import type { Notification, NotificationEvent } from '../../notifications/types.js'
import type { NotificationPatch, PendingCampaignCount } from '../store.js'

// A notification is a hash: the accept document as one JSON field, and each field a transition changed as a field of its own.

/** At accept: the whole notification and its first events as one document (the hash's `doc` field). */
export function acceptDocument (n: Notification, events: NotificationEvent[]): string {
  // The notification's JSON with one more member, without copying the notification into a new object first.
  return `${JSON.stringify(n).slice(0, -1)},"events0":${JSON.stringify(events)}}`
}

export function patchToFields (patch: NotificationPatch): string {
  return JSON.stringify(patchFields(patch))
}

function patchFields (patch: NotificationPatch): Record<string, string> {
  const fields: Record<string, string> = {}
  for (const key in patch) {
    const value = patch[key as keyof NotificationPatch]
    if (value === undefined) continue
    fields[key] = key === 'reachability' ? JSON.stringify(value) : String(value)
  }
  return fields
}

/** Reads a notification back: the accept document, overridden by the fields later transitions wrote. */
export function fieldsToNotification (hash: Record<string, string>): { notification: Notification, events0: NotificationEvent[] } | null {
  if (!hash.doc) return null
  const { events0, ...doc } = JSON.parse(hash.doc) as Notification & { events0?: NotificationEvent[] }
  const notification: Notification = { ...doc, status: hash.status as Notification['status'] }
  if (hash.channel !== undefined) notification.channel = hash.channel as Notification['channel']
  if (hash.reason !== undefined) notification.reason = hash.reason
  if (hash.attempts !== undefined) notification.attempts = Number(hash.attempts)
  if (hash.updated_at !== undefined) notification.updated_at = hash.updated_at
  if (hash.expires_at !== undefined) notification.expires_at = hash.expires_at
  if (hash.provider_message_id !== undefined) notification.provider_message_id = hash.provider_message_id
  if (hash.reachability !== undefined) notification.reachability = JSON.parse(hash.reachability)
  return { notification, events0: events0 ?? [] }
}

/** Events as a JSON array of JSON strings: the list items stay one JSON document each. */
export function encodeEvents (events: NotificationEvent[]): string {
  return JSON.stringify(events.map(e => JSON.stringify(e)))
}

/** A pending campaign count as a sorted-set member: `<notification id> <status> <campaign id>` (ids hold no space). */
export function encodePendingCount (count: PendingCampaignCount): string {
  return `${count.notificationId} ${count.status} ${count.campaignId}`
}

export function decodePendingCount (member: string): PendingCampaignCount {
  const [notificationId, status, campaignId] = member.split(' ') as [string, PendingCampaignCount['status'], string]
  return { campaignId, notificationId, status }
}
