import t from 'tap'
import { campaignApp, message, NDJSON, ndjson, skipStore, STORES } from './app.js'

// Only the first line of an NDJSON campaign was hashed: the same key with other recipients replayed the first answer.

const header = { name: 'nd', message, routing: {} }
const number = (i: number) => `+4479333${String(i).padStart(5, '0')}`
const recipient = (i: number) => ({ to: number(i), vars: { name: `N${i}` } })

for (const store of STORES) {
  t.test(`NDJSON: an Idempotency-Key used with another body is a 422, the same body replays (${store} store)`, { skip: skipStore(store) }, async t => {
    const s = await campaignApp(t, store)
    const key = { ...NDJSON, 'idempotency-key': 'nd1' }
    const body = ndjson(header, recipient(10), recipient(11))
    const first = await s.post(body, key)
    t.equal(first.statusCode, 202, first.body)
    const again = await s.post(body, key)
    t.equal(again.statusCode, 202, again.body)
    t.equal(again.headers['idempotent-replayed'], 'true')
    t.same(again.json(), first.json())

    const others = {
      'other recipients': ndjson(header, recipient(12)),
      'one recipient more': ndjson(header, recipient(10), recipient(11), recipient(13)),
      'one recipient less': ndjson(header, recipient(10)),
      'another name': ndjson({ ...header, name: 'other' }, recipient(10), recipient(11)),
    }
    for (const [what, other] of Object.entries(others)) {
      const res = await s.post(other, key)
      t.equal(res.statusCode, 422, `${what}: ${res.body}`)
      t.match(res.headers['content-type'], /^application\/problem\+json/)
      t.match(res.json(), { status: 422, detail: /another request/ })
    }
    t.same((await s.listed()).map(c => c.id), [first.json().id], 'one campaign')
  })
}
