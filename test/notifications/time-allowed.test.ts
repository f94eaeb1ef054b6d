import t from 'tap'
import { type NotificationEvent, timeAllowed } from '../../src/notifications/types.js'

t.test('the time a notification had: its ttl, or the expiry it was given since, with what gave it', async t => {
  const request = { routing: { ttl_seconds: 60 } } as Parameters<typeof timeAllowed>[0]['request']
  const created_at = '2026-11-27T10:00:00.000Z'
  const moved = (deadline: string): NotificationEvent => ({ at: created_at, type: 'enqueued', detail: 'x', deadline })
  t.equal(timeAllowed({ request, created_at, expires_at: '2026-11-27T10:01:00.000Z' }), 'the ttl of 60 s')
  const later = { request, created_at, expires_at: '2026-11-27T12:00:15.000Z' }
  t.equal(timeAllowed(later, [moved('dead_letter_retry')]), 'the expiry of 2026-11-27T12:00:15.000Z (a retry from the dead-letter list set it)')
  t.equal(timeAllowed(later, [moved('on_expiry_sms')]), 'the expiry of 2026-11-27T12:00:15.000Z (the SMS window on_expiry sms gave once the ttl passed)',
    'not said to be a dead-letter retry when none happened')
  t.equal(timeAllowed(later, [moved('dead_letter_retry'), moved('on_expiry_sms')]), 'the expiry of 2026-11-27T12:00:15.000Z (the SMS window on_expiry sms gave once the ttl passed)',
    'the latest that moved it')
  t.equal(timeAllowed(later), 'the expiry of 2026-11-27T12:00:15.000Z', 'nothing marked: no cause guessed')
})
