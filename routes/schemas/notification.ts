import { z } from 'zod'
import { isReservedPushDataKey, MESSAGE_LIMITS } from '../../src/notifications/types.js'
import { transformingBodyExamples } from './docs.js'
import { PhoneNumber, ReachabilitySchema } from './reachability.js'
import { Text } from './text.js'

const ChannelName = z.enum(['push', 'sms'])

export const NotificationBody = z.strictObject({
  to: PhoneNumber,
  message: z.strictObject({
    sms: z.strictObject({
      text: Text(1, MESSAGE_LIMITS.smsText).meta({ description: `The SMS text, 1 to ${MESSAGE_LIMITS.smsText} characters`, examples: ['Your parcel arrives today between 10:00 and 12:00'] }),
    }).optional().meta({ description: 'SMS content; without it SMS is never chosen' }),
    push: z.strictObject({
      title: Text(1, MESSAGE_LIMITS.pushTitle).meta({ description: `The notification title, 1 to ${MESSAGE_LIMITS.pushTitle} characters`, examples: ['Parcel on its way'] }),
      body: Text(1, MESSAGE_LIMITS.pushBody).meta({ description: `The notification text, 1 to ${MESSAGE_LIMITS.pushBody} characters`, examples: ['Arrives today between 10:00 and 12:00'] }),
      data: z.record(Text(1, 100), Text(0, MESSAGE_LIMITS.pushDataValue)).optional()
        .refine(d => !d || Object.keys(d).length <= 50, 'at most 50 entries')
        .superRefine((d, ctx) => {
          for (const key of Object.keys(d ?? {})) {
            if (isReservedPushDataKey(key)) ctx.addIssue({ code: 'custom', path: [key], message: `"${key.slice(0, 40)}" is a key FCM reserves ("from", "message_type", or one starting with "google" or "gcm")` })
          }
        })
        .meta({ maxProperties: 50, description: 'Extra key/value data for the app (strings only, at most 50 entries; not the keys FCM reserves: "from", "message_type", or one starting with "google" or "gcm")', examples: [{ parcel_id: 'P-123' }] }),
    }).optional().meta({ description: 'Push content; without it (or without push_token) push is never chosen' }),
  }).refine(m => m.sms !== undefined || m.push !== undefined, 'give at least one of message.sms and message.push')
    .meta({ anyOf: [{ required: ['sms'] }, { required: ['push'] }], description: 'The content, per channel: at least one' }),
  push_token: Text(1, 4096).optional().meta({ description: 'The device\'s push registration token (needed for push)', examples: ['fcm-registration-token-abc123'] }),
  routing: z.strictObject({
    prefer: ChannelName.default('push').meta({ description: 'The channel to use when the device is connected for both', examples: ['push'] }),
    channels: z.array(ChannelName).min(1).max(2).default(['push', 'sms'])
      .refine(c => new Set(c).size === c.length, 'each channel once')
      .meta({ uniqueItems: true, description: 'The channels allowed for this notification, each once', examples: [['push', 'sms']] }),
    on_unreachable: z.enum(['queue', 'sms', 'drop']).default('queue').meta({
      description: 'When the device is not reachable for any usable channel: wait in the fallback queue, send SMS anyway (the SMS centre stores and forwards), or drop',
      examples: ['queue'],
    }),
    on_unknown: z.enum(['sms', 'queue', 'fail']).default('sms').meta({
      description: 'When the upstream gives no answer (failure, NO_COVERAGE, transient codes), or answers DATA alone (which says nothing of SMS) for a message only SMS can carry: send SMS, queue, or fail',
      examples: ['sms'],
    }),
    on_expiry: z.enum(['expire', 'sms']).default('expire').meta({
      description: 'When the ttl passes while waiting in the fallback queue: expire, or send it as SMS anyway (the carrier\'s SMS centre stores and forwards)',
      examples: ['expire'],
    }),
    ttl_seconds: z.number().int().min(1).max(7 * 86400).default(86400).meta({ description: 'How long delivery may take (at most 7 days)', examples: [3600] }),
    max_age: z.number().int().min(0).max(86400).optional().meta({ description: 'Accept cached reachability only if at most this many seconds old', examples: [60] }),
  }).prefault({}).meta({ description: 'How to route; every field is optional' }),
  client_ref: Text(1, 100).optional().meta({ description: 'Your reference, echoed back and in callbacks', examples: ['order-5521'] }),
  callback_url: z.url({ protocol: /^https?$/ }).max(2048).optional().meta({
    pattern: '^[Hh][Tt][Tt][Pp][Ss]?://',
    description: 'Where reachroute POSTs {id, status, channel, client_ref, metadata, at} when the notification reaches a final status ' +
      '(sent, delivered, failed, expired, dropped), signed in X-Reachroute-Signature: sha256=<hex HMAC-SHA256 of the body under CALLBACK_SIGNING_SECRET>. ' +
      'A 422 when the service has no CALLBACK_SIGNING_SECRET (no unsigned callbacks), or sets CALLBACK_ALLOWED_HOSTS and the URL\'s host is not one of them',
    examples: ['https://orders.internal.example/notify-status'],
  }),
  metadata: z.record(Text(1, 64), Text(0, 500)).optional()
    .refine(m => !m || Object.keys(m).length <= 20, 'at most 20 entries')
    .meta({ maxProperties: 20, description: 'Small string map, echoed back (at most 20 entries)', examples: [{ order: '5521' }] }),
}).meta(transformingBodyExamples({
  push_or_sms: {
    summary: 'Push when the device is connected for data, SMS otherwise; queued while it is not reachable',
    value: {
      to: '+990123400',
      message: { sms: { text: 'Your code is 123456' }, push: { title: 'Sign-in code', body: 'Your code is 123456' } },
      push_token: 'fcm-registration-token-abc123',
      routing: { prefer: 'push', on_unreachable: 'queue' },
      client_ref: 'login-42',
    },
  },
}))

export const IdempotencyHeaders = z.looseObject({
  'idempotency-key': z.string().min(1).max(255).regex(/^[\x20-\x7e]+$/, 'must be printable ASCII (letters, digits, punctuation, spaces)').optional().meta({
    description: 'Makes the request safe to retry: the same key with the same body within 24 h answers the first answer again ' +
      '(Idempotent-Replayed: true) and sends nothing again; another body → 422; while the first is in flight → 409. Keys are per caller.',
    examples: ['5c1f0e5a-order-5521'],
  }),
})

const Status = z.enum(['accepted', 'queued', 'sending', 'sent', 'delivered', 'failed', 'expired', 'dropped']).meta({
  description: 'accepted → queued → sending → sent → delivered; or failed, expired, dropped',
  examples: ['queued'],
})
const RoutedChannel = z.enum(['push', 'sms', 'fallback_queue', 'none']).meta({ description: 'Where the notification went', examples: ['push'] })

const NotificationId = z.string().meta({ description: 'The notification id', examples: ['ntf_07_3f2a9c0d4b8e4f6a9b1c2d3e4f5a6b7c'] })
const Reason = z.string().meta({
  description: 'Why this channel, in words',
  examples: ['connected for DATA and SMS; push preferred and a push token was given'],
})
const ClientRef = z.string().nullable().meta({ description: 'The client_ref given when it was sent; null when none was', examples: ['login-42'] })
const Metadata = z.record(z.string(), z.string()).nullable().meta({ description: 'The metadata given when it was sent; null when none was', examples: [{ order: '5521' }] })
const CreatedAt = z.string().meta({ description: 'When reachroute accepted it (ISO 8601, UTC)', examples: ['2026-11-25T10:42:00.000Z'] })
const ExpiresAt = z.string().meta({ description: 'After this, an undelivered notification is expired: ttl_seconds after it was accepted (or retried from the dead letters)', examples: ['2026-11-26T10:42:00.000Z'] })

export const AcceptAnswerSchema = z.object({
  id: NotificationId,
  status: Status,
  channel: RoutedChannel,
  reason: Reason,
  reachability: ReachabilitySchema.nullable().meta({ description: 'The reachability the decision was based on (null: the upstream gave no answer)' }),
  client_ref: ClientRef,
  metadata: Metadata,
  created_at: CreatedAt,
}).meta({ id: 'NotificationAccepted', description: 'A notification as accepted: its id and the routing decision' })

export const NotificationEventSchema = z.looseObject({
  at: z.string().meta({ description: 'When it happened (ISO 8601, UTC)', examples: ['2026-11-25T10:42:00.000Z'] }),
  type: z.string().meta({
    description: 'accepted, routed, enqueued, attempt, provider_answer, retry_scheduled, failover, recheck, receipt, callback, final',
    examples: ['routed'],
  }),
  detail: z.string().meta({ description: 'What happened, in words', examples: ['connected for DATA and SMS; push preferred and a push token was given'] }),
}).meta({ id: 'NotificationEvent', description: 'One thing that happened to a notification; some types carry more fields (attempt, channel, status, …)' })

export const NotificationSchema = z.object({
  id: NotificationId,
  to: z.string().meta({ description: 'The phone number, in E.164 form', examples: ['+990123400'] }),
  status: Status,
  channel: RoutedChannel,
  reason: z.string().meta({
    description: 'Why it went where it went (or why it ended), in words',
    examples: ['connected for DATA and SMS; push preferred and a push token was given'],
  }),
  reachability: ReachabilitySchema.nullable().meta({ description: 'The latest reachability its routing was based on (null: the upstream gave no answer)' }),
  attempts: z.number().int().meta({ description: 'Delivery attempts so far', examples: [1] }),
  client_ref: ClientRef,
  metadata: Metadata,
  campaign_id: z.string().nullable().meta({ description: 'The campaign it belongs to; null for a notification sent on its own', examples: [null] }),
  provider_message_id: z.string().nullable().meta({
    description: 'The provider\'s id of the sent message; null until a provider took it',
    examples: ['aaaaaaaa-bbbb-4ccc-8ddd-0123456789ab'],
  }),
  created_at: CreatedAt,
  updated_at: z.string().meta({ description: 'When it last changed (ISO 8601, UTC)', examples: ['2026-11-25T10:42:01.250Z'] }),
  expires_at: ExpiresAt,
  events: z.array(NotificationEventSchema).meta({ description: 'Everything that happened to it, oldest first' }),
}).meta({ id: 'Notification', description: 'A notification, its status and everything that happened to it' })
