import t, { type Test } from 'tap'
import { randomUUID } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Reachability } from '../../src/domain/reachability.js'
import { newNotificationId, shardFor } from '../../src/notifications/ids.js'
import { giveBack } from '../../src/queue/chunk-lease.js'
import type { Notification } from '../../src/notifications/types.js'
import { MemoryStore } from '../../src/store/memory/memory-store.js'
import { RedisStore } from '../../src/store/redis/redis-store.js'
import { CAMPAIGN_FAILURES_KEPT, type FallbackLease, type Store } from '../../src/store/store.js'
import { clusterAvailable, clusterNodes, dropClusterPrefix, dropPrefix, REDIS_URL, redisAvailable, uniquePrefix } from '../helpers/redis.js'

// One suite, every adapter of the store port.

const SHARDS = 4

const record = (phone: string): Reachability => ({
  phone_number: phone,
  is_reachable: true,
  connectivity: ['DATA', 'SMS'],
  latest_status_at: '2026-11-25T10:00:00.000Z',
  status: { code: 'OK', message: 'Success' },
  checked_at: '2026-11-25T10:00:01.000Z',
})

function notification (shard: number, overrides: Partial<Notification> = {}): Notification {
  return {
    id: newNotificationId(shard),
    owner: 'svc',
    status: 'queued',
    channel: 'sms',
    reason: 'connected for SMS only; sms chosen',
    request: {
      to: '+990123411',
      message: { sms: { text: 'hello' } },
      routing: { prefer: 'push', channels: ['push', 'sms'], on_unreachable: 'queue', on_unknown: 'sms', ttl_seconds: 3600 },
      client_ref: 'ref-1',
    },
    reachability: { ...record('+990123411'), connectivity: [], source: 'upstream' },
    attempts: 0,
    created_at: '2026-11-25T10:00:00.000Z',
    updated_at: '2026-11-25T10:00:00.000Z',
    expires_at: '2026-11-25T11:00:00.000Z',
    ...overrides,
  }
}

const event = (detail: string) => ({ at: '2026-11-25T10:00:00.000Z', type: 'accepted' as const, detail })

async function suite (t: Test, store: Store) {
  t.test('an unknown number has no cached reachability', async t => {
    t.equal(await store.getReachability('+990100000'), null)
  })

  t.test('a cached reachability reads back as written', async t => {
    const entry = { record: record('+990100001'), freshUntil: Date.now() + 60_000 }
    await store.putReachability(entry, 120)
    const { version, ...read } = (await store.getReachability('+990100001'))!
    t.same(read, entry)
    t.type(version, 'string', 'the store names which write this is')
  })

  t.test('an entry is gone once its keep time has passed', async t => {
    await store.putReachability({ record: record('+990100002'), freshUntil: Date.now() }, 1)
    t.ok(await store.getReachability('+990100002'))
    await sleep(1100)
    t.equal(await store.getReachability('+990100002'), null)
  })

  t.test('a later write replaces the earlier one; what is read is a copy', async t => {
    await store.putReachability({ record: record('+990100003'), freshUntil: 1 }, 60)
    const second = { record: { ...record('+990100003'), is_reachable: false, connectivity: [] }, freshUntil: 2 }
    const first = (await store.getReachability('+990100003'))!.version
    await store.putReachability(second, 60)
    const read = await store.getReachability('+990100003')
    t.match(read, second)
    t.not(read!.version, first, 'each write is a new version')
    read!.record.connectivity.push('MUTATED')
    t.same((await store.getReachability('+990100003'))!.record.connectivity, [])
  })

  t.test('a write unless newer: news checked after the moment given, and no older, stands; anything else is replaced', async t => {
    const phone = '+990100004'
    const at = (ms: number) => new Date(ms).toISOString()
    const t0 = Date.parse('2026-11-25T10:00:00.000Z')
    const rec = (checked: number, status: number | null, reachable = true): Reachability => ({
      ...record(phone), is_reachable: reachable, connectivity: reachable ? ['DATA'] : [], checked_at: at(checked), latest_status_at: status === null ? null : at(status),
    })
    const put = (r: Reachability, since?: number, keep = 60) => store.putReachability({ record: r, freshUntil: Date.now() + 60_000 }, keep, since)
    // The upstream was asked at t0 and answers with a status of t0 - 5 s (not reachable).
    const answer = rec(t0 + 2000, t0 - 5000, false)
    t.equal(await put(answer, t0), null, 'no entry: written')
    t.match((await store.getReachability(phone))!.record, answer)

    const event = rec(t0 + 1000, t0, true)
    await put(event)
    t.same(await put(answer, t0), event, 'an event checked after the ask, with a newer status time, stands')
    t.match((await store.getReachability(phone))!.record, event, 'nothing written')
    t.same(await put(answer, t0, 0), event, 'also when the answer would not be kept')

    await put(rec(t0 - 1000, t0, true))
    t.equal(await put(answer, t0), null, 'an entry checked before the ask is replaced')
    t.match((await store.getReachability(phone))!.record, answer)

    await put(rec(t0 + 1000, t0 - 6000, true))
    t.equal(await put(answer, t0), null, 'an entry checked after the ask but telling of an earlier moment is replaced')

    await put(rec(t0 + 1000, null, true))
    t.same(await put(rec(t0 + 2000, t0 + 1000, false), t0), rec(t0 + 1000, null, true), 'no status time: its check time stands for it (equal: the held one stands)')
    t.same(await put(rec(t0 + 2000, t0 + 1001, false), t0), null, 'a later status time replaces it')

    await store.putReachability({ record: { ...answer, phone_number: '+990100005' }, freshUntil: 0 }, 0, t0)
    t.equal(await store.getReachability('+990100005'), null, 'a keep time of 0 writes nothing')
  })

  t.test('an accepted notification reads back whole, with its events', async t => {
    const n = notification(1, { campaign_id: 'cmp_1' })
    t.equal(await store.acceptNotification({ notification: n, events: [event('a'), event('b')], next: { kind: 'none' }, retentionSeconds: 60 }), true)
    const stored = await store.getNotification(n.id, 1)
    t.same(stored, { notification: n, events: [event('a'), event('b')] })
    t.equal(await store.getNotification(newNotificationId(1), 1), null)
  })

  t.test('a transition for one attempt applies only while the notification is at that attempt', async t => {
    const n = notification(1)
    await store.acceptNotification({ notification: n, events: [], next: { kind: 'none' }, retentionSeconds: 60 })
    const mark = (attempts: number, onlyAtAttempt?: number) => store.transition({
      notificationId: n.id, shard: 1, patch: { status: 'sending', attempts }, events: [event(`attempt ${attempts}`)], onlyAtAttempt,
    })
    t.equal(await mark(1, 1), false, 'refused before any attempt')
    t.equal(await mark(1, 0), true, 'applies at attempt 0 (accepted, no attempt made)')
    t.equal(await mark(2, 1), true, 'applies at attempt 1')
    t.equal(await mark(3, 1), false, 'refused once attempt 2 has begun')
    t.equal(await mark(3), true, 'without it, applies whatever the attempt')
    const stored = await store.getNotification(n.id, 1)
    t.equal(stored!.notification.attempts, 3)
    t.same(stored!.events, [event('attempt 1'), event('attempt 2'), event('attempt 3')], 'a refused transition wrote nothing')

    // Its job: not acknowledged when refused (the worker of the later attempt holds it), acknowledged when it applies.
    const queued = notification(1, { channel: 'push' })
    await store.acceptNotification({ notification: queued, events: [], next: { kind: 'outbox', lane: 'push' }, retentionSeconds: 60 })
    const job = (await store.readOutbox(1, ['push'], 'attempts', 100)).find(j => j.notificationId === queued.id)!
    const depth = (await store.outboxDepth(1)).push
    const answer = (onlyAtAttempt: number) => store.transition({ notificationId: queued.id, shard: 1, patch: { status: 'sent' }, events: [], onlyAtAttempt, ack: job })
    t.equal(await answer(1), false, 'the answer of an attempt not begun is refused')
    t.equal((await store.outboxDepth(1)).push, depth, 'and its job is not acknowledged')
    t.equal(await answer(0), true)
    t.equal((await store.outboxDepth(1)).push, depth - 1, 'the answer that applies acknowledges it')
  })

  t.test('the same accept twice (sent again after its answer was lost) stores one notification and one job', async t => {
    for (const idempotent of [false, true]) {
      const n = notification(3, { channel: 'push' })
      const ref = { shard: 3, key: `twice-${n.id}` }
      const claim = idempotent ? await store.claimIdempotency(ref, 'h', 30) : undefined
      const command = {
        notification: n, events: [event('accepted')], next: { kind: 'outbox' as const, lane: 'push' as const }, retentionSeconds: 60,
        ...(claim?.state === 'claimed' ? { idempotency: { ...ref, token: claim.token, requestHash: 'h', response: '{"id":"x"}', ttlSeconds: 60 } } : {}),
      }
      t.equal(await store.acceptNotification(command), true)
      t.equal(await store.acceptNotification(command), true, `${idempotent ? 'with' : 'without'} an Idempotency-Key: accepted, as it was`)
      const jobs = (await store.readOutbox(3, ['push'], `twice-${idempotent}`, 100)).filter(j => j.notificationId === n.id)
      t.equal(jobs.length, 1, 'one job')
      for (const job of jobs) await store.transition({ notificationId: job.notificationId, shard: 3, patch: {}, events: [], ack: job })
    }
  })

  if (store instanceof RedisStore) {
    t.test('an accept settled as not stored leaves a tombstone: the accept arriving after it stores nothing', async t => {
      const n = notification(2, { channel: 'push' })
      const key = store.keys.notification(2, n.id)
      t.equal(await store.redis.rrSettleAccept(key, 60_000), 0, 'not stored')
      t.equal(await store.acceptNotification({ notification: n, events: [event('accepted')], next: { kind: 'outbox', lane: 'push' }, retentionSeconds: 60 }), false, 'refused')
      t.equal(await store.getNotification(n.id, 2), null, 'nothing to read')
      t.notOk((await store.readOutbox(2, ['push'], 'tombstone', 100)).some(j => j.notificationId === n.id), 'no job')
      t.equal(await store.transition({ notificationId: n.id, shard: 2, patch: { status: 'sent' }, events: [event('x')] }), false, 'no transition applies to it')
      const ttl = await store.redis.pttl(key)
      t.ok(ttl > 0 && ttl <= 60_000, 'the tombstone expires')
      const stored = notification(2)
      await store.acceptNotification({ notification: stored, events: [], next: { kind: 'none' }, retentionSeconds: 60 })
      t.equal(await store.redis.rrSettleAccept(store.keys.notification(2, stored.id), 60_000), 1, 'an accept that ran settles as stored')
      t.ok(await store.getNotification(stored.id, 2), 'and is left as it was')
    })

    t.test('a transition script that fails on its arguments writes nothing: its job is not acknowledged', async t => {
      const n = notification(2)
      await store.acceptNotification({ notification: n, events: [], next: { kind: 'outbox', lane: 'push' }, retentionSeconds: 60 })
      const [job] = await store.readOutbox(2, ['push'], 'bad-args', 1)
      const key = store.keys.notification(2, n.id)
      // Fields Lua's JSON decoder refuses (what a lone surrogate was before wellFormedPatch).
      await t.rejects(store.redis.rrTransition(key, store.keys.events(2, n.id), key, store.keys.outbox(2, 'push'),
        store.keys.fallbackSince(2), store.keys.fallbackLeased(2), store.keys.dead(2), store.keys.pendingCounts(2),
        store.keys.fallbackWoken(2), job!.entryId, 'delivery', '', 'none', 0, '', n.id, Date.now(), '0', '', '{"reason":"\\ud83d"}', '[]', '', '', ''), /invalid unicode escape/)
      t.equal((await store.outboxDepth(2)).push, 1, 'the job is still there, to be taken over and tried again')
      t.equal((await store.getNotification(n.id, 2))!.notification.status, n.status, 'the notification unchanged')
      t.ok(await store.transition({ notificationId: n.id, shard: 2, patch: { status: 'sent' }, events: [], ack: job! }), 'a good transition then applies')
      t.equal((await store.outboxDepth(2)).push, 0)
    })
  }

  t.test('a record is kept for its retention, and in any case a day past its delivery deadline', async t => {
    const iso = (ms: number) => new Date(ms).toISOString()
    const day = 86_400_000
    const now = Date.now()
    // Retention 1 s: one whose deadline passed two days ago goes with its retention; one whose deadline is an
    // hour away stays (a ttl longer than the retention must still be delivered, expired and reported).
    const past = notification(2, { expires_at: iso(now - 2 * day) })
    const ahead = notification(2, { expires_at: iso(now + 3_600_000) })
    // Its deadline is moved by a transition: kept until a day past the new deadline (2.5 s from now), never shortened.
    const moved = notification(2, { expires_at: iso(now - 2 * day) })
    for (const n of [past, ahead, moved]) {
      await store.acceptNotification({ notification: n, events: [event('accepted')], next: { kind: 'none' }, retentionSeconds: 1 })
    }
    t.equal(await store.transition({
      notificationId: moved.id, shard: 2, patch: { expires_at: iso(now - day + 2500) }, events: [event('retried')],
    }), true)
    t.equal(await store.transition({
      notificationId: moved.id, shard: 2, patch: { expires_at: iso(now - 2 * day) }, events: [event('moved back')],
    }), true)
    await sleep(1300)
    t.equal(await store.getNotification(past.id, 2), null, 'past its retention and its deadline: gone')
    t.ok(await store.getNotification(ahead.id, 2), 'its deadline is ahead: kept')
    t.same((await store.getNotification(moved.id, 2))?.events.map(e => e.detail), ['accepted', 'retried', 'moved back'], 'moved: kept with its events')
    await sleep(1500)
    t.equal(await store.getNotification(moved.id, 2), null, 'a day past the moved deadline: gone')
  })

  /** `count` numbers under `prefix` that fall in shard 1, in order. */
  const phonesOfShard1 = (prefix: string, count: number) => {
    const phones: string[] = []
    for (let i = 0; phones.length < count; i++) {
      const phone = `${prefix}${String(i).padStart(5, '0')}`
      if (shardFor(phone, SHARDS) === 1) phones.push(phone)
    }
    return phones.sort()
  }
  /** A report record of a number without connectivity since `latest`. */
  const quiet = (phone: string, latest: string) => ({ ...record(phone), is_reachable: false, connectivity: [], latest_status_at: latest })

  t.test('report index pages run on from the last item given: ties by number, nothing skipped when an item leaves', async t => {
    const phones = phonesOfShard1('+99050', 7)
    // Five went quiet at the same instant, two later.
    for (const phone of phones.slice(0, 5)) await store.recordReport(quiet(phone, '2026-01-01T00:00:00.000Z'), false)
    for (const phone of phones.slice(5)) await store.recordReport(quiet(phone, '2026-01-02T00:00:00.000Z'), false)
    const page = (after?: { score: number, member: string }) => store.reportIndex('stale', 1, -Infinity, Date.parse('2026-06-01'), after, 2)
    const first = await page()
    t.same(first.map(e => e.phoneNumber), phones.slice(0, 2), 'by time, ties by number')
    // The first item comes back online between two pages: the next page still starts after the second item.
    await store.recordReport({ ...record(phones[0]!) }, true)
    const last = first.at(-1)!
    const seen = [...first]
    let after = { score: last.at, member: last.phoneNumber }
    for (;;) {
      const next = await page(after)
      seen.push(...next)
      if (next.length < 2) break
      after = { score: next.at(-1)!.at, member: next.at(-1)!.phoneNumber }
    }
    t.same(seen.map(e => e.phoneNumber), phones, 'every number once, none skipped')
    t.same((await page()).map(e => e.phoneNumber), phones.slice(1, 3), 'the one back online has left the index')
  })

  t.test('offline answers without a status time: the number is quiet since the first of them, not since the last check', async t => {
    const [phone] = phonesOfShard1('+99053', 1)
    const day = (n: number) => new Date(Date.parse('2026-01-01') + n * 86_400_000).toISOString()
    for (const n of [0, 10, 20, 30, 40, 50, 60, 70, 80, 90]) {
      await store.recordReport({ ...quiet(phone!, day(n)), checked_at: day(n), latest_status_at: null }, false)
    }
    const entry = (await store.reportIndex('stale', 1, -Infinity, Infinity, undefined, 1000)).find(e => e.phoneNumber === phone)
    t.equal(entry?.at, Date.parse(day(0)), 'quiet for 90 days, so a 60-day stale contact')
    await store.recordReport({ ...quiet(phone!, day(85)), checked_at: day(91) }, false)
    t.equal((await store.reportIndex('stale', 1, -Infinity, Infinity, undefined, 1000)).find(e => e.phoneNumber === phone)?.at, Date.parse(day(85)),
      'a status time from the network sets it')
  })

  t.test('a report record that tells of an earlier moment than the report knows changes nothing (an event that came late), when so asked', async t => {
    const [phone] = phonesOfShard1('+99052', 1)
    const at = (s: string) => `2026-03-0${s}T00:00:00.000Z`
    const back = { ...record(phone!), checked_at: at('2'), latest_status_at: at('2') }
    t.equal(await store.recordReport(back, true), true, 'reachable as of 2 March')
    const late = { ...quiet(phone!, at('1')), checked_at: at('3') }
    t.equal(await store.recordReport(late, false, true), false, 'a disconnection as of 1 March, told on the 3rd: history')
    t.match((await store.getReports([phone!]))[0], { is_reachable: true, latest_status_at: at('2'), last_checked_at: at('2') }, 'the report unchanged')
    const stale = await store.reportIndex('stale', 1, -Infinity, Infinity, undefined, 1000)
    t.notOk(stale.some(e => e.phoneNumber === phone), 'and not indexed as quiet')
    t.equal(await store.recordReport({ ...back, checked_at: at('4') }, true, true), true, 'the same moment told again is taken (a later check)')
    t.equal(await store.recordReport({ ...quiet(phone!, at('5')), checked_at: at('5') }, false, true), true, 'a later moment is taken')
    t.match((await store.getReports([phone!]))[0], { is_reachable: false, latest_status_at: at('5') })
    t.ok((await store.reportIndex('stale', 1, -Infinity, Infinity, undefined, 1000)).some(e => e.phoneNumber === phone), 'indexed as quiet')
    const unknown = { ...record(phone!), checked_at: at('6'), latest_status_at: null }
    t.equal(await store.recordReport(unknown, null, true), true, 'no status time: its check time stands for it')
    t.equal(await store.recordReport({ ...back, checked_at: at('7'), latest_status_at: at('5') }, true, true), false, 'older than that check: history')
    t.equal(await store.recordReport({ ...back, checked_at: at('8'), latest_status_at: at('5') }, true), true, 'without unlessLater (a lookup\'s answer) it is folded in whatever the report knew')
    t.match((await store.getReports([phone!]))[0], { is_reachable: true, last_checked_at: at('8') })
  })

  t.test('report index pages keep to their lower bound when the cursor lies below it', async t => {
    const phones = phonesOfShard1('+99051', 4)
    await store.recordReport(quiet(phones[0]!, '2025-01-01T00:00:00.000Z'), false)
    await store.recordReport(quiet(phones[1]!, '2025-02-01T00:00:00.000Z'), false)
    await store.recordReport(quiet(phones[2]!, '2025-03-01T00:00:00.000Z'), false)
    await store.recordReport(quiet(phones[3]!, '2025-04-01T00:00:00.000Z'), false)
    // A cursor from a page without the lower bound (the first number), then a page from 1 March on.
    const page = await store.reportIndex('stale', 1, Date.parse('2025-03-01'), Date.parse('2025-06-01'), { score: Date.parse('2025-01-01'), member: phones[0]! }, 10)
    t.same(page.map(e => e.phoneNumber), phones.slice(2), 'nothing before the lower bound')
    const within = await store.reportIndex('stale', 1, Date.parse('2025-01-15'), Date.parse('2025-06-01'), { score: Date.parse('2025-02-01'), member: phones[1]! }, 10)
    t.same(within.map(e => e.phoneNumber), phones.slice(2), 'a cursor within the bounds still starts after itself')
  })

  t.test('report index pages keep to their upper bound, even from a cursor past it', async t => {
    const phones = phonesOfShard1('+99052', 3)
    await store.recordReport(quiet(phones[0]!, '2024-01-01T00:00:00.000Z'), false)
    await store.recordReport(quiet(phones[1]!, '2024-02-01T00:00:00.000Z'), false)
    await store.recordReport(quiet(phones[2]!, '2024-03-01T00:00:00.000Z'), false)
    const upTo = (max: string, after?: { score: number, member: string }) => store.reportIndex('stale', 1, Date.parse('2023-12-01'), Date.parse(max), after, 10)
    t.same((await upTo('2024-02-15', { score: Date.parse('2024-01-01'), member: phones[0]! })).map(e => e.phoneNumber), [phones[1]], 'nothing after the upper bound')
    t.same(await upTo('2024-02-15', { score: Date.parse('2024-02-20'), member: '' }), [], 'a cursor past the bound gives nothing')
  })

  t.test('a fallback lease ended on a record that is gone no longer counts as waiting', async t => {
    const n = notification(3, { expires_at: new Date(Date.now() - 2 * 86_400_000).toISOString() })
    await store.acceptNotification({ notification: n, events: [], next: { kind: 'fallback', dueAt: Date.now() - 1 }, retentionSeconds: 1 })
    const [lease] = await store.takeDueFallback(3, Date.now(), Date.now() + 60_000, 10)
    t.equal(lease?.notificationId, n.id)
    t.not((await store.fallbackState(3, Date.now())).oldestSince, null, 'waiting while leased')
    await sleep(1100)
    t.equal(await store.transition({ notificationId: n.id, shard: 3, patch: { status: 'expired' }, events: [], lease: lease! }), false, 'the record is gone')
    t.equal((await store.fallbackState(3, Date.now())).oldestSince, null, 'not waiting any more')
  })

  t.test('a wake during a fallback lease puts the entry back due at once when its re-check reschedules it; a later lease starts unmarked', async t => {
    const shard = 2
    const n = notification(shard, { status: 'queued', channel: 'fallback_queue' })
    const now = Date.now()
    await store.acceptNotification({ notification: n, events: [], next: { kind: 'fallback', dueAt: now - 1 }, retentionSeconds: 60 })
    const take = async (at: number) => (await store.takeDueFallback(shard, at, at + 60_000, 100)).find(l => l.notificationId === n.id)
    const reschedule = (lease: FallbackLease, at: number) =>
      store.transition({ notificationId: n.id, shard, patch: {}, events: [], lease, next: { kind: 'fallback', dueAt: now + 60_000 }, at })

    const lease = await take(now)
    t.ok(lease, 'leased')
    t.equal(await store.wakeFallback(shard, [n.id], now + 5), 1, 'a leased entry counts as woken')
    t.equal(await store.wakeFallback(shard, ['no-such-entry'], now + 5), 0, 'an entry not waiting is not woken')
    // Its re-check read the cache before the event: it puts the entry back for a minute on.
    t.equal(await reschedule(lease!, now + 10), true)
    const again = await take(now + 10)
    t.ok(again, 'due at the wake, not a minute on: taken again at once')

    t.equal(await reschedule(again!, now + 20), true)
    t.equal(await take(now + 20), undefined, 'no mark left: rescheduled as asked')
    t.ok(await take(now + 60_000), 'due a minute on')
  })

  t.test('an accept based on a cache entry is stored only while that entry is unchanged', async t => {
    const phone = '+990100004'
    const shard = shardFor(phone, SHARDS)
    const based = (n: Notification, version: string, lane: 'sms' | 'push' | undefined) => store.acceptNotification({
      notification: n,
      events: [event('a')],
      next: lane ? { kind: 'outbox', lane } : { kind: 'fallback', dueAt: Date.now() + 60_000 },
      retentionSeconds: 60,
      basedOn: { phoneNumber: phone, version },
    })
    await store.putReachability({ record: record(phone), freshUntil: Date.now() + 60_000 }, 120)
    const { version } = (await store.getReachability(phone))!
    const depth = async () => (await store.outboxDepth(shard)).push
    const before = await depth()
    for (const lane of ['push', undefined] as const) {
      const n = notification(shard)
      t.equal(await based(n, version!, lane), true, `unchanged entry: stored (${lane ?? 'fallback'})`)
      t.ok(await store.getNotification(n.id, shard))
    }
    t.equal(await depth(), before + 1, 'the outbox job is there')

    await store.putReachability({ record: { ...record(phone), is_reachable: false, connectivity: [] }, freshUntil: Date.now() + 60_000 }, 120)
    for (const lane of ['push', undefined] as const) {
      const n = notification(shard)
      t.equal(await based(n, version!, lane), false, `the entry was written again: nothing stored (${lane ?? 'fallback'})`)
      t.equal(await store.getNotification(n.id, shard), null)
    }
    t.equal(await depth(), before + 1, 'and no job')
    t.equal(await based(notification(shard), 'no such version', 'push'), false)
    const gone = notification(shardFor('+990100005', SHARDS))
    t.equal(await store.acceptNotification({
      notification: gone, events: [], next: { kind: 'outbox', lane: 'push' }, retentionSeconds: 60, basedOn: { phoneNumber: '+990100005', version: '1' },
    }), false, 'no entry at all: nothing stored')
    // Leave the shard's push lane as it was for the tests after this one.
    for (const job of await store.readOutbox(shard, ['push'], 'based-on', 10)) {
      await store.transition({ notificationId: job.notificationId, shard, patch: { status: 'sent' }, events: [], ack: job })
    }
  })

  t.test('a read of several lanes gives at most the count in all, the earlier lanes first', async t => {
    const accept = (lane: 'push_bulk' | 'sms_bulk') => {
      const n = notification(0)
      return store.acceptNotification({ notification: n, events: [], next: { kind: 'outbox', lane }, retentionSeconds: 60 }).then(() => n.id)
    }
    const sms = [await accept('sms_bulk'), await accept('sms_bulk')]
    const push = [await accept('push_bulk'), await accept('push_bulk')]
    const first = await store.readOutbox(0, ['sms_bulk', 'push_bulk'], 'counted', 3)
    t.same(first.map(j => [j.lane, j.notificationId]), [['sms_bulk', sms[0]], ['sms_bulk', sms[1]], ['push_bulk', push[0]]])
    t.same((await store.readOutbox(0, ['sms_bulk', 'push_bulk'], 'counted', 3)).map(j => j.notificationId), [push[1]])
  })

  t.test('accepting into an outbox lane makes one job that one consumer gets', async t => {
    const n = notification(2)
    await store.acceptNotification({ notification: n, events: [], next: { kind: 'outbox', lane: 'sms' }, retentionSeconds: 60 })
    const jobs = await store.readOutbox(2, ['sms', 'push', 'callback'], 'consumer-a', 10)
    t.equal(jobs.length, 1)
    t.match(jobs[0], { shard: 2, lane: 'sms', notificationId: n.id, deliveries: 1 })
    t.same(await store.readOutbox(2, ['sms', 'push', 'callback'], 'consumer-b', 10), [], 'a taken job is not given to another consumer')
    t.equal((await store.outboxDepth(2)).sms, 1)

    t.same(await store.reclaimOutbox(2, 'sms', 'consumer-b', 60_000, 10), [], 'not idle long enough to be taken over')
    await sleep(60)
    const reclaimed = await store.reclaimOutbox(2, 'sms', 'consumer-b', 50, 10)
    t.equal(reclaimed.length, 1, 'idle past the visibility timeout: taken over')
    t.equal(reclaimed[0]!.notificationId, n.id)

    const done = await store.transition({
      notificationId: n.id, shard: 2, patch: { status: 'sent', attempts: 1, provider_message_id: 'm-1' }, events: [event('sent')], ack: reclaimed[0]!,
    })
    t.equal(done, true)
    t.equal((await store.outboxDepth(2)).sms, 0, 'acknowledged jobs leave the stream')
    const stored = await store.getNotification(n.id, 2)
    t.match(stored!.notification, { status: 'sent', attempts: 1, provider_message_id: 'm-1', channel: 'sms' })
    t.equal(stored!.events.length, 1)
  })

  t.test('a provider text with half an emoji (a lone surrogate) is kept well-formed, and the transition applies', async t => {
    const n = notification(2)
    await store.acceptNotification({ notification: n, events: [], next: { kind: 'outbox', lane: 'push' }, retentionSeconds: 60 })
    const [job] = await store.readOutbox(2, ['push'], 'c', 1)
    const done = await store.transition({
      notificationId: n.id, shard: 2, ack: job!, events: [{ ...event('sent'), detail: 'gateway said gw-\ud83d' }],
      patch: { status: 'sent', attempts: 1, provider_message_id: 'gw-\ud83d', reason: 'sent \ud83d\ude00 and \ude00 \ud83d' },
    })
    t.equal(done, true, 'applied')
    const stored = await store.getNotification(n.id, 2)
    t.match(stored!.notification, { status: 'sent', provider_message_id: 'gw-\ufffd', reason: 'sent \u{1F600} and \ufffd \ufffd' }, 'lone halves as U+FFFD, a whole pair kept')
    t.equal(stored!.events.length, 1, 'the event kept')
    t.equal((await store.outboxDepth(2)).push, 0, 'and its job acknowledged')
  })

  t.test('a transition from the dead letters applies only to a dead letter, and takes it off the list in the same step', async t => {
    const n = notification(3)
    await store.acceptNotification({ notification: n, events: [], next: { kind: 'none' }, retentionSeconds: 60 })
    const retry = () => store.transition({ notificationId: n.id, shard: 3, patch: { status: 'queued' }, events: [], onlyFrom: ['failed'], fromDead: true, next: { kind: 'fallback', dueAt: Date.now() } })
    t.ok(await store.transition({ notificationId: n.id, shard: 3, patch: { status: 'failed' }, events: [] }))
    t.equal(await retry(), false, 'failed, but not a dead letter: nothing moves')
    t.equal((await store.getNotification(n.id, 3))!.notification.status, 'failed')
    t.ok(await store.transition({ notificationId: n.id, shard: 3, patch: {}, events: [], dead: true }))
    t.equal(await store.isDead(3, n.id), true)
    t.equal(await retry(), true, 'a dead letter moves')
    t.equal(await store.isDead(3, n.id), false, 'and is off the list')
    t.equal(await retry(), false, 'once')
  })

  t.test('a campaign notification\'s final transition notes its count in the same step, until it is settled', async t => {
    const shard = 1
    const mine = async () => (await store.pendingCampaignCounts(shard, Date.now() + 1000, 1000)).filter(c => c.campaignId === 'cmp_pending')
    const a = notification(shard, { campaign_id: 'cmp_pending' })
    const b = notification(shard, { campaign_id: 'cmp_pending' })
    for (const n of [a, b]) await store.acceptNotification({ notification: n, events: [], next: { kind: 'none' }, retentionSeconds: 60 })
    const before = await store.pendingCampaignCountDepth(shard)
    t.ok(await store.transition({ notificationId: a.id, shard, patch: { status: 'sending' }, events: [], campaignId: 'cmp_pending' }))
    t.same(await mine(), [], 'not final: nothing noted')
    t.notOk(await store.transition({ notificationId: a.id, shard, patch: { status: 'sent' }, events: [], onlyFrom: ['queued'], campaignId: 'cmp_pending' }))
    t.same(await mine(), [], 'a transition that does not apply notes nothing')
    const t0 = Date.now()
    t.ok(await store.transition({ notificationId: a.id, shard, patch: { status: 'sent' }, events: [], campaignId: 'cmp_pending', at: t0 }))
    t.ok(await store.transition({ notificationId: b.id, shard, patch: { status: 'expired' }, events: [], dead: true, campaignId: 'cmp_pending', at: t0 + 5 }))
    t.ok(await store.transition({ notificationId: a.id, shard, patch: { status: 'delivered' }, events: [], campaignId: 'cmp_pending', at: t0 + 10 }))
    const sent = { campaignId: 'cmp_pending', notificationId: a.id, status: 'sent' as const }
    const expired = { campaignId: 'cmp_pending', notificationId: b.id, status: 'expired' as const }
    const delivered = { campaignId: 'cmp_pending', notificationId: a.id, status: 'delivered' as const }
    t.same(await mine(), [sent, expired, delivered], 'one per status reached, oldest first')
    t.equal(await store.pendingCampaignCountDepth(shard), before + 3)
    t.same((await store.pendingCampaignCounts(shard, t0 + 5, 1000)).filter(c => c.campaignId === 'cmp_pending'), [sent], 'only those noted before the bound')
    t.equal((await store.pendingCampaignCounts(shard, t0 + 1000, 1)).length, 1, 'at most the limit')
    await store.settlePendingCampaignCount(shard, sent)
    await store.settlePendingCampaignCount(shard, sent)
    t.same(await mine(), [expired, delivered], 'settled (twice is harmless)')

    // A dead letter retried: off the list and off the pending counts, in one step; its standing count noted by hand first.
    await store.notePendingCampaignCount(shard, expired, t0 + 20)
    t.ok(await store.transition({ notificationId: b.id, shard, patch: { status: 'queued' }, events: [], onlyFrom: ['expired'], fromDead: true, next: { kind: 'fallback', dueAt: t0 }, campaignId: 'cmp_pending' }))
    t.same(await mine(), [delivered], 'in progress again: its pending count is gone')
    await store.settlePendingCampaignCount(shard, delivered)
    t.equal(await store.pendingCampaignCountDepth(shard), before)
    t.ok(await store.transition({ notificationId: b.id, shard, patch: { status: 'failed' }, events: [] }), 'final again, told without its campaign id')
    t.same(await mine(), [], 'without a campaign id nothing is noted')
  })

  t.test('a transition guarded by onlyFrom changes nothing when the status differs, but still acknowledges', async t => {
    const n = notification(3, { status: 'sent' })
    await store.acceptNotification({ notification: n, events: [], next: { kind: 'outbox', lane: 'push' }, retentionSeconds: 60 })
    const [job] = await store.readOutbox(3, ['push'], 'c', 1)
    t.equal(await store.transition({ notificationId: n.id, shard: 3, patch: { status: 'failed' }, events: [event('x')], onlyFrom: ['queued', 'sending'], ack: job! }), false)
    const stored = await store.getNotification(n.id, 3)
    t.equal(stored!.notification.status, 'sent')
    t.equal(stored!.events.length, 0)
    t.equal((await store.outboxDepth(3)).push, 0)
  })

  t.test('a retry waits in the retry set until due, then returns to its lane', async t => {
    const n = notification(0)
    await store.acceptNotification({ notification: n, events: [], next: { kind: 'outbox', lane: 'push' }, retentionSeconds: 60 })
    const [job] = await store.readOutbox(0, ['push'], 'c', 1)
    const dueAt = Date.now() + 60_000
    await store.transition({ notificationId: n.id, shard: 0, patch: { status: 'queued' }, events: [], ack: job!, next: { kind: 'retry', lane: 'push', dueAt } })
    t.match(await store.outboxDepth(0), { push: 0, retry: 1 })
    t.equal(await store.releaseDueRetries(0, dueAt - 1, 10), 0)
    t.equal(await store.releaseDueRetries(0, dueAt, 10), 1)
    t.match(await store.outboxDepth(0), { push: 1, retry: 0 })
    const again = await store.readOutbox(0, ['push'], 'c', 5)
    t.equal(again.length, 1)
    t.equal(again[0]!.notificationId, n.id)
    await store.transition({ notificationId: n.id, shard: 0, patch: {}, events: [], ack: again[0]! })
  })

  t.test('lanes are served in the order asked', async t => {
    const push = notification(1)
    const sms = notification(1)
    await store.acceptNotification({ notification: push, events: [], next: { kind: 'outbox', lane: 'push' }, retentionSeconds: 60 })
    await store.acceptNotification({ notification: sms, events: [], next: { kind: 'outbox', lane: 'sms' }, retentionSeconds: 60 })
    const jobs = await store.readOutbox(1, ['sms', 'push'], 'c', 5)
    t.same(jobs.map(j => j.lane), ['sms', 'push'])
    for (const job of jobs) await store.transition({ notificationId: job.notificationId, shard: 1, patch: {}, events: [], ack: job })
  })

  t.test('idempotency: claim, in flight, done with the answer; a lost claim writes nothing', async t => {
    const ref = { shard: 2, key: `k-${Math.random()}` }
    const first = await store.claimIdempotency(ref, 'hash-1', 30)
    t.equal(first.state, 'claimed')
    t.match(await store.claimIdempotency(ref, 'hash-1', 30), { state: 'in_flight' })
    const n = notification(2)
    const token = first.state === 'claimed' ? first.token : ''
    t.equal(await store.acceptNotification({
      notification: n, events: [], next: { kind: 'none' }, retentionSeconds: 60,
      idempotency: { ...ref, token, requestHash: 'hash-1', response: '{"id":"x"}', ttlSeconds: 60 },
    }), true)
    t.same(await store.claimIdempotency(ref, 'hash-2', 30), { state: 'done', requestHash: 'hash-1', response: '{"id":"x"}' })

    const other = { shard: 2, key: `k-${Math.random()}` }
    await store.claimIdempotency(other, 'h', 30)
    const lost = notification(2)
    t.equal(await store.acceptNotification({
      notification: lost, events: [], next: { kind: 'outbox', lane: 'sms' }, retentionSeconds: 60,
      idempotency: { ...other, token: 'not-the-token', requestHash: 'h', response: '{}', ttlSeconds: 60 },
    }), false)
    t.equal(await store.getNotification(lost.id, 2), null)
  })

  t.test('answered records can be kept for less time, never for more; claims in flight are left alone', async t => {
    const answer = async (shard: number, ttlSeconds: number) => {
      const ref = { shard, key: `k-${Math.random()}` }
      const claim = await store.claimIdempotency(ref, 'h', 30)
      t.equal(await store.acceptNotification({
        notification: notification(shard), events: [], next: { kind: 'none' }, retentionSeconds: 60,
        idempotency: { ...ref, token: claim.state === 'claimed' ? claim.token : '', requestHash: 'h', response: '{}', ttlSeconds },
      }), true)
      return ref
    }
    // Refs of several shards in one call.
    const shortened = [await answer(1, 60), await answer(3, 60), await answer(3, 60)]
    const brief = await answer(2, 1)
    const untouched = await answer(0, 60)
    const inFlight = { shard: 3, key: `k-${Math.random()}` }
    await store.claimIdempotency(inFlight, 'h', 30)
    await store.shortenIdempotency([...shortened, brief, inFlight], 1)
    await store.shortenIdempotency([brief], 60)
    await sleep(1200)
    for (const ref of [...shortened, brief]) t.equal((await store.claimIdempotency(ref, 'h', 30)).state, 'claimed', `shard ${ref.shard}: gone after a second`)
    t.equal((await store.claimIdempotency(untouched, 'h', 30)).state, 'done', 'a record not named keeps its time')
    t.equal((await store.claimIdempotency(inFlight, 'h', 30)).state, 'in_flight', 'a claim in flight keeps its own time')
  })

  t.test('a released claim frees the key; a claim runs out by itself', async t => {
    const ref = { shard: 1, key: `k-${Math.random()}` }
    const claim = await store.claimIdempotency(ref, 'h', 1)
    await store.releaseIdempotency(ref, claim.state === 'claimed' ? claim.token : '')
    t.equal((await store.claimIdempotency(ref, 'h', 1)).state, 'claimed')
    await sleep(1100)
    t.equal((await store.claimIdempotency(ref, 'h', 1)).state, 'claimed')
  })

  t.test('ping answers', async t => {
    await t.resolves(store.ping())
  })

  const campaign = (id: string, createdAt = '2026-11-25T10:00:00.000Z') => ({
    id, owner: 'svc', name: 'Black Friday', message: { sms: { text: 'Hi {{name}}' } }, created_at: createdAt,
    routing: { prefer: 'push' as const, channels: ['push' as const, 'sms' as const], on_unreachable: 'queue' as const, on_unknown: 'sms' as const, ttl_seconds: 3600 },
  })

  t.test('subscriptions: a claim per type and length; stored under the claim, replacing a shorter one; the id names its number', async t => {
    const phone = `+44791110${String(Date.now() % 10000).padStart(4, '0')}`
    const until = Date.now() + 60_000
    const claim = await store.claimSubscription(phone, 'reachability-data', until)
    t.type(claim, 'string')
    t.equal(await store.claimSubscription(phone, 'reachability-data', until), null, 'one being made lasts as long')
    t.type(await store.claimSubscription(phone, 'reachability-sms', until), 'string', 'another type is claimed apart')
    t.same(await store.getSubscriptions(phone), {}, 'a claim is no subscription')
    t.same(await store.setSubscription(phone, 'reachability-data', claim!, 'sub-a', until), { stored: true, replaced: null })
    t.same(await store.getSubscriptions(phone), { 'reachability-data': 'sub-a' })
    t.equal(await store.subscriptionNumber('sub-a'), phone)
    t.equal(await store.claimSubscription(phone, 'reachability-data', until - 1000), null, 'the stored one lasts long enough')

    const longer = await store.claimSubscription(phone, 'reachability-data', until + 60_000)
    t.type(longer, 'string', 'a longer wait claims a new one')
    t.same(await store.getSubscriptions(phone), { 'reachability-data': 'sub-a' }, 'the stored one stays while the new one is made')
    t.same(await store.setSubscription(phone, 'reachability-data', longer!, 'sub-b', until + 60_000), { stored: true, replaced: 'sub-a' })
    t.same(await store.getSubscriptions(phone), { 'reachability-data': 'sub-b' })
    t.equal(await store.subscriptionNumber('sub-a'), null, 'the replaced id is forgotten')
    t.equal(await store.subscriptionNumber('sub-b'), phone)

    const lost = await store.claimSubscription(phone, 'reachability-data', until + 120_000)
    const taken = await store.claimSubscription(phone, 'reachability-data', until + 180_000)
    t.type(taken, 'string', 'a longer claim takes over one in flight')
    t.same(await store.setSubscription(phone, 'reachability-data', lost!, 'sub-lost', until + 120_000), { stored: false, replaced: null }, 'the claim taken over stores nothing')
    t.equal(await store.subscriptionNumber('sub-lost'), null)
    await store.releaseSubscriptionClaim(phone, 'reachability-data', taken!)
    t.same(await store.getSubscriptions(phone), { 'reachability-data': 'sub-b' }, 'a released claim leaves the stored one')
    t.type(await store.claimSubscription(phone, 'reachability-data', until + 120_000), 'string', 'and frees the type')
  })

  t.test('subscriptions: dropped by id (a claim in flight stays) or all (claims too)', async t => {
    const phone = `+44791120${String(Date.now() % 10000).padStart(4, '0')}`
    const until = Date.now() + 60_000
    for (const [type, id] of [['reachability-data', 'sub-d'], ['reachability-sms', 'sub-s']] as const) {
      await store.setSubscription(phone, type, (await store.claimSubscription(phone, type, until))!, id, until)
    }
    const inFlight = await store.claimSubscription(phone, 'reachability-data', until + 60_000)
    t.same(await store.dropSubscriptions(phone, 'sub-d'), { 'reachability-data': 'sub-d' })
    t.same(await store.getSubscriptions(phone), { 'reachability-sms': 'sub-s' })
    t.equal(await store.subscriptionNumber('sub-d'), null)
    t.same(await store.dropSubscriptions(phone, 'sub-unknown'), {})
    t.same(await store.setSubscription(phone, 'reachability-data', inFlight!, 'sub-d2', until + 60_000), { stored: true, replaced: null }, 'the claim in flight stayed')

    const again = await store.claimSubscription(phone, 'reachability-data', until + 120_000)
    t.same(await store.dropSubscriptions(phone), { 'reachability-data': 'sub-d2', 'reachability-sms': 'sub-s' })
    t.same(await store.getSubscriptions(phone), {})
    t.equal(await store.subscriptionNumber('sub-s'), null)
    t.same(await store.setSubscription(phone, 'reachability-data', again!, 'sub-late', until + 120_000), { stored: false, replaced: null }, 'dropping all ended the claim')
    t.equal(await store.subscriptionNumber('sub-late'), null)
  })

  t.test('subscriptions: the id stored already, stored again (an operator refusing duplicates answers with it), is not replaced and keeps its number', async t => {
    const phone = `+44791140${String(Date.now() % 10000).padStart(4, '0')}`
    const until = Date.now() + 1000
    const id = `sub-held-${randomUUID()}`
    await store.setSubscription(phone, 'reachability-data', (await store.claimSubscription(phone, 'reachability-data', until))!, id, until)

    const lost = await store.claimSubscription(phone, 'reachability-data', until + 60_000)
    const taken = await store.claimSubscription(phone, 'reachability-data', until + 120_000)
    t.same(await store.setSubscription(phone, 'reachability-data', lost!, id, until + 60_000), { stored: false, replaced: null }, 'a claim taken over stores nothing ...')
    t.equal(await store.subscriptionNumber(id), phone, '... and leaves the number of the id stored')

    t.same(await store.setSubscription(phone, 'reachability-data', taken!, id, until + 120_000), { stored: true, replaced: null }, 'nothing to end at the operator')
    t.same(await store.getSubscriptions(phone), { 'reachability-data': id })
    t.equal(await store.claimSubscription(phone, 'reachability-data', until + 60_000), null, 'it lasts as long as stored now')
    await sleep(1200)
    t.equal(await store.subscriptionNumber(id), phone, 'its number kept as long as it is stored now')
  })

  t.test('subscriptions: an id\'s number is forgotten when the subscription ends', async t => {
    const phone = `+44791130${String(Date.now() % 10000).padStart(4, '0')}`
    const until = Date.now() + 1000
    await store.setSubscription(phone, 'reachability-sms', (await store.claimSubscription(phone, 'reachability-sms', until))!, 'sub-short', until)
    t.equal(await store.subscriptionNumber('sub-short'), phone)
    await sleep(1200)
    t.equal(await store.subscriptionNumber('sub-short'), null)
  })

  t.test('subscriptions: events of an id not stored yet are parked, a few, until taken or their time runs out; none once the id is stored', async t => {
    const id = `sub-early-${randomUUID()}`
    t.equal(await store.parkSubscriptionEvent(id, 'e1', 60, 2), true, 'parked')
    t.equal(await store.parkSubscriptionEvent(id, 'e2', 60, 2), true)
    t.equal(await store.parkSubscriptionEvent(id, 'e3', 60, 2), true, 'past the most kept: taken, kept no more')
    t.same(await store.takeSubscriptionEvents(id), ['e1', 'e2'], 'oldest first')
    t.same(await store.takeSubscriptionEvents(id), [], 'taken once')

    const phone = `+44791150${String(Date.now() % 10000).padStart(4, '0')}`
    const until = Date.now() + 60_000
    await store.setSubscription(phone, 'reachability-data', (await store.claimSubscription(phone, 'reachability-data', until))!, id, until)
    t.equal(await store.parkSubscriptionEvent(id, 'e4', 60, 2), false, 'the id is stored: not parked')
    t.same(await store.takeSubscriptionEvents(id), [])

    const brief = `sub-early-${randomUUID()}`
    await store.parkSubscriptionEvent(brief, 'e5', 1, 2)
    await sleep(1100)
    t.same(await store.takeSubscriptionEvents(brief), [], 'forgotten once its time ran out')
  })

  t.test('watchers: how long the longest-waiting notification waits; none once the last leaves', async t => {
    const phone = `+44791140${String(Date.now() % 10000).padStart(4, '0')}`
    const until = Date.now() + 60_000
    t.equal(await store.watchedUntil(phone), null)
    await store.watchNumber(phone, 'ntf_a', until)
    await store.watchNumber(phone, 'ntf_b', until + 5000)
    await store.watchNumber(phone, 'ntf_c', until - 5000)
    t.ok(Math.abs(await store.watchedUntil(phone) as number - (until + 5000)) < 50)
    await store.unwatchNumber(phone, 'ntf_a')
    await store.unwatchNumber(phone, 'ntf_b')
    t.equal(await store.unwatchNumber(phone, 'ntf_c'), 0)
    t.equal(await store.watchedUntil(phone), null)
  })

  t.test('events: seen once marked, until the mark runs out', async t => {
    const key = `event-key-${Date.now()}`
    t.notOk(await store.eventSeen(key))
    await store.markEventSeen(key, 1)
    t.ok(await store.eventSeen(key))
    t.notOk(await store.eventSeen(`${key}-other`))
    await sleep(1100)
    t.notOk(await store.eventSeen(key))
  })

  t.test('campaign: a number listed twice is appended once; chunks are claimed in order only while running', async t => {
    const id = `cmp_contract_${Math.random().toString(36).slice(2)}`
    await store.createCampaign(campaign(id), 3600)
    const added = await store.appendCampaignRecipients(id, [
      { to: '+990100101', payload: 'a' }, { to: '+990100102', payload: 'b' }, { to: '+990100101', payload: 'a again' },
    ])
    t.same(added, [true, true, false])
    t.same(await store.appendCampaignRecipients(id, [{ to: '+990100102', payload: 'b again' }, { to: '+990100103', payload: 'c' }]), [false, true])
    const now = Date.now()
    const claim = (count: number) => store.claimCampaignRecipients(id, count, now, now + 60_000)
    t.equal(await claim(2), null, 'nothing is claimed before it runs')
    t.same(await store.setCampaignStatus(id, 'running', ['accepted'], '2026-11-25T10:00:01.000Z'), { changed: true, status: 'running' })
    t.same(await claim(2), { lease: { start: 0, count: 2, until: now + 60_000 }, items: ['a', 'b'] })
    t.same(await claim(2), { lease: { start: 2, count: 1, until: now + 60_000 }, items: ['c'] })
    t.equal(await claim(2), null)
    const got = await store.getCampaign(id)
    t.equal(got?.status, 'running')
    t.equal(got?.doc.name, 'Black Friday')
  })

  /** A running campaign of `count` recipients. */
  async function runningCampaign (count: number): Promise<string> {
    const id = `cmp_contract_${Math.random().toString(36).slice(2)}`
    await store.createCampaign(campaign(id), 3600)
    await store.appendCampaignRecipients(id, Array.from({ length: count }, (_, i) => ({ to: `+9901005${String(i).padStart(5, '0')}`, payload: `p${i}` })))
    await store.setCampaignStatus(id, 'running', ['accepted'], 'x')
    return id
  }
  const failed = (index: number, reason = 'no channel') => ({ index, to: `+9901005${String(index).padStart(5, '0')}`, reason })
  /** Recipient `index` handled: failed for `reason`. */
  const failure = (index: number, reason?: string) => ({ index, failure: failed(index, reason) })
  /** Recipient `index` handled: notification `id` made, routed to SMS on a cached lookup (final at acceptance when given). */
  const made = (index: number, id: string, final?: Notification['status']) =>
    ({ index, lookup: 'cache' as const, notification: { id, channel: 'sms' as const, ...(final ? { final } : {}) } })
  const finish = (id: string, lease: { start: number, count: number, until: number }, handled: Parameters<Store['countCampaignRecipients']>[2] = []) =>
    store.countCampaignRecipients(id, lease, handled, { at: Date.now(), finish: true })

  t.test('campaign: failed recipients are kept as they are counted, the lowest 100 indexes whatever order they come in', async t => {
    const id = await runningCampaign(250)
    const now = Date.now()
    const first = (await store.claimCampaignRecipients(id, 120, now, now + 60_000))!
    const second = (await store.claimCampaignRecipients(id, 130, now, now + 60_000))!
    t.same([first.lease.start, second.lease.start], [0, 120])
    // The second chunk finishes first, every recipient failed: 130 failures, more than are kept.
    t.equal(await finish(id, second.lease, Array.from({ length: 130 }, (_, i) => failure(120 + i))), 130)
    let kept = await store.campaignFailures(id)
    t.same(kept.map(f => f.index), Array.from({ length: CAMPAIGN_FAILURES_KEPT }, (_, i) => 120 + i), 'the lowest 100 of those')
    t.same(kept[0], failed(120), 'with its number and reason')
    // Then the first chunk, with 60 failures before them: they take the place of the highest.
    const early = Array.from({ length: 60 }, (_, i) => failure(2 * i, 'missing name'))
    const notified = Array.from({ length: 60 }, (_, i) => made(2 * i + 1, `ntf_00_first_${i}`))
    t.equal(await finish(id, first.lease, [...early, ...notified]), 120)
    kept = await store.campaignFailures(id)
    t.same(kept.map(f => f.index), [...early.map(f => f.index), ...Array.from({ length: 40 }, (_, i) => 120 + i)], 'the lowest 100 indexes, by index')
    t.same(kept[0], failed(0, 'missing name'))
    t.match((await store.getCampaign(id))?.counters, { processed: 250, recipients_failed: 190, 'channel:sms': 60, 'lookups:cache': 60 })
  })

  t.test('campaign: a runner that lost its chunk\'s lease counts nothing and keeps none of its failures', async t => {
    const id = await runningCampaign(3)
    const now = Date.now()
    const lost = (await store.claimCampaignRecipients(id, 3, now, now + 1000))!
    // Its lease ran out; another runner takes the chunk again and every recipient goes through.
    const again = (await store.claimCampaignRecipients(id, 3, now + 2000, now + 62_000))!
    t.same(again.lease.start, 0)
    t.equal(await store.countCampaignRecipients(id, lost.lease, [failure(0, 'timed out')], { at: now }), null, 'not while it works on the chunk')
    t.equal(await finish(id, lost.lease, [failure(0, 'timed out'), made(1, 'ntf_00_b'), failure(2, 'timed out')]), null, 'nor as it finishes')
    t.same(await store.campaignFailures(id), [], 'recipients that only failed for the runner that lost the lease are not named')
    t.notOk((await store.getCampaign(id))?.counters.processed)
    t.equal(await finish(id, again.lease, [made(0, 'ntf_00_a'), made(1, 'ntf_00_b'), made(2, 'ntf_00_c')]), 3)
    t.same(await store.campaignFailures(id), [])
    t.match((await store.getCampaign(id))?.counters, { processed: 3, 'channel:sms': 3 })
    t.notOk((await store.getCampaign(id))?.counters.recipients_failed)
    t.same(await store.campaignFailures('cmp_none'), [], 'no campaign: none kept')
  })

  t.test('campaign: recipients are counted as they are handled, each once, by whichever holder of the chunk tells it first', async t => {
    const id = await runningCampaign(4)
    const now = Date.now()
    const minute = `minute:${Math.floor(now / 60_000)}`
    const a = (await store.claimCampaignRecipients(id, 4, now, now + 1000))!
    t.equal(await store.countCampaignRecipients(id, a.lease, [made(0, 'ntf_00_0'), failure(1)], { at: now }), 2, 'two counted while the chunk is worked on')
    t.equal(await store.countCampaignRecipients(id, a.lease, [made(0, 'ntf_00_0'), made(2, 'ntf_00_2')], { at: now }), 1, 'told again (an answer lost): counted once')
    t.match((await store.getCampaign(id))?.counters, { processed: 3, 'channel:sms': 2, 'lookups:cache': 2, recipients_failed: 1, [minute]: 3 })
    t.equal(await store.completeCampaign(id, 'x'), false, 'the chunk is still held')
    // A's lease ran out: B takes the chunk and works it through whole; what A counted is not counted again.
    const b = (await store.claimCampaignRecipients(id, 4, now + 2000, now + 62_000))!
    t.same(b.lease.start, 0)
    t.equal(await store.countCampaignRecipients(id, a.lease, [made(3, 'ntf_00_3')], { at: now }), null, 'A counts no more')
    t.equal(await finish(id, b.lease, [made(0, 'ntf_00_0'), made(1, 'ntf_00_1'), made(2, 'ntf_00_2'), made(3, 'ntf_00_3')]), 1, 'only the recipient nobody counted')
    t.match((await store.getCampaign(id))?.counters, { processed: 4, 'channel:sms': 3, 'lookups:cache': 3, recipients_failed: 1, [minute]: 4 })
    t.same((await store.campaignFailures(id)).map(f => f.index), [1], 'the failure A counted stands')
    t.equal(await finish(id, b.lease, []), null, 'the lease ended with the last count')
    t.ok(await store.completeCampaign(id, 'x'))
    if (store instanceof RedisStore) t.equal(await store.redis.exists(store.keys.campaignHandled(id)), 0, 'the recipients counted are forgotten once it completes')
  })

  t.test('campaign: a cancelled one\'s recipients are released once no chunk lease is live; a holder finishing later counts nothing', async t => {
    const id = await runningCampaign(4)
    await store.countCampaign(id, { recipients_accepted: 4 })
    const now = Date.now()
    t.notOk(await store.releaseCancelledCampaign(id, now), 'not while running')
    const held = (await store.claimCampaignRecipients(id, 2, now, now + 1000))!
    await store.setCampaignStatus(id, 'cancelled', ['running'], 'x')
    t.notOk(await store.releaseCancelledCampaign(id, now), 'a chunk is still in hand')
    t.ok(await store.releaseCancelledCampaign(id, now + 1000), 'its lease ran out')
    t.equal(await finish(id, held.lease, [made(0, 'ntf_00_late')]), null, 'the late holder finds its lease gone')
    t.match(await store.getCampaign(id), { status: 'cancelled', counters: { recipients_accepted: 4 } }, 'the record and counts stay')
    t.equal(await store.claimCampaignRecipients(id, 2, now, now + 1000), null)
    if (store instanceof RedisStore) {
      const gone = [store.keys.campaignRecipients(id), store.keys.campaignNumbers(id), store.keys.campaignHandled(id), store.keys.campaignLeases(id)]
      t.equal(await store.redis.exists(...gone), 0, 'recipients, numbers, handled and leases are gone')
    }
    t.ok(await store.releaseCancelledCampaign(id, now + 1000), 'again: nothing left, still released')
    t.notOk(await store.releaseCancelledCampaign('cmp_none', now))
  })

  t.test('campaign: status changes check the current status; completion waits for every recipient', async t => {
    const id = `cmp_contract_${Math.random().toString(36).slice(2)}`
    await store.createCampaign(campaign(id), 3600)
    await store.appendCampaignRecipients(id, [{ to: '+990100201', payload: 'a' }])
    await store.countCampaign(id, { recipients_accepted: 1, recipients_total: 1 })
    t.same(await store.setCampaignStatus(id, 'paused', ['running'], 'x'), { changed: false, status: 'accepted' }, 'pause only from running')
    await store.setCampaignStatus(id, 'running', ['accepted'], 'x')
    t.same(await store.setCampaignStatus(id, 'paused', ['running'], 'x'), { changed: true, status: 'paused' })
    const now = Date.now()
    t.equal(await store.claimCampaignRecipients(id, 10, now, now + 60_000), null, 'a paused campaign gives no recipients')
    t.same(await store.setCampaignStatus(id, 'running', ['paused'], 'x'), { changed: true, status: 'running' })
    t.notOk(await store.completeCampaign(id, 'x'), 'a recipient is still to claim')
    const chunk = await store.claimCampaignRecipients(id, 10, now, now + 60_000)
    t.same(chunk?.items, ['a'])
    t.notOk(await store.completeCampaign(id, 'x'), 'claimed but not processed')
    t.equal(await finish(id, chunk!.lease, [made(0, 'ntf_00_only')]), 1)
    t.ok(await store.completeCampaign(id, '2026-11-25T10:05:00.000Z'))
    const got = await store.getCampaign(id)
    t.match(got, { status: 'completed', completed_at: '2026-11-25T10:05:00.000Z', counters: { processed: 1, 'channel:sms': 1, recipients_accepted: 1 } })
    t.ok(await store.completeCampaign(id, '2026-11-25T10:06:00.000Z'), 'completing again is a no-op')
    t.equal(await store.claimCampaignRecipients(id, 10, now, now + 60_000), null, 'nothing to claim once completed')
    if (store instanceof RedisStore) {
      t.equal(await store.redis.exists(store.keys.campaignRecipients(id), store.keys.campaignNumbers(id)), 0, 'its recipients and numbers are gone, the record stays')
    }
    t.same(await store.setCampaignStatus(id, 'cancelled', ['accepted', 'running', 'paused'], 'x'), { changed: false, status: 'completed' })
    t.same(await store.setCampaignStatus('cmp_none', 'cancelled', ['running'], 'x'), { changed: false, status: null })
    t.equal(await store.getCampaign('cmp_none'), null)
  })

  t.test('campaign chunks: a lapsed lease is taken again; only the latest holder renews and counts it', async t => {
    const id = `cmp_contract_${Math.random().toString(36).slice(2)}`
    await store.createCampaign(campaign(id), 3600)
    await store.appendCampaignRecipients(id, ['a', 'b', 'c', 'd', 'e'].map((p, i) => ({ to: `+99010030${i}`, payload: p })))
    await store.countCampaign(id, { recipients_accepted: 5, recipients_total: 5 })
    await store.setCampaignStatus(id, 'running', ['accepted'], 'x')
    const now = Date.now()
    // Runner A takes the first chunk and dies; runner B takes the next one.
    const a = await store.claimCampaignRecipients(id, 3, now, now + 1000)
    t.same(a, { lease: { start: 0, count: 3, until: now + 1000 }, items: ['a', 'b', 'c'] })
    const b = await store.claimCampaignRecipients(id, 3, now, now + 1000)
    t.same(b?.items, ['d', 'e'])
    t.ok(await store.renewCampaignChunk(id, b!.lease, now + 5000), 'B renews its lease')
    const renewedB = { ...b!.lease, until: now + 5000 }
    t.equal(await store.claimCampaignRecipients(id, 3, now + 500, now + 1500), null, 'nothing left, and no lease has lapsed yet')
    // After A's lease ran out, runner C gets A's chunk again (whatever count it asks), B keeps its own.
    const c = await store.claimCampaignRecipients(id, 10, now + 2000, now + 62_000)
    t.same(c, { lease: { start: 0, count: 3, until: now + 62_000 }, items: ['a', 'b', 'c'] })
    t.equal(await store.claimCampaignRecipients(id, 10, now + 2000, now + 62_000), null)
    t.notOk(await store.renewCampaignChunk(id, a!.lease, now + 9000), 'A can no longer renew')
    const chunkA = [made(0, 'ntf_00_a'), made(1, 'ntf_00_b'), made(2, 'ntf_00_c')]
    const chunkB = [made(3, 'ntf_00_d'), made(4, 'ntf_00_e')]
    t.equal(await finish(id, a!.lease, chunkA), null, 'A, back to life, counts nothing')
    t.equal(await finish(id, b!.lease, chunkB), null, 'a lease shown as it was before its renewal counts nothing')
    t.equal(await finish(id, renewedB, chunkB), 2)
    t.equal(await finish(id, renewedB, chunkB), null, 'a chunk is finished once')
    t.notOk(await store.completeCampaign(id, 'x'), 'C still holds a chunk')
    t.equal(await finish(id, c!.lease, chunkA), 3)
    t.ok(await store.completeCampaign(id, 'x'))
    t.match((await store.getCampaign(id))?.counters, { processed: 5, 'channel:sms': 5 })
  })

  t.test('chunks given back (a runner stopping) are taken again at once, before the next chunk; the giver counts nothing', async t => {
    const now = Date.now()
    const id = await runningCampaign(6)
    const stopped = (await store.claimCampaignRecipients(id, 3, now, now + 60_000))!
    const renewCampaign = (l: typeof stopped.lease, until: number) => store.renewCampaignChunk(id, l, until)
    t.ok(await giveBack(stopped.lease, renewCampaign, () => now + 10), 'given back')
    t.notOk(await giveBack(stopped.lease, renewCampaign, () => now + 20), 'a lease given back is no longer the giver\'s: it gives nothing back twice')
    const again = await store.claimCampaignRecipients(id, 3, now + 10, now + 60_010)
    t.same(again, { lease: { start: 0, count: 3, until: now + 60_010 }, items: ['p0', 'p1', 'p2'] }, 'the next claim, in the same millisecond, takes it (its lease a minute from then), not the next chunk')
    t.equal(await finish(id, stopped.lease, [made(0, 'ntf_00_0')]), null, 'the runner that gave it back counts nothing')
    t.equal(await finish(id, again!.lease, [made(0, 'ntf_00_0'), made(1, 'ntf_00_1'), made(2, 'ntf_00_2')]), 3)
    t.same((await store.claimCampaignRecipients(id, 3, now + 10, now + 60_010))?.items, ['p3', 'p4', 'p5'])

    const scan = `rfr_contract_${Math.random().toString(36).slice(2)}`
    await store.createRefreshJob({ id: scan, owner: 'svc', status: 'running', total: 2, done: 0, failed: 0, created_at: '2026-11-25T10:00:00.000Z', completed_at: null }, ['+990100501', '+990100502'], 3600)
    const batch = (await store.claimRefreshNumbers(scan, 1, now, now + 60_000))!
    t.ok(await giveBack(batch.lease, (l, until) => store.renewRefreshChunk(scan, l, until), () => now + 10))
    t.same((await store.claimRefreshNumbers(scan, 1, now + 10, now + 60_010))?.items, ['+990100501'], 'a fleet-scan batch given back is taken again at once, not the next one')
    t.notOk(await store.finishRefreshChunk(scan, batch.lease, 1, 0), 'and counted only by its new holder')
  })

  t.test('campaign finals: each notification counted once, in its latest status, whatever the order and however often told', async t => {
    const id = await runningCampaign(4)
    const [sentThenDelivered, receiptFirst, dropped, sentThenFailed] = [0, 1, 2, 3].map(i => newNotificationId(i % SHARDS))
    const count = (n: string, status: Notification['status']) => store.countCampaignFinal(id, n, status)
    const statuses = async () => Object.fromEntries(Object.entries((await store.getCampaign(id))!.counters).filter(([k]) => k.startsWith('status:')))
    const { lease } = (await store.claimCampaignRecipients(id, 4, Date.now(), Date.now() + 60_000))!
    t.equal(await finish(id, lease, [sentThenDelivered!, receiptFirst!, dropped!, sentThenFailed!].map((n, i) => made(i, n))), 4, 'the four notifications counted as made')

    t.ok(await count(sentThenDelivered!, 'sent'))
    t.notOk(await count(sentThenDelivered!, 'sent'), 'told again (a retry after a timeout whose count did run): not counted twice')
    t.ok(await count(sentThenDelivered!, 'delivered'), 'its delivery receipt moves it from sent to delivered')
    t.notOk(await count(sentThenDelivered!, 'delivered'), 'a repeated receipt')
    t.notOk(await count(sentThenDelivered!, 'failed'), 'a second later final does not move it again')
    t.notOk(await count(sentThenDelivered!, 'sent'), 'nor does a late sent')

    t.ok(await count(receiptFirst!, 'delivered'), 'the receipt came before the worker recorded sent')
    t.notOk(await count(receiptFirst!, 'sent'), 'the worker\'s sent, told after: it stays delivered')
    t.ok(await count(dropped!, 'dropped'))
    t.notOk(await count(dropped!, 'sent'))
    t.ok(await count(sentThenFailed!, 'sent'))
    t.ok(await count(sentThenFailed!, 'failed'), 'an SMS the network could not deliver')
    t.same(await statuses(), { 'status:sent': 0, 'status:delivered': 2, 'status:dropped': 1, 'status:failed': 1 }, 'four notifications, four counted, each in its latest status')

    t.notOk(await store.countCampaignFinal('cmp_none', sentThenDelivered!, 'sent'), 'no campaign: nothing counted')
    t.equal(await store.getCampaign('cmp_none'), null, 'nor brought into being')
    if (store instanceof RedisStore) {
      const counted = store.keys.campaignCounted(id)
      t.equal(await store.redis.hget(counted, receiptFirst!), 'delivered', 'each notification\'s counted status, in the campaign\'s slot')
      const [campaignTtl, countedTtl] = await Promise.all([store.redis.pttl(store.keys.campaign(id)), store.redis.pttl(counted)])
      // The script copies the campaign's PTTL, whole milliseconds: the copy can end up to a millisecond later.
      t.ok(countedTtl > 0 && countedTtl <= campaignTtl + 2, `the record expires with the campaign (${countedTtl} of ${campaignTtl} ms)`)
    }
  })

  t.test('campaign finals: a notification reopened (a dead letter retried) leaves its count and is counted anew when it ends', async t => {
    const id = await runningCampaign(1)
    const n = newNotificationId(0)
    const statuses = async () => Object.fromEntries(Object.entries((await store.getCampaign(id))!.counters).filter(([k]) => k.startsWith('status:')))
    const { lease } = (await store.claimCampaignRecipients(id, 1, Date.now(), Date.now() + 60_000))!
    t.equal(await finish(id, lease, [made(0, n)]), 1)
    t.notOk(await store.reopenCampaignFinal(id, n, 'expired'), 'never counted: nothing to reopen')
    t.ok(await store.countCampaignFinal(id, n, 'expired'))
    t.ok(await store.reopenCampaignFinal(id, n, 'expired'))
    t.same(await statuses(), { 'status:expired': 0 }, 'in progress again')
    t.notOk(await store.reopenCampaignFinal(id, n, 'expired'), 'a repeat changes nothing')
    t.ok(await store.countCampaignFinal(id, n, 'sent'), 'counted anew when it ends')
    t.same(await statuses(), { 'status:expired': 0, 'status:sent': 1 })
    t.notOk(await store.reopenCampaignFinal(id, n, 'expired'), 'counted in another status since: left as it is')
    t.same(await statuses(), { 'status:expired': 0, 'status:sent': 1 })
    t.notOk(await store.reopenCampaignFinal('cmp_none', n, 'expired'), 'no campaign')
  })

  t.test('campaign finals at acceptance are counted with their recipient, by the lease holder only, once with later counts', async t => {
    const id = await runningCampaign(3)
    const now = Date.now()
    const [dropped, failedAtOnce, sent] = [0, 1, 2].map(i => newNotificationId(i % SHARDS))
    const lost = (await store.claimCampaignRecipients(id, 3, now, now + 1000))!
    const again = (await store.claimCampaignRecipients(id, 3, now + 2000, now + 62_000))!
    const handled = [made(0, dropped!, 'dropped'), made(1, failedAtOnce!, 'failed'), made(2, sent!)]
    t.equal(await finish(id, lost.lease, handled), null, 'the runner that lost the lease counts nothing')
    t.notOk((await store.getCampaign(id))!.counters['status:dropped'])
    t.equal(await finish(id, again.lease, handled), 3)
    t.notOk(await store.countCampaignFinal(id, dropped!, 'dropped'), 'counted with its recipient already')
    t.ok(await store.countCampaignFinal(id, sent!, 'sent'))
    t.match((await store.getCampaign(id))!.counters, { processed: 3, 'status:dropped': 1, 'status:failed': 1, 'status:sent': 1 })
    // Completed, the campaign still takes its notifications' receipts.
    t.ok(await store.completeCampaign(id, 'x'))
    t.ok(await store.countCampaignFinal(id, sent!, 'delivered'))
    t.match((await store.getCampaign(id))!.counters, { 'status:sent': 0, 'status:delivered': 1 })
  })

  t.test('campaign finals told before their notification is counted as made wait for it: no status count holds a notification not counted as made', async t => {
    const id = await runningCampaign(3)
    const now = Date.now()
    const [early, receiptEarly, reopened] = [0, 1, 2].map(i => newNotificationId(i % SHARDS))
    const counters = async () => (await store.getCampaign(id))!.counters
    const statuses = async () => Object.fromEntries(Object.entries(await counters()).filter(([k, n]) => k.startsWith('status:') && n !== 0))
    // The delivery worker ends notifications of a chunk whose recipients are not counted yet.
    t.ok(await store.countCampaignFinal(id, early!, 'sent'), 'taken')
    t.notOk(await store.countCampaignFinal(id, early!, 'sent'), 'told again: nothing moves')
    t.ok(await store.countCampaignFinal(id, receiptEarly!, 'sent'))
    t.ok(await store.countCampaignFinal(id, receiptEarly!, 'delivered'), 'its receipt too, before its recipient is counted')
    t.notOk(await store.countCampaignFinal(id, receiptEarly!, 'sent'), 'a late sent after it changes nothing')
    t.ok(await store.countCampaignFinal(id, reopened!, 'expired'))
    t.ok(await store.reopenCampaignFinal(id, reopened!, 'expired'), 'a dead letter retried before its recipient was counted: forgotten')
    t.same(await statuses(), {}, 'no status counted: no notification is counted as made yet')
    const { lease } = (await store.claimCampaignRecipients(id, 3, now, now + 60_000))!
    t.equal(await store.countCampaignRecipients(id, lease, [made(0, early!), made(1, receiptEarly!)], { at: now }), 2)
    t.same(await statuses(), { 'status:sent': 1, 'status:delivered': 1 }, 'counted as made: in the status told, the latest one')
    t.match(await counters(), { 'channel:sms': 2 })
    t.equal(await finish(id, lease, [made(2, reopened!)]), 1)
    t.same(await statuses(), { 'status:sent': 1, 'status:delivered': 1 }, 'the reopened one is in progress')
    t.ok(await store.countCampaignFinal(id, early!, 'delivered'), 'a receipt once made moves it as ever')
    t.same(await statuses(), { 'status:delivered': 2 })
  })

  t.test('fleet-scan numbers: leased batches, a lapsed one taken again, counted once, then complete', async t => {
    const id = `rfr_contract_${Math.random().toString(36).slice(2)}`
    const job = { id, owner: 'svc', status: 'running' as const, total: 3, done: 0, failed: 0, created_at: '2026-11-25T10:00:00.000Z', completed_at: null }
    await store.createRefreshJob(job, ['+990100401', '+990100402', '+990100403'], 3600)
    t.ok((await store.activeRefreshJobs()).includes(id))
    const now = Date.now()
    const dead = await store.claimRefreshNumbers(id, 2, now, now + 1000)
    t.same(dead, { lease: { start: 0, count: 2, until: now + 1000 }, items: ['+990100401', '+990100402'] })
    const live = await store.claimRefreshNumbers(id, 2, now, now + 60_000)
    t.same(live?.items, ['+990100403'])
    t.equal(await store.claimRefreshNumbers(id, 2, now, now + 60_000), null)
    t.ok(await store.finishRefreshChunk(id, live!.lease, 1, 0))
    t.notOk(await store.completeRefreshJob(id, 'x'), 'a batch is still held')
    const again = await store.claimRefreshNumbers(id, 2, now + 1000, now + 61_000)
    t.same(again?.items, ['+990100401', '+990100402'], 'the lapsed batch is taken again')
    t.notOk(await store.finishRefreshChunk(id, dead!.lease, 2, 0), 'the dead runner counts nothing')
    t.ok(await store.renewRefreshChunk(id, again!.lease, now + 90_000))
    t.ok(await store.finishRefreshChunk(id, { ...again!.lease, until: now + 90_000 }, 1, 1))
    t.ok(await store.completeRefreshJob(id, '2026-11-25T10:01:00.000Z'))
    t.match(await store.getRefreshJob(id), { status: 'completed', done: 2, failed: 1, completed_at: '2026-11-25T10:01:00.000Z' })
    t.notOk((await store.activeRefreshJobs()).includes(id))
  })

  t.test('campaigns are listed by creation time; the active set holds what runners look at', async t => {
    const ids = ['cmp_list_b', 'cmp_list_a'].map(id => `${id}_${Math.random().toString(36).slice(2)}`)
    await store.createCampaign(campaign(ids[0]!, '2026-11-25T09:00:00.000Z'), 3600 * 24 * 365 * 5)
    await store.createCampaign(campaign(ids[1]!, '2026-11-25T09:00:01.000Z'), 3600 * 24 * 365 * 5)
    const listed = (await store.listCampaigns(undefined, 1000)).map(c => c.id)
    t.ok(listed.indexOf(ids[0]!) >= 0 && listed.indexOf(ids[0]!) < listed.indexOf(ids[1]!), 'older first')
    await store.setCampaignActive(ids[0]!, true)
    t.ok((await store.activeCampaigns()).includes(ids[0]!))
    await store.setCampaignActive(ids[0]!, false)
    t.notOk((await store.activeCampaigns()).includes(ids[0]!))
  })

  t.test('campaign listing: the next page starts after the last campaign given, however many left the head of the list', async t => {
    const tag = Math.random().toString(36).slice(2)
    const t0 = Date.now()
    const at = (ms: number) => new Date(ms).toISOString()
    // Two campaigns kept for a second, then three kept for an hour.
    const brief = [0, 1].map(i => `cmp_page_${i}_${tag}`)
    const kept = [2, 3, 4].map(i => `cmp_page_${i}_${tag}`)
    for (const [i, id] of brief.entries()) await store.createCampaign(campaign(id, at(t0 - 10_000 + i)), 1)
    for (const [i, id] of kept.entries()) await store.createCampaign(campaign(id, at(t0 - 5000 + i)), 3600)
    const from = { score: t0 - 10_001, member: '' }
    const page1 = await store.listCampaigns(from, 2)
    t.same(page1, brief.map((id, i) => ({ id, createdMs: t0 - 10_000 + i })))
    await sleep(1100)
    // A campaign created now: past their retention, the first two leave the list.
    await store.createCampaign(campaign(`cmp_page_now_${tag}`, at(t0)), 7)
    t.same((await store.listCampaigns(from, 3)).map(c => c.id), kept, 'the first two are gone')
    const last = page1.at(-1)!
    const page2 = await store.listCampaigns({ score: last.createdMs, member: last.id }, 2)
    t.same(page2.map(c => c.id), kept.slice(0, 2), 'page 2 goes on where page 1 ended: nothing skipped')
    const tie = await store.listCampaigns({ score: t0 - 5000, member: kept[0]! }, 1)
    t.same(tie.map(c => c.id), [kept[1]], 'after a position, not at it')
  })
}

// The stores' suites run side by side: each spends most of its time waiting for keys to expire.
t.jobs = 4

t.test('memory store', async t => {
  const store = new MemoryStore({ shards: SHARDS })
  t.teardown(() => store.close())
  await suite(t, store)
})

t.test('memory store: campaigns and fleet scans past their retention are swept, as their keys expire in Redis', async t => {
  let now = Date.parse('2026-11-25T10:00:00.000Z')
  const store = new MemoryStore({ shards: SHARDS, now: () => now, sweepIntervalMs: 10 })
  t.teardown(() => store.close())
  const routing = { prefer: 'push' as const, channels: ['push' as const, 'sms' as const], on_unreachable: 'queue' as const, on_unknown: 'sms' as const, ttl_seconds: 3600 }
  await store.createCampaign({ id: 'cmp_swept', owner: 'svc', name: 'old', message: { sms: { text: 'hi' } }, created_at: new Date(now).toISOString(), routing }, 60)
  await store.createRefreshJob({ id: 'scan_swept', owner: 'svc', status: 'running', total: 1, done: 0, failed: 0, created_at: new Date(now).toISOString(), completed_at: null }, ['+990100001'], 60)
  t.ok(await store.countCampaignFinal('cmp_swept', 'ntf_00_0', 'sent'))
  now += 30_000
  await sleep(40)
  t.ok(await store.getCampaign('cmp_swept'), 'within its retention')
  t.ok(await store.getRefreshJob('scan_swept'))
  now += 31_000
  await sleep(40)
  t.equal(await store.getCampaign('cmp_swept'), null, 'past its retention: swept')
  t.notOk(await store.countCampaignFinal('cmp_swept', 'ntf_00_0', 'delivered'), 'its notifications\' counted statuses with it')
  t.equal(await store.getRefreshJob('scan_swept'), null)
  t.same(await store.activeRefreshJobs(), [])
})

t.test('redis store', { skip: !(await redisAvailable()) && 'Redis is not running (CI=true makes this a failure)' }, async t => {
  const keyPrefix = uniquePrefix()
  const store = await RedisStore.connect({ url: REDIS_URL, keyPrefix, commandTimeoutMs: 1000, shards: SHARDS })
  t.teardown(async () => { await store.close(); await dropPrefix(keyPrefix) })
  await suite(t, store)
  t.test('outbox streams deleted under the store (a FLUSHDB): reading makes their groups again', async t => {
    await store.redis.del(store.keys.outbox(2, 'sms'), store.keys.outbox(2, 'push'))
    t.same(await store.readOutbox(2, ['sms', 'push'], 'worker-a', 10), [])
    const n = notification(2)
    await store.acceptNotification({ notification: n, events: [], next: { kind: 'outbox', lane: 'push' }, retentionSeconds: 60 })
    t.match(await store.readOutbox(2, ['sms', 'push'], 'worker-a', 10), [{ notificationId: n.id, lane: 'push' }])
  })
})

t.test('redis cluster store', { skip: !(await clusterAvailable()) && 'no Redis Cluster answers (.ci/redis-cluster starts one; CI=true makes this a failure)' }, async t => {
  const keyPrefix = uniquePrefix()
  const store = await RedisStore.connect({ clusterNodes: clusterNodes(), keyPrefix, commandTimeoutMs: 1000, shards: SHARDS })
  t.teardown(async () => { await store.close(); await dropClusterPrefix(keyPrefix) })
  await suite(t, store)
})
