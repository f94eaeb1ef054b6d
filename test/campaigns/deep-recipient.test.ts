import t from 'tap'
import { campaignApp, NDJSON, ndjson, skipStore, STORES } from './app.js'

// A recipient that is JSON nested 20,000 deep once overflowed the stack while the request was hashed: a 500.

const deep = '['.repeat(20_000) + ']'.repeat(20_000)

for (const store of STORES) {
  t.test(`a recipient nested 20,000 deep is refused alone, never a 500 (${store} store)`, { skip: skipStore(store) }, async t => {
    const s = await campaignApp(t, store)
    const json = `{"name":"deep","message":{"sms":{"text":"hi"}},"routing":{},"recipients":[{"to":"+447933300030"},${deep}]}`
    for (const key of [undefined, 'deep']) {
      const res = await s.post(json, { 'content-type': 'application/json', ...(key ? { 'idempotency-key': key } : {}) })
      t.equal(res.statusCode, 202, res.body.slice(0, 300))
      t.match(res.json(), { recipients_accepted: 1, recipients_rejected: 1, rejected: [{ line: 2, reason: /expected object/ }] })
    }
    const nd = await s.post(ndjson({ name: 'deep', message: { sms: { text: 'hi' } }, routing: {} }, { to: '+447933300031' }, deep), { ...NDJSON, 'idempotency-key': 'deep-nd' })
    t.equal(nd.statusCode, 202, nd.body.slice(0, 300))
    t.match(nd.json(), { recipients_accepted: 1, recipients_rejected: 1, rejected: [{ line: 3, reason: /expected object/ }] })
  })

  t.test(`the JSON form: the same body under an Idempotency-Key replays, another is a 422 (${store} store)`, { skip: skipStore(store) }, async t => {
    const s = await campaignApp(t, store)
    const body = { name: 'once', message: { sms: { text: 'hi' } }, routing: {}, recipients: [{ to: '+447933300032' }, [[['bad']]]] }
    const first = await s.post(body, { 'idempotency-key': 'j1' })
    t.equal(first.statusCode, 202, first.body)
    const again = await s.post(body, { 'idempotency-key': 'j1' })
    t.equal(again.headers['idempotent-replayed'], 'true')
    t.equal(again.json().id, first.json().id)
    const otherBad = await s.post({ ...body, recipients: [{ to: '+447933300032' }, [[['worse']]]] }, { 'idempotency-key': 'j1' })
    t.equal(otherBad.statusCode, 422, otherBad.body)
    t.equal((await s.listed()).length, 1)
  })
}
