import { setTimeout as sleep } from 'node:timers/promises'
import t from 'tap'
import { campaignApp, message, NDJSON, ndjson, skipStore, STORES } from './app.js'

// A campaign whose every recipient was refused was created all the same: a 202 with recipients_accepted 0, and a
// campaign stored and listed as completed, having sent nothing.

const to = '+447933300101'
const header = { name: 'nobody valid', message, routing: {} }
const refused = [{ to: 'bad' }, { to: '12', vars: { name: 'B' } }, { to, extra: true }]

for (const store of STORES) {
  t.test(`JSON: a campaign none of whose recipients is valid is a 422 naming them, and nothing is stored (${store} store)`, { skip: skipStore(store) }, async t => {
    const s = await campaignApp(t, store)
    const res = await s.post({ ...header, recipients: refused }, { 'idempotency-key': 'none-valid' })
    t.equal(res.statusCode, 422, res.body)
    t.match(res.headers['content-type'], /^application\/problem\+json/)
    t.match(res.json(), {
      type: /\/unprocessable$/, status: 422, detail: /^no recipient can be taken: all 3 were refused \(line 1: to: "bad" is not a valid phone number/,
      recipients_rejected: 3,
      rejected: [{ line: 1, reason: /not a valid phone number/ }, { line: 2, reason: /not a valid phone number/ }, { line: 3, reason: /extra/ }],
    })
    t.same(await s.app.store.listCampaigns(undefined, 10), [], 'no campaign stored, not even a hidden one')
    t.same(await s.listed(), [])

    // The key keeps no answer: the request put right is taken, not answered with the refusal.
    const fixed = await s.post({ ...header, recipients: [...refused, { to, vars: { name: 'C' } }] }, { 'idempotency-key': 'none-valid' })
    t.equal(fixed.statusCode, 202, fixed.body)
    t.notOk(fixed.headers['idempotent-replayed'])
    t.match(fixed.json(), { recipients_accepted: 1, recipients_rejected: 3 })
  })

  t.test(`NDJSON: every recipient line refused is a 422, as for JSON; the campaign read in is left cancelled, never run (${store} store)`, { skip: skipStore(store) }, async t => {
    const s = await campaignApp(t, store)
    const res = await s.post(ndjson(header, ...refused, 'not json'), { ...NDJSON, 'idempotency-key': 'none-valid' })
    t.equal(res.statusCode, 422, res.body)
    t.match(res.headers['content-type'], /^application\/problem\+json/)
    t.match(res.json(), {
      type: /\/unprocessable$/, detail: /^no recipient can be taken: all 4 were refused \(line 2: /,
      recipients_rejected: 4, rejected: [{ line: 2 }, { line: 3 }, { line: 4 }, { line: 5, reason: 'not JSON' }],
    })
    t.same(await s.listed(), [], 'not listed')
    const kept = await s.app.store.listCampaigns(undefined, 10)
    t.equal(kept.length, 1, 'read in as it streamed, it stays in the store until its retention')
    t.equal((await s.app.store.getCampaign(kept[0]!.id))?.status, 'cancelled', 'cancelled: no runner takes it')
    const got = await s.app.inject({ url: `/v1/campaigns/${kept[0]!.id}`, headers: { authorization: s.auth } })
    t.equal(got.statusCode, 404)
    await sleep(100)
    t.equal(s.sent(), 0, 'nobody notified')

    const fixed = await s.post(ndjson(header, ...refused, { to, vars: { name: 'C' } }), { ...NDJSON, 'idempotency-key': 'none-valid' })
    t.equal(fixed.statusCode, 202, fixed.body)
    t.notOk(fixed.headers['idempotent-replayed'], 'the key was left free')
    t.match(fixed.json(), { recipients_accepted: 1, recipients_rejected: 3 })
  })
}
