import t from 'tap'
import { CampaignService, type RecipientLine } from '../../src/campaigns/service.js'
import { openMemoryStore, openRedisStore } from '../helpers/store.js'
import { waitFor } from '../helpers/wait.js'
import { campaignApp, skipStore, STORES } from './app.js'

// A campaign's progress, read while its chunks are worked on, contradicted itself: notifications were counted in
// their final statuses (one by one, as the delivery worker ended them) before they were counted as created (a chunk
// of 200 at a time), so `created` lagged the statuses, and `in_progress` was clamped to 0 to hide it.

const number = (i: number) => `+4479112${String(i).padStart(5, '0')}`
const FINALS = ['sent', 'delivered', 'failed', 'expired', 'dropped'] as const

interface Progress {
  status: string
  recipients: { accepted: number, processed: number, failed: number }
  notifications: { created: number, by_status: Record<string, number>, by_channel: Record<string, number> }
  lookups: { cache: number, upstream: number }
  rate_per_minute: number
  estimated_seconds_left: number | null
}

/** What is wrong with one reading of the progress: an empty list when its figures agree with each other. */
function contradictions (p: Progress): string[] {
  const wrong: string[] = []
  const { created, by_status: byStatus, by_channel: byChannel } = p.notifications
  const finals = FINALS.reduce((sum, s) => sum + (byStatus[s] ?? 0), 0)
  if (finals > created) wrong.push(`${finals} notifications in a final status, but ${created} created`)
  if (byStatus.in_progress !== created - finals) wrong.push(`in_progress ${byStatus.in_progress}, but ${created} created less ${finals} final is ${created - finals}`)
  const routed = Object.values(byChannel).reduce((a, b) => a + b, 0)
  if (routed !== created) wrong.push(`${routed} notifications by channel, but ${created} created`)
  if (p.recipients.processed !== created + p.recipients.failed) wrong.push(`${p.recipients.processed} processed, but ${created} created and ${p.recipients.failed} failed`)
  if (p.lookups.cache + p.lookups.upstream > p.recipients.processed) wrong.push(`${p.lookups.cache + p.lookups.upstream} lookups for ${p.recipients.processed} recipients processed`)
  if (p.status === 'running' && p.recipients.processed > 0 && p.recipients.processed < p.recipients.accepted && p.estimated_seconds_left === null) {
    wrong.push(`no estimate with ${p.recipients.processed} of ${p.recipients.accepted} processed`)
  }
  return wrong
}

for (const store of STORES) {
  t.test(`a campaign's progress agrees with itself at every reading while it runs (${store} store)`, { skip: skipStore(store) }, async t => {
    // 500 recipients at 500 lookups a second: a chunk of 200 takes 0.4 s, and the sandbox delivers each SMS long before that.
    const s = await campaignApp(t, store, { REACHABILITY_UPSTREAM_RPS: '500' })
    const recipients = Array.from({ length: 500 }, (_, i) => ({ to: number(i) }))
    const res = await s.post({ name: 'progress', message: { sms: { text: 'hi' } }, routing: { on_unreachable: 'drop' }, recipients })
    t.equal(res.statusCode, 202, res.body)
    const id = res.json().id as string

    const readings: Progress[] = []
    const read = async () => {
      const got = await s.app.inject({ url: `/v1/campaigns/${id}`, headers: { authorization: s.auth } })
      const p = got.json() as Progress
      readings.push(p)
      return p
    }
    await waitFor(async () => (await read()).status === 'completed' ? true : undefined, 15_000, 'the campaign to complete')
    // Once completed, its last notifications still end: read on until every one is final.
    await waitFor(async () => (await read()).notifications.by_status.in_progress === 0 ? true : undefined, 5000, 'every notification final')

    const mid = readings.filter(p => p.status === 'running' && p.recipients.processed > 0 && p.recipients.processed < 500)
    t.ok(mid.length >= 3, `${mid.length} readings taken while the campaign was part way (of ${readings.length})`)
    const bad = readings.map((p, i) => ({ i, wrong: contradictions(p) })).filter(r => r.wrong.length > 0)
    t.same(bad.slice(0, 5), [], `every one of the ${readings.length} readings agrees with itself`)
    const last = readings.at(-1)!
    t.match(last, { status: 'completed', recipients: { accepted: 500, processed: 500, failed: 0 }, notifications: { created: 500 } })
  })
}

// The rate counted only the last minute: early in a run, a few seconds' recipients read as a whole minute's, and the
// estimate came out many times too long (90 s with 6 s left).
for (const store of STORES) {
  t.test(`in a run's first minute the rate is the run's so far, and the estimate follows from it (${store} store)`, { skip: skipStore(store) }, async t => {
    const { store: opened, cleanup } = store === 'memory' ? await openMemoryStore(3) : await openRedisStore(3)
    t.teardown(cleanup)
    // 20 s into a minute, so the minute's share of the last one is not what makes the figures.
    let now = Math.floor(Date.now() / 60_000) * 60_000 + 20_000
    const campaigns = new CampaignService({ store: opened, retentionSeconds: 3600, idempotencyTtlSeconds: 3600, now: () => now })
    const lines: RecipientLine[] = Array.from({ length: 500 }, (_, i) => ({ line: i + 1, recipient: { to: number(i) } }))
    const { answer } = await campaigns.create('svc', { name: 'estimate', message: { sms: { text: 'hi' } }, routing: { prefer: 'sms', channels: ['sms'], on_unreachable: 'drop', on_unknown: 'sms', ttl_seconds: 3600 } }, lines)
    /** A runner handles the next `n` recipients at `now`: each made an SMS notification. */
    const handle = async (n: number) => {
      const { lease } = (await opened.claimCampaignRecipients(answer.id, n, now, now + 60_000))!
      const handled = Array.from({ length: n }, (_, i) => ({ index: lease.start + i, lookup: 'cache' as const, notification: { id: `ntf_00_${lease.start + i}`, channel: 'sms' as const } }))
      t.equal(await opened.countCampaignRecipients(answer.id, lease, handled, { at: now, finish: true }), n)
    }

    t.match(await campaigns.get(answer.id), { rate_per_minute: 0, estimated_seconds_left: null }, 'nothing processed yet: no estimate')
    now += 4000
    await handle(200)
    t.match(await campaigns.get(answer.id), { rate_per_minute: 3000, estimated_seconds_left: 6 }, '200 in 4 s: 3,000 a minute, 300 left in 6 s')
    now += 2000
    await handle(100)
    t.match(await campaigns.get(answer.id), { rate_per_minute: 3000, estimated_seconds_left: 4 }, '300 in 6 s')

    // Paused for a while, then resumed: the rate is the new run's.
    await campaigns.pause(answer.id)
    t.match(await campaigns.get(answer.id), { estimated_seconds_left: null }, 'paused: no estimate')
    now += 100_000
    await campaigns.resume(answer.id)
    now += 2000
    await handle(50)
    t.match(await campaigns.get(answer.id), { rate_per_minute: 1500, estimated_seconds_left: 6 }, '50 in the 2 s since it resumed: 150 left in 6 s')
  })
}
