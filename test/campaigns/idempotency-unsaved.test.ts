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
