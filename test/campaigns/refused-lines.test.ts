import t from 'tap'
import { campaignApp, message, ndjson, NDJSON, STORES, skipStore } from './app.js'

// Lines refused while a campaign is read in: the 202 lists the lowest 100 of them (a duplicate is found only when its
// chunk is written, after later lines refused on the spot), and they are counted a chunk at a time, not a store call
// each (50,000 invalid lines took 10 s against Redis, and a large upload ran into the request timeout).

for (const store of STORES) {
  t.test(`on the ${store} store`, { skip: skipStore(store) }, async t => {
    t.test('the rejected list is the first 100 refused lines, a duplicate found late included', async t => {
      const { post } = await campaignApp(t, store)
      const recipients = [{ to: '+447911100001' }, { to: '+447911100001' }, ...Array.from({ length: 150 }, () => ({ to: 'not a number' }))]
      const res = await post({ name: 'late duplicate', message: { sms: message.sms }, recipients })
      t.equal(res.statusCode, 202, res.body)
      const body = res.json()
      t.match(body, { recipients_accepted: 1, recipients_rejected: 151 })
      t.same(body.rejected.map((r: { line: number }) => r.line), Array.from({ length: 100 }, (_, i) => i + 2), 'lines 2 to 101, in order')
      t.equal(body.rejected[0].reason, 'duplicate of an earlier recipient')
    })

    t.test('many refused lines: counted a chunk (1,000 lines) at a time, every one counted', async t => {
      const { app, auth, post } = await campaignApp(t, store)
      // The store's counting calls while the campaign is read in.
      const count = app.store.countCampaign.bind(app.store)
      let calls = 0
      app.store.countCampaign = async (...args) => { calls++; return count(...args) }
      const bad = 20_000
      const lines = [{ name: 'mostly bad', message: { sms: message.sms } }, ...Array.from({ length: bad }, () => ({ to: '12' })), { to: '+447911100002' }]
      const res = await post(ndjson(...lines), NDJSON)
      t.equal(res.statusCode, 202, res.body)
      t.match(res.json(), { recipients_accepted: 1, recipients_rejected: bad })
      t.ok(calls <= bad / 1000 + 5, `${calls} counting calls for ${bad + 1} lines`)
      const view = (await app.inject({ url: `/v1/campaigns/${res.json().id}`, headers: { authorization: auth } })).json()
      t.match(view.recipients, { total: bad + 1, accepted: 1, rejected: bad })
    })
  })
}

t.test('NDJSON lines are parsed as JSON bodies are: a "__proto__" key is refused with its line, not silently dropped', async t => {
  const { post } = await campaignApp(t, 'memory')
  const header = { name: 'proto', message: { sms: message.sms } }
  const res = await post(ndjson(header, '{"to":"+447911100003","vars":{"__proto__":"x","name":"Ada"}}', { to: '+447911100004', vars: { name: 'Bo' } }), NDJSON)
  t.equal(res.statusCode, 202, res.body)
  t.match(res.json(), { recipients_accepted: 1, recipients_rejected: 1, rejected: [{ line: 2, reason: /"__proto__" key.*is refused/ }] })
  const first = await post(ndjson('{"name":"p","message":{"sms":{"text":"hi"}},"__proto__":{}}', { to: '+447911100005' }), NDJSON)
  t.equal(first.statusCode, 400)
  t.match(first.json(), { errors: [{ path: 'body.line.1', message: /"__proto__" key/ }] })
})
