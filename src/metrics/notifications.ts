import type { NotificationRequest, NotificationStatus } from '../notifications/types.js'
import type { AttemptResult } from '../queue/delivery-worker.js'
import type { Decision, ReachabilityInput } from '../routing/decide.js'
import { reasonCategory } from '../routing/reason-category.js'
import { counter } from './registry.js'

const decisions = counter({
  name: 'reachroute_routing_decisions_total',
  help: 'Routing decisions of accepted notifications by channel (push, sms, fallback_queue, none) and reason category',
  labelNames: ['channel', 'reason'] as const,
})
const deliveries = counter({
  name: 'reachroute_deliveries_total',
  help: 'Delivery attempts (provider calls) by channel, provider and what each led to: sent; retry (another attempt follows); failed (refused, or no attempt left); ' +
    'expired (the next attempt would come after the ttl); token_invalid (failed over to SMS, or failed). Calls an open circuit turned away are not attempts',
  labelNames: ['channel', 'provider', 'outcome'] as const,
})

const finals = counter({
  name: 'reachroute_notifications_final_total',
  help: 'Notifications (campaigns\' included) that reached a final status, by status, counted by the process that ended them: at accept ' +
    '(failed, dropped), by the workers (sent, failed, expired, dropped), and by delivery receipts (delivered, failed), which count a sent SMS again',
  labelNames: ['status'] as const,
})

/** For NotificationService's onRouted: a notification final at accept (failed, dropped) is counted final here too. */
export function recordRoutingDecision (decision: Decision, reachability: ReachabilityInput, request: NotificationRequest): void {
  decisions.inc({ channel: decision.channel, reason: reasonCategory(decision, reachability, request) })
  if (decision.final !== undefined) finals.inc({ status: decision.final })
}

/** For the workers' and the receipts' onFinal. */
export function recordNotificationFinal (status: NotificationStatus): void {
  finals.inc({ status })
}

/** For DeliveryWorker's onAttempt. */
export function recordDelivery (channel: 'sms' | 'push', provider: string, outcome: AttemptResult): void {
  deliveries.inc({ channel, provider, outcome })
}
