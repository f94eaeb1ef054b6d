import t from 'tap'
import { campaignApp, NDJSON, ndjson, skipStore, STORES } from './app.js'

const to = '+447933300001'

for (const store of STORES) {
  t.test(`a campaign whose message no allowed channel can carry is a 422 and creates nothing (${store} store)`, { skip: skipStore(store) }, async t => {
    const s = await campaignApp(t, store)
    const smsOnlyOnPush = { name: 'x', message: { sms: { text: 'hi' } }, routing: { channels: ['push'] } }
    const pushOnlyOnSms = { name: 'x', message: { push: { title: 'hi', body: 'hi' } }, routing: { channels: ['sms'] } }
    for (const header of [smsOnlyOnPush, pushOnlyOnSms]) {
      const json = await s.post({ ...header, recipients: [{ to, push_token: 'tok' }] })
      t.equal(json.statusCode, 422, json.body)
      t.match(json.headers['content-type'], /^application\/problem\+json/)
      t.match(json.json(), { status: 422, detail: /no channel can carry/ })
      const nd = await s.post(ndjson(header, { to, push_token: 'tok' }), NDJSON)
      t.equal(nd.statusCode, 422, nd.body)
      t.match(nd.json(), { status: 422, detail: /no channel can carry/ })
    }
    t.equal((await s.post({ ...smsOnlyOnPush, recipients: [{ to }] }, { 'idempotency-key': 'k' })).statusCode, 422)
    t.same(await s.listed(), [], 'nothing was created')

    // The key was left free: the request put right is taken.
    const fixed = await s.post({ ...smsOnlyOnPush, routing: { channels: ['sms'] }, recipients: [{ to }] }, { 'idempotency-key': 'k' })
    t.equal(fixed.statusCode, 202, fixed.body)
    t.notOk(fixed.headers['idempotent-replayed'])
    // Push only is possible: each recipient can give its token.
    t.equal((await s.post({ ...pushOnlyOnSms, routing: { channels: ['push'] }, recipients: [{ to, push_token: 'tok' }] })).statusCode, 202)
  })
}
