import t from 'tap'
import { CampaignService } from '../../src/campaigns/service.js'
import { MemoryStore } from '../../src/store/memory/memory-store.js'
import { message } from './app.js'

// The store failed just as a started campaign's answer was to be kept under its Idempotency-Key. The key was
// released and the request answered 503, so the caller's retry started the same campaign a second time.

t.test('a started campaign whose answer cannot be kept stands: 202, the key stays claimed, a retry is a 409', async t => {
  const store = new MemoryStore({ shards: 3 })
  t.teardown(() => store.close())
  const unsaved: string[] = []
  const campaigns = new CampaignService({
    store, retentionSeconds: 600, idempotencyTtlSeconds: 600, onIdempotencyUnsaved: id => { unsaved.push(id) },
  })
  const finish = store.finishIdempotency.bind(store)
  store.finishIdempotency = async () => { throw new Error('the store did not answer') }
  const header = {
    name: 'once', message,
    routing: { prefer: 'push' as const, channels: ['push' as const, 'sms' as const], on_unreachable: 'drop' as const, on_unknown: 'sms' as const, ttl_seconds: 3600 },
  }
  const recipients = [{ line: 2, recipient: { to: '+447911100200' } }]
  const key = { key: 'k-1', requestHash: async () => 'hash-1' }
  const { answer, replayed } = await campaigns.create('svc', header, recipients, key)
  t.equal(answer.status, 'running')
  t.equal(replayed, false)
  t.same(unsaved, [answer.id], 'told, so it is logged')
  store.finishIdempotency = finish
  await t.rejects(campaigns.create('svc', header, recipients, key), { status: 409, message: /in flight/ }, 'the retry does not start it again')
  t.equal((await campaigns.list(undefined, 10)).items.length, 1, 'one campaign')
})

t.test('the key is held as long as the request may take to read its recipients in; a claim that ran out is told, not silent', async t => {
  let now = Date.parse('2026-11-27T09:00:00.000Z')
  const store = new MemoryStore({ shards: 3, now: () => now })
  t.teardown(() => store.close())
  const unsaved: { id: string, err: unknown }[] = []
  const campaigns = new CampaignService({
    store, retentionSeconds: 3600, idempotencyTtlSeconds: 3600, idempotencyClaimSeconds: 180, now: () => now,
    onIdempotencyUnsaved: (id, err) => { unsaved.push({ id, err }) },
  })
  const header = {
    name: 'slow upload', message,
    routing: { prefer: 'push' as const, channels: ['push' as const, 'sms' as const], on_unreachable: 'drop' as const, on_unknown: 'sms' as const, ttl_seconds: 3600 },
  }
  const key = { key: 'k-slow', requestHash: async () => 'hash-slow' }
  // An upload that takes `seconds` to arrive, during which a retry with the same key comes.
  const slowly = (seconds: number, during: () => Promise<void>) => (async function * () {
    yield { line: 2, recipient: { to: '+447911100201' } }
    now += seconds * 1000
    await during()
    yield { line: 3, recipient: { to: '+447911100202' } }
  })()

  let retry: unknown
  const first = await campaigns.create('svc', header, slowly(170, async () => {
    retry = await campaigns.create('svc', header, [], key).catch(err => err)
  }), key)
  t.match(retry, { status: 409, message: /in flight/ }, 'within the claim: the retry is a 409')
  t.same(unsaved, [], 'and the answer was kept')
  t.same((await campaigns.create('svc', header, [], key)).answer.id, first.answer.id, 'a retry now replays it')

  // Past the claim (a request allowed longer than the service was told): the retry takes the key; the first is told.
  const other = { key: 'k-slower', requestHash: async () => 'hash-slower' }
  let second: { answer: { id: string } } | undefined
  const late = await campaigns.create('svc', header, slowly(190, async () => {
    second = await campaigns.create('svc', header, [], other)
  }), other)
  t.not(second?.answer.id, late.answer.id, 'two campaigns for one key')
  t.equal(unsaved.length, 1, 'the first is told its answer could not be kept')
  t.equal(unsaved[0]?.id, late.answer.id)
  t.match(unsaved[0]?.err, { message: /claim ran out/ })
})
