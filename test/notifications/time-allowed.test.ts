import t from 'tap'
import { timeAllowed } from '../../src/notifications/types.js'

t.test('the time a notification had: its ttl, or the expiry a dead-letter retry gave it', async t => {
  const request = { routing: { ttl_seconds: 60 } } as Parameters<typeof timeAllowed>[0]['request']
  const created_at = '2026-11-27T10:00:00.000Z'
  t.equal(timeAllowed({ request, created_at, expires_at: '2026-11-27T10:01:00.000Z' }), 'the ttl of 60 s')
  t.equal(timeAllowed({ request, created_at, expires_at: '2026-11-27T12:00:15.000Z' }),
    'the expiry of 2026-11-27T12:00:15.000Z (a retry from the dead-letter list set it)')
})
