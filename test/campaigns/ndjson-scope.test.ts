import t from 'tap'
import { campaignApp, message, NDJSON, ndjson } from './app.js'

// The NDJSON parser served every campaign route: pause, resume and cancel took an NDJSON body of any size
// as a stream (a 1.1 MB body answered 404 instead of 413).

const id = 'cmp_0c1d2e3f405162738495a6b7c8d9e0f1'

t.test('pause, resume and cancel refuse an NDJSON body, however large; POST /v1/campaigns still reads one', async t => {
  const s = await campaignApp(t, 'memory')
  const action = (name: string, payload: string, contentType: string) =>
    s.app.inject({ method: 'POST', url: `/v1/campaigns/${id}/${name}`, headers: { authorization: s.auth, 'content-type': contentType }, payload })
  const large = ndjson({ note: 'x'.repeat(1100 * 1024) })
  for (const name of ['pause', 'resume', 'cancel']) {
    const big = await action(name, large, NDJSON['content-type'])
    t.equal(big.statusCode, 415, `${name}: ${big.body.slice(0, 200)}`)
    t.match(big.json(), { status: 415, type: /unsupported-media-type/ })
    t.equal((await action(name, ndjson({}), NDJSON['content-type'])).statusCode, 415, `${name}: a small NDJSON body too`)
    t.equal((await action(name, JSON.stringify({ note: 'x'.repeat(1100 * 1024) }), 'application/json')).statusCode, 413, `${name}: JSON over its limit`)
    t.equal((await action(name, '{}', 'application/json')).statusCode, 404, `${name}: an empty JSON object is read as before`)
  }
  const created = await s.post(ndjson({ name: 'streamed', message, routing: {} }, { to: '+447911100001', vars: { name: 'A' } }), NDJSON)
  t.equal(created.statusCode, 202, created.body)
})

t.test('the spec gives POST /v1/campaigns both its bodies, and the body problems of pause, resume and cancel', async t => {
  const s = await campaignApp(t, 'memory')
  await s.app.ready()
  const paths = (s.app.swagger() as unknown as { paths: Record<string, Record<string, { requestBody?: { content: Record<string, unknown> }, responses: Record<string, unknown> }>> }).paths
  t.same(Object.keys(paths['/v1/campaigns']!.post!.requestBody!.content), ['application/json', NDJSON['content-type']])
  t.ok(paths['/v1/campaigns']!.post!.responses['415'])
  for (const name of ['pause', 'resume', 'cancel']) {
    const documented = Object.keys(paths[`/v1/campaigns/{id}/${name}`]!.post!.responses)
    t.ok(['400', '413', '415'].every(status => documented.includes(status)), `${name}: ${documented.join(', ')}`)
  }
})
