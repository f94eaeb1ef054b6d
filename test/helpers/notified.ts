import type { NotificationService } from '../../src/notifications/service.js'

/**
 * Records every notification id each number is answered with, by wrapping `notifications.accept` (a replay answers
 * the first id, so a number with two ids was notified twice).
 */
export function recordNotified (notifications: NotificationService): Map<string, Set<string>> {
  const ids = new Map<string, Set<string>>()
  const accept = notifications.accept.bind(notifications)
  notifications.accept = async (...args) => {
    const result = await accept(...args)
    ids.set(args[1].to, (ids.get(args[1].to) ?? new Set()).add(result.answer.id))
    return result
  }
  return ids
}
