import type { DeliveryOutcome } from '../channels/channel.js'
import type { NotificationRequest } from '../notifications/types.js'
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
  help: 'Delivery attempts by channel, provider and outcome (sent, retry, failed, token_invalid; calls an open circuit turned away are not attempts and not counted here)',
  labelNames: ['channel', 'provider', 'outcome'] as const,
})

/** For NotificationService's onRouted. */
export function recordRoutingDecision (decision: Decision, reachability: ReachabilityInput, request: NotificationRequest): void {
  decisions.inc({ channel: decision.channel, reason: reasonCategory(decision, reachability, request) })
}

/** For DeliveryWorker's onOutcome. */
export function recordDelivery (channel: 'sms' | 'push', outcome: DeliveryOutcome): void {
  deliveries.inc({ channel, provider: outcome.provider, outcome: outcome.kind })
}
