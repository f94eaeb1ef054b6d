import type { NotificationStatus } from '../notifications/types.js'
import { counter } from './registry.js'

// Campaign progress across every campaign (a campaign id would make the label set unbounded):
// GET /v1/campaigns/{id} gives one campaign's figures.

const recipients = counter({
  name: 'reachroute_campaign_recipients_total',
  help: 'Campaign recipients handled by this process\'s campaign runner (turned into notifications, or failed)',
})
const finals = counter({
  name: 'reachroute_campaign_notifications_final_total',
  help: 'Campaign notifications that reached a final status, by status: counted by the workers, and as delivered or failed ' +
    'again when a delivery receipt moves a sent SMS (so sent and the receipts\' statuses can count the same notification)',
  labelNames: ['status'] as const,
})

/** For CampaignRunner's onProcessed. */
export function recordCampaignRecipients (n: number): void {
  recipients.inc(n)
}

export function recordCampaignFinal (status: NotificationStatus): void {
  finals.inc({ status })
}
