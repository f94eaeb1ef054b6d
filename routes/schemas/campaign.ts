import { z } from 'zod'
import { NotificationBody } from './notification.js'
import { PhoneNumber } from './reachability.js'
import { Text } from './text.js'
import { CAMPAIGN_FAILURES_KEPT } from '../../src/store/store.js'
import { unfillablePlaceholder } from '../../src/campaigns/placeholders.js'

const MessageText = 'Texts may hold {{name}} placeholders (any name of 1 to 64 characters without braces; spaces around it ' +
  'ignored), filled from each recipient\'s vars. A recipient without a value for one, or whose filled text is empty or too long, fails'

export const CampaignHeader = z.strictObject({
  name: Text(1, 200).meta({ description: 'A name for people', examples: ['Black Friday 2026'] }),
  message: NotificationBody.shape.message.superRefine((message, ctx) => {
    const problem = unfillablePlaceholder(message)
    if (problem) ctx.addIssue({ code: 'custom', message: problem })
  }).meta({ description: `The content, per channel: at least one. ${MessageText}` }),
  routing: NotificationBody.shape.routing,
}).meta({ description: 'The campaign: what every recipient is sent, and how it is routed' })

export const Recipient = z.strictObject({
  to: PhoneNumber,
  push_token: NotificationBody.shape.push_token,
  vars: z.record(Text(1, 64), Text(0, 1000)).optional()
    .refine(v => !v || Object.keys(v).length <= 50, 'at most 50 entries')
    .meta({ maxProperties: 50, description: 'Values of the message\'s placeholders for this recipient (at most 50)', examples: [{ name: 'Ada' }] }),
}).meta({ description: 'One recipient' })

export const MAX_JSON_RECIPIENTS = 100_000
export const MAX_NDJSON_RECIPIENTS = 1_000_000

export const CampaignBody = CampaignHeader.extend({
  recipients: z.array(z.unknown()).min(1).max(MAX_JSON_RECIPIENTS).meta({
    description: `1 to ${MAX_JSON_RECIPIENTS.toLocaleString('en')} recipients {to, push_token?, vars?}; a recipient that is not valid is refused with its position (line, from 1) and the campaign goes on (none valid: a 422, nothing created)`,
    examples: [[{ to: '+990123400', push_token: 'fcm-registration-token-abc123', vars: { name: 'Ada' } }]],
  }),
}).meta({
  description: 'A campaign with its recipients. For up to 1,000,000 recipients send NDJSON instead (Content-Type: application/x-ndjson): ' +
    'a first line with {name, message, routing}, then one recipient per line.',
  examples: [{
    name: 'Black Friday 2026',
    message: { sms: { text: 'Hi {{name}}, 30% off today' }, push: { title: 'Black Friday', body: 'Hi {{name}}, 30% off today' } },
    routing: { prefer: 'push', on_unreachable: 'queue' },
    recipients: [{ to: '+990123400', push_token: 'fcm-registration-token-abc123', vars: { name: 'Ada' } }],
  }],
})

const Count = (description: string, example: number) => z.number().int().meta({ description, examples: [example] })
const CampaignId = z.string().meta({ description: 'The campaign id', examples: ['cmp_0c1d2e3f405162738495a6b7c8d9e0f1'] })
const CampaignStatus = z.enum(['accepted', 'running', 'paused', 'completed', 'cancelled']).meta({
  description: 'accepted (being read in) → running → completed; paused and resumed; or cancelled', examples: ['running'],
})

export const CampaignAccepted = z.object({
  id: CampaignId,
  status: CampaignStatus,
  recipients_accepted: Count('Recipients taken (each number once)', 9998),
  recipients_rejected: Count('Recipients refused (not valid, or a number listed before)', 2),
  rejected: z.array(z.object({
    line: Count('The line (NDJSON, the campaign being line 1) or the position in recipients (JSON, from 1)', 17),
    reason: z.string().meta({ description: 'Why it was refused', examples: ['duplicate of an earlier recipient'] }),
  })).meta({ description: 'The first 100 refused recipients, with why' }),
}).meta({ id: 'CampaignAccepted' })

export const CampaignSchema = z.object({
  id: CampaignId,
  name: z.string().meta({ description: 'The name it was given', examples: ['Black Friday 2026'] }),
  status: CampaignStatus,
  created_at: z.string().meta({ description: 'When it was created (ISO 8601, UTC)', examples: ['2026-11-27T08:00:00.000Z'] }),
  completed_at: z.string().nullable().meta({ description: 'When every recipient was processed; null until then', examples: [null] }),
  recipients: z.object({
    total: Count('Recipients given', 10000),
    accepted: Count('Recipients taken', 9998),
    rejected: Count('Recipients refused', 2),
    processed: Count('Recipients handled so far (a notification made, or failed)', 4200),
    failed: Count('Recipients that got no notification: a placeholder without a value, or no channel for the message', 3),
  }).meta({ description: 'Recipients given, taken, refused and processed' }),
  notifications: z.object({
    created: Count('Notifications made', 4197),
    by_status: z.record(z.string(), z.number().int()).meta({
      description: 'Notifications per final status (sent, delivered, failed, expired, dropped), each once in its latest (a delivery receipt moves ' +
        'an SMS from sent to delivered or failed), and in_progress for the others',
      examples: [{ sent: 4000, delivered: 0, failed: 10, expired: 0, dropped: 2, in_progress: 185 }],
    }),
    by_channel: z.record(z.string(), z.number().int()).meta({
      description: 'Where each notification was routed', examples: [{ push: 3100, sms: 1000, fallback_queue: 97, none: 0 }],
    }),
  }).meta({ description: 'The notifications the campaign made' }),
  lookups: z.object({ cache: Count('Reachability answered by the cache', 3900), upstream: Count('Reachability asked of the upstream', 297) })
    .meta({ description: 'Where the reachability of each recipient came from' }),
  rate_per_minute: Count('Recipients processed over the last minute', 3000),
  estimated_seconds_left: z.number().int().nullable().meta({ description: 'At the last minute\'s rate; null when nothing moved (paused, or just started)', examples: [116] }),
}).meta({ id: 'Campaign' })

export const CampaignDetailSchema = CampaignSchema.extend({
  failures: z.array(z.object({
    index: z.number().int().meta({ description: 'The recipient\'s place among the accepted recipients (0 = the first)', examples: [17] }),
    to: z.string().meta({ description: 'Its number (E.164)', examples: ['+447911123456'] }),
    reason: z.string().meta({ description: 'Why it got no notification', examples: ['the message\'s {{name}} has no value in this recipient\'s vars'] }),
  })).meta({ description: `Failed recipients with their reasons, by place: the first ${CAMPAIGN_FAILURES_KEPT} (recipients.failed counts them all)` }),
}).meta({ id: 'CampaignDetail' })
