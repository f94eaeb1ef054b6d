import t from 'tap'
import { SandboxUpstream } from '../../../src/reachability/upstreams/sandbox.js'
import { buildTestApp } from '../../helpers/app.js'
import { CountingUpstream } from '../../helpers/upstream.js'

async function setup () {
  const upstream = new CountingUpstream(new SandboxUpstream({ comebackSeconds: 20 }))
  const { app, bearer } = await buildTestApp({}, { upstream })
  t.teardown(() => app.close())
  return { app, upstream, auth: await bearer('reachability:read') }
}

t.test('batch max_age that is not a JSON whole number is a 400 problem, and nothing is looked up', async t => {
  const { app, auth, upstream } = await setup()
  await app.inject({ method: 'POST', url: '/v1/reachability/batch', headers: { authorization: auth }, payload: { phone_numbers: ['+990123411'] } })
  const looked = upstream.calls.length
  for (const maxAge of [null, '', ' ', false, true, [], [7], '12', '0', 1.5, -1, 86401, {}]) {
    const res = await app.inject({
      method: 'POST', url: '/v1/reachability/batch', headers: { authorization: auth },
      payload: { phone_numbers: ['+990123411'], max_age: maxAge },
    })
    t.equal(res.statusCode, 400, JSON.stringify(maxAge))
    t.equal(res.headers['content-type'], 'application/problem+json; charset=utf-8')
    t.match(res.json(), { type: /validation-error$/, status: 400, errors: [{ path: 'body.max_age' }] })
  }
  t.equal(upstream.calls.length, looked, 'no upstream lookup was forced')
})

t.test('batch max_age as a JSON number is taken: 0 forces a lookup, 60 answers from the cache', async t => {
  const { app, auth, upstream } = await setup()
  const batch = async (maxAge?: number) => app.inject({
    method: 'POST', url: '/v1/reachability/batch', headers: { authorization: auth },
    payload: maxAge === undefined ? { phone_numbers: ['+990123411'] } : { phone_numbers: ['+990123411'], max_age: maxAge },
  })
  t.equal((await batch()).json().results[0].source, 'upstream')
  t.equal((await batch(60)).json().results[0].source, 'cache')
  t.equal((await batch(0)).json().results[0].source, 'upstream')
  t.equal((await batch(86400)).json().results[0].source, 'cache')
  t.equal(upstream.callsFor('+990123411'), 2)
})

t.test('query max_age takes digits only', async t => {
  const { app, auth, upstream } = await setup()
  await app.inject({ url: '/v1/reachability/+990123400', headers: { authorization: auth } })
  for (const query of ['max_age=', 'max_age=%20', 'max_age=1e3', 'max_age=0x10', 'max_age=+5', 'max_age=1.0', 'max_age=86401',
    'max_age=99999999999999999999999', 'max_age=1&max_age=2']) {
    const res = await app.inject({ url: `/v1/reachability/+990123400?${query}`, headers: { authorization: auth } })
    t.equal(res.statusCode, 400, query)
    t.equal(res.headers['content-type'], 'application/problem+json; charset=utf-8')
    t.match(res.json(), { type: /validation-error$/, errors: [{ path: 'querystring.max_age' }] })
  }
  t.equal(upstream.calls.length, 1, 'none of them reached the upstream')
  const cached = await app.inject({ url: '/v1/reachability/+990123400?max_age=0060', headers: { authorization: auth } })
  t.equal(cached.json().source, 'cache', 'leading zeros are still digits')
  const fresh = await app.inject({ url: '/v1/reachability/+990123400?max_age=0', headers: { authorization: auth } })
  t.equal(fresh.json().source, 'upstream')
})
