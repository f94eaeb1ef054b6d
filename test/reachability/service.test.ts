import t, { type Test } from 'tap'
import { UpstreamUnavailableError } from '../../src/domain/errors.js'
import { ReachabilityService } from '../../src/reachability/service.js'
import { UpstreamFailure } from '../../src/reachability/upstreams/upstream.js'
import { MemoryStore } from '../../src/store/memory/memory-store.js'
import { RedisStore } from '../../src/store/redis/redis-store.js'
import type { Store } from '../../src/store/store.js'
import { dropPrefix, REDIS_URL, redisAvailable, uniquePrefix } from '../helpers/redis.js'
import { ScriptedUpstream } from '../helpers/upstream.js'
import { waitFor } from '../helpers/wait.js'

const policy = { reachableSeconds: 300, unreachableSeconds: 60, invalidSeconds: 86400 }

function setup (store: Store) {
  let now = Date.parse('2026-11-25T12:00:00.000Z')
  const upstream = new ScriptedUpstream()
  const service = new ReachabilityService({ store, upstream, policy, maxStaleSeconds: 3600, deadlineMs: 500, now: () => now })
  return { upstream, service, advance: (seconds: number) => { now += seconds * 1000 } }
}

async function suite (t: Test, store: Store) {
  t.test('a miss asks the upstream, the next lookup is served from the cache', async t => {
    const { upstream, service } = setup(store)
    const first = await service.lookup('+990200001')
    t.equal(first.source, 'upstream')
    t.same(first.connectivity, ['DATA', 'SMS'])
    const second = await service.lookup('+990200001')
    t.equal(second.source, 'cache')
    t.equal(second.checked_at, first.checked_at)
    t.equal(upstream.calls, 1)
  })

  t.test('latest_status_at is kept as an ISO instant: not a date is null, a time after the check is the check\'s time', async t => {
    const { upstream, service } = setup(store)
    upstream.answer = { ...upstream.answer, is_reachable: false, connectivity: [], latest_status_at: 'yesterday-ish' }
    const garbled = await service.lookup('+990200030')
    t.equal(garbled.latest_status_at, null, 'not a date: unknown, and the number\'s report is still written')
    t.equal((await store.getReports(['+990200030']))[0]?.latest_status_at, null)
    upstream.answer = { ...upstream.answer, latest_status_at: '2099-01-01T00:00:00+01:00' }
    t.equal((await service.lookup('+990200031')).latest_status_at, '2026-11-25T12:00:00.000Z', 'from the future: the check\'s time')
    upstream.answer = { ...upstream.answer, latest_status_at: '2026-11-25T10:00:00+01:00' }
    t.equal((await service.lookup('+990200032')).latest_status_at, '2026-11-25T09:00:00.000Z', 'as an ISO instant')
  })

  t.test('recentlyCached: the cache entry this process last read, as one guess shared until it goes stale or is forgotten', async t => {
    const { service, advance } = setup(store)
    t.equal(service.recentlyCached('+990200020'), undefined, 'nothing read yet')
    await service.lookup('+990200020')
    t.equal(service.recentlyCached('+990200020'), undefined, 'an upstream answer is not a read of the cache')
    await service.lookup('+990200020')
    const guess = service.recentlyCached('+990200020')
    t.equal(guess?.result.source, 'cache')
    t.type(guess?.version, 'string')
    t.equal(service.recentlyCached('+990200020'), guess, 'the same guess again, not a copy per call')
    advance(61)
    t.equal(service.recentlyCached('+990200020', 60), undefined, 'older than max_age')
    t.equal(service.recentlyCached('+990200020'), guess, 'still fresh without max_age')
    advance(240)
    t.equal(service.recentlyCached('+990200020'), undefined, 'past the entry\'s freshness')
    await service.lookup('+990200020')
    await service.lookup('+990200020')
    t.ok(service.recentlyCached('+990200020'))
    service.forget('+990200020')
    t.equal(service.recentlyCached('+990200020'), undefined, 'forgotten')
  })

  t.test('beforeUpstream is awaited on a miss only, and an answer that arrived meanwhile is served from the cache', async t => {
    const { upstream, service } = setup(store)
    let waits = 0
    const wait = async () => { waits++ }
    t.equal((await service.lookup('+990200010', { beforeUpstream: wait })).source, 'upstream')
    t.equal(waits, 1, 'a miss waits first')
    t.equal((await service.lookup('+990200010', { beforeUpstream: wait })).source, 'cache')
    t.equal(waits, 1, 'a hit does not wait')
    // While this caller waits, another one asks the upstream and caches the answer.
    const other = setup(store).service
    const answered = await service.lookup('+990200011', { beforeUpstream: async () => { await other.lookup('+990200011') } })
    t.equal(answered.source, 'cache', 'the cache is read again after the wait')
    t.equal(upstream.calls, 1, 'this service asked the upstream once in all')
  })

  t.test('news that came while the upstream was asked (an operator\'s event) stands: an answer about an earlier moment neither overwrites it nor is the answer', async t => {
    const { upstream, service, advance } = setup(store)
    upstream.answer = { is_reachable: false, connectivity: [], latest_status_at: '2026-11-25T11:00:00.000Z', status: { code: 'OK', message: 'Success' } }
    // The upstream answers once the news is recorded (a fixed delay lost the race on a loaded machine).
    let release = () => {}
    upstream.hold = new Promise(resolve => { release = resolve })
    const asked = service.lookup('+990200060')
    await waitFor(() => upstream.calls === 1 || undefined, 2000, 'the upstream to be asked')
    advance(1)
    await service.record('+990200060', { is_reachable: true, connectivity: ['DATA', 'SMS'], latest_status_at: '2026-11-25T12:00:01.000Z', status: { code: 'OK', message: 'Success' } })
    release()
    t.match(await asked, { source: 'cache', is_reachable: true, connectivity: ['DATA', 'SMS'] }, 'the newer news is the answer')
    t.match(await service.cached('+990200060'), { is_reachable: true, latest_status_at: '2026-11-25T12:00:01.000Z' }, 'and stays cached')
    t.equal((await store.getReports(['+990200060']))[0]?.is_reachable, true, 'and in the number\'s report')
    // An answer newer than what came meanwhile is kept, as any answer.
    advance(1)
    upstream.answer = { ...upstream.answer, latest_status_at: '2026-11-25T12:00:03.000Z' }
    upstream.hold = new Promise(resolve => { release = resolve })
    const later = service.lookup('+990200060', { maxAgeSeconds: 0 })
    await waitFor(() => upstream.calls === 2 || undefined, 2000, 'the upstream to be asked again')
    advance(1)
    await service.record('+990200060', { is_reachable: true, connectivity: ['SMS'], latest_status_at: '2026-11-25T12:00:02.500Z', status: { code: 'OK', message: 'Success' } })
    release()
    t.match(await later, { source: 'upstream', is_reachable: false }, 'the upstream told of a later moment')
    t.match(await service.cached('+990200060'), { is_reachable: false })
  })

  t.test('many concurrent misses for one number make exactly one upstream call', async t => {
    const { upstream, service } = setup(store)
    upstream.delayMs = 50
    const results = await Promise.all(Array.from({ length: 50 }, () => service.lookup('+990200002')))
    t.equal(upstream.calls, 1)
    t.ok(results.every(r => r.source === 'upstream' && r.is_reachable))
  })

  t.test('a reachable answer stays fresh for its TTL, then is asked again', async t => {
    const { upstream, service, advance } = setup(store)
    await service.lookup('+990200003')
    advance(299)
    t.equal((await service.lookup('+990200003')).source, 'cache')
    advance(2)
    t.equal((await service.lookup('+990200003')).source, 'upstream')
    t.equal(upstream.calls, 2)
  })

  t.test('a not-reachable answer has the shorter TTL', async t => {
    const { upstream, service, advance } = setup(store)
    upstream.answer = { is_reachable: false, connectivity: [], latest_status_at: null, status: { code: 'OK', message: 'Success' } }
    await service.lookup('+990200004')
    advance(61)
    t.equal((await service.lookup('+990200004')).source, 'upstream')
  })

  t.test('NOT_FOUND is cached for the long TTL; transient codes are not cached', async t => {
    const { upstream, service, advance } = setup(store)
    upstream.answer = { is_reachable: false, connectivity: [], latest_status_at: null, status: { code: 'NOT_FOUND', message: 'x' } }
    await service.lookup('+990200005')
    advance(3600)
    t.equal((await service.lookup('+990200005')).source, 'cache')

    upstream.answer = { is_reachable: false, connectivity: [], latest_status_at: null, status: { code: 'SUPPLIER_ERROR', message: 'x' } }
    await service.lookup('+990200006')
    const again = await service.lookup('+990200006')
    t.equal(again.source, 'upstream')
    t.equal(again.status.code, 'SUPPLIER_ERROR')
  })

  t.test('max_age demands a fresher answer than the cache holds', async t => {
    const { upstream, service, advance } = setup(store)
    await service.lookup('+990200007')
    advance(30)
    t.equal((await service.lookup('+990200007', { maxAgeSeconds: 60 })).source, 'cache')
    t.equal((await service.lookup('+990200007', { maxAgeSeconds: 10 })).source, 'upstream')
    t.equal(upstream.calls, 2)
    // The clock has not moved: the entry just written is 0 ms old, and max_age=0 still asks the upstream (it took
    // the entry: a report test that looked a number up twice in one millisecond kept its first answer).
    t.equal((await service.lookup('+990200007', { maxAgeSeconds: 0 })).source, 'upstream', 'max_age=0 within the same millisecond')
    t.equal(upstream.calls, 3)
  })

  t.test('when the upstream fails, a stale entry is served; past the stale window, 503', async t => {
    const { upstream, service, advance } = setup(store)
    await service.lookup('+990200008')
    advance(301)
    upstream.failWith = new UpstreamFailure('HTTP 503', 7)
    const stale = await service.lookup('+990200008')
    t.equal(stale.source, 'stale_cache')
    t.same(stale.connectivity, ['DATA', 'SMS'])

    upstream.failWith = undefined
    upstream.answer = { ...upstream.answer, status: { code: 'INTERNAL_ERROR', message: 'x' } }
    t.equal((await service.lookup('+990200008')).source, 'stale_cache', 'a transient status code counts as a failure too')

    upstream.failWith = new UpstreamFailure('HTTP 503', 7)
    advance(3600)
    const err = await service.lookup('+990200008').catch(e => e)
    t.type(err, UpstreamUnavailableError)
    t.equal(err.headers['retry-after'], '7')
  })

  t.test('an upstream that never answers is cut at the deadline', async t => {
    const { upstream, service } = setup(store)
    upstream.delayMs = 2000
    const started = Date.now()
    await t.rejects(service.lookup('+990200009'), UpstreamUnavailableError)
    t.ok(Date.now() - started < 2000)
  })
}

t.test('with the memory store', async t => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  await suite(t, store)
})

t.test('with the redis store', { skip: !(await redisAvailable()) && 'Redis is not running' }, async t => {
  const keyPrefix = uniquePrefix()
  const store = await RedisStore.connect({ url: REDIS_URL, keyPrefix, commandTimeoutMs: 1000, shards: 4 })
  t.teardown(async () => { await store.close(); await dropPrefix(keyPrefix) })
  await suite(t, store)
})
