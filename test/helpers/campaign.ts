import type { Store } from '../../src/store/store.js'

/**
 * As a campaign runner does: the campaign's next recipients counted as handled, recipient by recipient the notification
 * of `ids` made for it (routed to SMS). A test that makes a campaign's notifications itself counts them so: a final
 * status is counted only for a notification counted as made.
 */
export async function countMade (store: Store, campaignId: string, ids: string[]): Promise<void> {
  const now = Date.now()
  const chunk = await store.claimCampaignRecipients(campaignId, ids.length, now, now + 60_000)
  if (chunk?.lease.count !== ids.length) throw new Error(`the campaign ${campaignId} has no ${ids.length} recipients left to count`)
  const handled = ids.map((id, i) => ({ index: chunk.lease.start + i, notification: { id, channel: 'sms' as const } }))
  if (await store.countCampaignRecipients(campaignId, chunk.lease, handled, { at: now, finish: true }) !== ids.length) throw new Error('not counted')
}
