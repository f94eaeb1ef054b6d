import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { setTimeout } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import type { UpstreamAnswer } from '../../../src/domain/reachability.js'
import { type ReachabilityUpstream, UpstreamFailure } from '../../../src/reachability/upstreams/upstream.js'
import { buildTestApp } from '../../helpers/app.js'
import { dropPrefix, REDIS_URL, redisAvailable, uniquePrefix } from '../../helpers/redis.js'
import { withoutTapLoaders } from '../../helpers/spawn.js'
import { waitFor } from '../../helpers/wait.js'

const DAY = 86_400_000
const haveRedis = await redisAvailable()
const OK = { code: 'OK', message: 'Success' }

/** Answers per number as the test sets them (or fails for the numbers that are `down`); counts calls with their times. */
class MapUpstream implements ReachabilityUpstream {
  readonly name = 'map'
  readonly answers = new Map<string, UpstreamAnswer>()
  readonly down = new Set<string>()
  readonly calls: number[] = []
  async check (phone: string): Promise<UpstreamAnswer> {
    this.calls.push(Date.now())
    if (this.down.has(phone)) throw new UpstreamFailure('the upstream is down', 1)
    return this.answers.get(phone) ?? { is_reachable: true, connectivity: ['DATA', 'SMS'], latest_status_at: new Date().toISOString(), status: OK }
  }

  async close (): Promise<void> {}
}

const away = (msAgo: number): UpstreamAnswer => ({ is_reachable: false, connectivity: [], latest_status_at: new Date(Date.now() - msAgo).toISOString(), status: OK })
const back = (): UpstreamAnswer => ({ is_reachable: true, connectivity: ['SMS'], latest_status_at: new Date().toISOString(), status: OK })

async function setup (t: Test, store: 'memory' | 'redis', env: Record<string, string> = {}, prefix = uniquePrefix()) {
  const upstream = new MapUpstream()
  const { app, bearer } = await buildTestApp({
    ...(store === 'redis' ? { REDIS_URL, REDIS_KEY_PREFIX: prefix } : {}), QUEUE_SHARDS: '3', FALLBACK_POLL_MS: '20', ...env,
  }, { upstream })
  t.teardown(async () => {
    await app.close()
    if (store === 'redis') await dropPrefix(prefix)
  })
  const auth = await bearer('reports:read reachability:read')
  const get = (url: string, headers: Record<string, string> = {}) => app.inject({ url, headers: { authorization: auth, ...headers } })
  const look = (phone: string) => get(`/v1/reachability/${phone}?max_age=0`)
  return { app, upstream, auth, get, look, bearer }
}

for (const store of ['memory', 'redis'] as const) {
  t.test(`reports on the ${store} store`, { skip: store === 'redis' && !haveRedis && 'Redis is not running' }, async t => {
    t.test('stale contacts: the right numbers at the day boundary, paged, and as CSV', async t => {
      const s = await setup(t, store)
      const numbers = {
        justOver: '+447911100001', wellOver: '+447911100002', justUnder: '+447911100003', reachable: '+447911100004', cameBack: '+447911100005',
      }
      s.upstream.answers.set(numbers.justOver, away(60 * DAY + 5000))
      s.upstream.answers.set(numbers.wellOver, away(200 * DAY))
      s.upstream.answers.set(numbers.justUnder, away(60 * DAY - 5000))
      s.upstream.answers.set(numbers.reachable, back())
      s.upstream.answers.set(numbers.cameBack, away(90 * DAY))
      for (const n of Object.values(numbers)) await s.look(n)
      s.upstream.answers.set(numbers.cameBack, back())
      await s.look(numbers.cameBack)

      const res = await s.get('/v1/reports/stale-contacts?days=60')
      t.equal(res.statusCode, 200)
      const body = res.json()
      t.same(body.items.map((i: { phone_number: string }) => i.phone_number).sort(), [numbers.justOver, numbers.wellOver].sort())
      t.equal(body.next_cursor, null)
      t.match(body.items.find((i: { phone_number: string }) => i.phone_number === numbers.wellOver), { last_reachable_at: null, last_checked_at: /^\d{4}-/ })
      t.same((await s.get('/v1/reports/stale-contacts?days=59')).json().items.length, 3, 'a day less takes in the one just under')

      const page1 = (await s.get('/v1/reports/stale-contacts?days=1&limit=1')).json()
      t.equal(page1.items.length, 1)
      const seen = [page1.items[0].phone_number]
      let cursor = page1.next_cursor
      while (cursor) {
        const page = (await s.get(`/v1/reports/stale-contacts?days=1&limit=1&cursor=${cursor}`)).json()
        seen.push(...page.items.map((i: { phone_number: string }) => i.phone_number))
        cursor = page.next_cursor
      }
      t.same(seen.sort(), [numbers.justOver, numbers.wellOver, numbers.justUnder].sort(), 'every number once across pages')

      const csv = await s.get('/v1/reports/stale-contacts?days=60', { accept: 'text/csv' })
      t.equal(csv.statusCode, 200)
      t.match(csv.headers['content-type'], /^text\/csv/)
      const lines = csv.body.trim().split('\r\n')
      t.equal(lines[0], 'phone_number,latest_status_at,last_reachable_at,last_checked_at')
      t.equal(lines.length, 3)
      t.ok(lines.slice(1).every(l => /^\+4479111000\d\d,\d{4}-/.test(l)))
    })

    t.test('pages are one list over every shard: oldest first throughout, each number once, and the last page has no cursor', async t => {
      const s = await setup(t, store)
      // 30 numbers over the shards, their ages not in the order the shards hold them.
      const numbers = Array.from({ length: 30 }, (_, i) => `+4479111700${String(i).padStart(2, '0')}`)
      for (const [i, n] of numbers.entries()) {
        s.upstream.answers.set(n, away((70 + ((i * 7) % 30)) * DAY))
        await s.look(n)
      }
      for (const [path, field, key] of [['stale-contacts?days=60', 'latest_status_at', 'stale'], ['offline-devices?', 'last_checked_at', 'offline']] as const) {
        for (const limit of [7, 10, 30]) {
          const pages: { items: Record<string, string>[], next_cursor: string | null }[] = []
          let cursor: string | null = ''
          while (cursor !== null) {
            const page = (await s.get(`/v1/reports/${path}&limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`)).json() as { items: Record<string, string>[], next_cursor: string | null }
            pages.push(page)
            cursor = page.next_cursor
          }
          const items = pages.flatMap(p => p.items).filter(i => numbers.includes(i.phone_number!))
          const what = `${key}, limit ${limit}`
          t.equal(pages.length, Math.ceil(30 / limit), `${what}: ${pages.length} pages, none of them empty`)
          t.same(items.map(i => i.phone_number).sort(), [...numbers].sort(), `${what}: each number once`)
          const times = items.map(i => Date.parse(i[field]!))
          t.same(times, [...times].sort((a, b) => a - b), `${what}: oldest first across pages`)
        }
      }
    })

    t.test('reachable means DATA or SMS: an is_reachable answer with neither connectivity keeps the number stale and offline', async t => {
      const s = await setup(t, store)
      const n = '+447911160001'
      s.upstream.answers.set(n, away(90 * DAY))
      await s.look(n)
      s.upstream.answers.set(n, { is_reachable: true, connectivity: [], latest_status_at: new Date(Date.now() - 90 * DAY).toISOString(), status: { code: 'PARTIAL_SUCCESS', message: 'partial' } })
      await s.look(n)
      const stale = (await s.get('/v1/reports/stale-contacts?days=60')).json().items
      t.match(stale, [{ phone_number: n, last_reachable_at: null }], 'still a stale contact, never seen reachable')
      t.match((await s.get('/v1/reports/offline-devices')).json().items, [{ phone_number: n, last_online_at: null }], 'still offline')
      s.upstream.answers.set(n, back())
      await s.look(n)
      t.same((await s.get('/v1/reports/stale-contacts?days=60')).json().items, [], 'SMS connectivity takes it out')
      t.same((await s.get('/v1/reports/offline-devices')).json().items, [])
    })

    t.test('offline devices: not reachable at their last check, with last online and last checked; since filters', async t => {
      const s = await setup(t, store)
      s.upstream.answers.set('+447911200001', back())
      await s.look('+447911200001')
      s.upstream.answers.set('+447911200001', away(3600_000))
      await s.look('+447911200001')
      s.upstream.answers.set('+447911200002', away(10 * DAY))
      await s.look('+447911200002')
      s.upstream.answers.set('+447911200003', back())
      await s.look('+447911200003')

      const body = (await s.get('/v1/reports/offline-devices')).json()
      t.same(body.items.map((i: { phone_number: string }) => i.phone_number).sort(), ['+447911200001', '+447911200002'])
      const one = body.items.find((i: { phone_number: string }) => i.phone_number === '+447911200001')
      t.ok(one.last_online_at, 'it was online at an earlier check')
      t.ok(Date.parse(one.last_checked_at) >= Date.parse(one.last_online_at))
      t.equal(body.items.find((i: { phone_number: string }) => i.phone_number === '+447911200002').last_online_at, null)
      const future = new Date(Date.now() + 60_000).toISOString()
      t.same((await s.get(`/v1/reports/offline-devices?since=${encodeURIComponent(future)}`)).json().items, [])
      const csv = await s.get('/v1/reports/offline-devices', { accept: 'text/csv' })
      t.equal(csv.body.split('\r\n')[0], 'phone_number,last_online_at,latest_status_at,last_checked_at')
    })

    t.test('CSV or JSON by the Accept header\'s q-values; an Accept allowing neither is a 406 problem', async t => {
      const s = await setup(t, store)
      s.upstream.answers.set('+447911170001', away(90 * DAY))
      await s.look('+447911170001')
      const json = [undefined, '', '*/*', 'application/json', 'text/csv;q=0, application/json', 'application/json;q=1, text/csv;q=0.1',
        'application/json, text/csv', 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8', 'application/*']
      const csv = ['text/csv', 'text/csv, application/json', 'application/json;q=0.5, text/csv', 'text/*', 'TEXT/CSV; charset=UTF-8', 'text/csv;header=present']
      const neither = ['image/png', 'text/csv;q=0', 'application/json;q=0, text/csv;q=0', '*/*;q=0', 'text/csv;charset=latin1', 'nonsense']
      for (const path of ['/v1/reports/stale-contacts', '/v1/reports/offline-devices']) {
        for (const accept of json) {
          const res = await s.get(path, accept === undefined ? {} : { accept })
          t.equal(res.statusCode, 200, `${path} ${accept}`)
          t.match(res.headers['content-type'], /^application\/json/, `${path} ${accept} is JSON`)
          t.equal(res.json().items.length, 1)
          t.equal(res.headers.vary, 'Accept')
        }
        for (const accept of csv) {
          const res = await s.get(path, { accept })
          t.equal(res.statusCode, 200, `${path} ${accept}`)
          t.match(res.headers['content-type'], /^text\/csv; charset=utf-8/, `${path} ${accept} is CSV`)
          t.equal(res.body.trim().split('\r\n').length, 2)
        }
        for (const accept of neither) {
          const res = await s.get(path, { accept })
          t.equal(res.statusCode, 406, `${path} ${accept}`)
          t.equal(res.headers['content-type'], 'application/problem+json; charset=utf-8')
          t.match(res.json(), { type: 'https://reachroute.dev/problems/not-acceptable', status: 406 })
        }
      }
    })

    t.test('offline devices: a device checked again between pages is not given twice', async t => {
      const s = await setup(t, store, { QUEUE_SHARDS: '1' })
      const devices = ['+447911140001', '+447911140002', '+447911140003']
      for (const n of devices) {
        s.upstream.answers.set(n, away(DAY))
        await s.look(n)
        await setTimeout(5)
      }
      let page = (await s.get('/v1/reports/offline-devices?limit=1')).json()
      const seen: string[] = page.items.map((i: { phone_number: string }) => i.phone_number)
      await setTimeout(5)
      await s.look(devices[0]!) // checked again, still offline: its check time moves past the cursor
      while (page.next_cursor) {
        page = (await s.get(`/v1/reports/offline-devices?limit=1&cursor=${page.next_cursor}`)).json()
        seen.push(...page.items.map((i: { phone_number: string }) => i.phone_number))
      }
      t.same(seen, devices, 'each device once')
    })

    t.test('a forged cursor is a 400 problem, and one of an earlier release (shard after shard) says so; a cursor without its time is still taken', async t => {
      const s = await setup(t, store)
      await s.look('+447911150001')
      const enc = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')
      for (const cursor of [enc(['v2', 'x']), enc(['v2', null, 1, '+1']), enc(['v2', 1, 2, 3]), enc(['v2', 1, 2, '+1', 5]), enc(['v2', true]), enc(['v3', 1]), enc([]), enc([0, 1, 2, '+1', 5])]) {
        for (const path of ['stale-contacts', 'offline-devices']) {
          const res = await s.get(`/v1/reports/${path}?cursor=${cursor}`)
          t.equal(res.statusCode, 400, `${path} ${Buffer.from(cursor, 'base64url').toString()}`)
          t.equal(res.headers['content-type'], 'application/problem+json; charset=utf-8')
        }
      }
      for (const cursor of [enc([0]), enc([1, 0, '+1']), enc([0, 1e308]), enc([2, Date.now(), 0, ''])]) {
        for (const path of ['stale-contacts', 'offline-devices']) {
          const res = await s.get(`/v1/reports/${path}?cursor=${cursor}`)
          t.equal(res.statusCode, 400, `${path} ${Buffer.from(cursor, 'base64url').toString()}`)
          t.match(res.json(), { detail: /earlier release of this service.*start the listing again without one/, errors: [{ path: 'querystring.cursor' }] })
        }
      }
      for (const cursor of [enc(['v2']), enc(['v2', 0, '+1']), enc(['v2', 1e308]), enc(['v2', -1e308, 5e-324, '+1']), enc(['v2', Date.now(), 0, ''])]) {
        for (const path of ['stale-contacts', 'offline-devices']) {
          const res = await s.get(`/v1/reports/${path}?cursor=${cursor}`)
          t.equal(res.statusCode, 200, `${path} ${Buffer.from(cursor, 'base64url').toString()}`)
        }
      }
    })

    t.test('refresh: a fleet scan re-checks each number once through the rate-limited upstream', async t => {
      const s = await setup(t, store, { WORKERS: 'on', REACHABILITY_UPSTREAM_RPS: '20' })
      const phone_numbers = Array.from({ length: 20 }, (_, i) => `+4479111${String(50000 + i)}`)
      for (const n of phone_numbers.slice(0, 5)) s.upstream.answers.set(n, away(100 * DAY))
      const started = await s.app.inject({ method: 'POST', url: '/v1/reports/refresh', headers: { authorization: s.auth }, payload: { phone_numbers: [...phone_numbers, phone_numbers[0]] } })
      t.equal(started.statusCode, 202)
      t.match(started.json(), { id: /^rfr_/, status: 'running', total: 20, done: 0 })
      const done = await waitFor(async () => {
        const job = (await s.get(`/v1/reports/refresh/${started.json().id}`)).json()
        return job.status === 'completed' ? job : undefined
      }, 10_000, 'the job to complete')
      t.match(done, { total: 20, done: 20, failed: 0 })
      t.equal(s.upstream.calls.length, 20)
      const span = s.upstream.calls.at(-1)! - s.upstream.calls[0]!
      t.ok(span >= 19 / 20 * 1000 * 0.9, `20 lookups at 20/s took ${span} ms`)
      t.equal((await s.get('/v1/reports/stale-contacts?days=60')).json().items.length, 5, 'the reports learned from the scan')
    })

    t.test('refresh: a number counts done only when the upstream answered with news of it, not when a stale entry stood in', async t => {
      const s = await setup(t, store, { WORKERS: 'on', REACHABILITY_UPSTREAM_RPS: '200', REACHABILITY_RETRIES: '0', BREAKER_FAILURES: '1000' })
      const n = {
        downCached: '+447911130001', downNew: '+447911130002', supplierCached: '+447911130003', supplierNew: '+447911130004',
        notFound: '+447911130005', fine: '+447911130006', refused: '+447911130007', noCoverage: '+447911130008',
      }
      await s.look(n.downCached)
      await s.look(n.supplierCached)
      const supplierError = { is_reachable: false, connectivity: [], latest_status_at: null, status: { code: 'SUPPLIER_ERROR', message: 'The supplier returned an error' } }
      s.upstream.down.add(n.downCached).add(n.downNew)
      s.upstream.answers.set(n.supplierCached, supplierError)
      s.upstream.answers.set(n.supplierNew, supplierError)
      s.upstream.answers.set(n.notFound, { is_reachable: false, connectivity: [], latest_status_at: null, status: { code: 'NOT_FOUND', message: 'Not found' } })
      // Our credentials refused: an answer about our setup, not the number. No coverage: news of the number's network.
      s.upstream.answers.set(n.refused, { is_reachable: false, connectivity: [], latest_status_at: null, status: { code: 'UNAUTHORIZED', message: 'Unauthorized' } })
      s.upstream.answers.set(n.noCoverage, { is_reachable: false, connectivity: [], latest_status_at: null, status: { code: 'NO_COVERAGE', message: 'Not covered' } })
      const started = await s.app.inject({ method: 'POST', url: '/v1/reports/refresh', headers: { authorization: s.auth }, payload: { phone_numbers: Object.values(n) } })
      const done = await waitFor(async () => {
        const job = (await s.get(`/v1/reports/refresh/${started.json().id}`)).json()
        return job.status === 'completed' ? job : undefined
      }, 10_000, 'the job to complete')
      t.match(done, { total: 8, done: 3, failed: 5 }, 'only NOT_FOUND, NO_COVERAGE and the reachable number were checked (not UNAUTHORIZED)')
      const [supplierNew, notFound] = await s.app.store.getReports([n.supplierNew, n.notFound])
      t.equal(supplierNew, null, 'a "try again later" answer is recorded nowhere')
      t.match(notFound, { status_code: 'NOT_FOUND' }, 'an answer about the number is recorded')
    })

    t.test('bad input is a problem and creates nothing', async t => {
      const s = await setup(t, store)
      for (const url of ['/v1/reports/stale-contacts?days=0', '/v1/reports/stale-contacts?limit=0', '/v1/reports/stale-contacts?cursor=junk',
        '/v1/reports/offline-devices?since=yesterday', '/v1/reports/offline-devices?limit=5000']) {
        const res = await s.get(url)
        t.equal(res.statusCode, 400, url)
        t.equal(res.headers['content-type'], 'application/problem+json; charset=utf-8')
      }
      for (const payload of [{}, { phone_numbers: [] }, { phone_numbers: ['nope'] }, { phone_numbers: ['+990123400'], campaign: 'x' }]) {
        t.equal((await s.app.inject({ method: 'POST', url: '/v1/reports/refresh', headers: { authorization: s.auth }, payload })).statusCode, 400)
      }
      t.equal(s.upstream.calls.length, 0)
      t.equal((await s.get('/v1/reports/refresh/rfr_00000000000000000000000000000000')).statusCode, 404)
      t.equal((await s.get('/v1/reports/refresh/nope')).statusCode, 404)
      const wrong = await s.app.inject({ url: '/v1/reports/stale-contacts', headers: { authorization: await s.bearer('reachability:read') } })
      t.equal(wrong.statusCode, 403)
    })
  })
}

t.test('the upstream budget is shared by two processes on one Redis', { skip: !haveRedis && 'Redis is not running' }, async t => {
  const prefix = uniquePrefix()
  const env = { WORKERS: 'on', REACHABILITY_UPSTREAM_RPS: '20' }
  const a = await setup(t, 'redis', env, prefix)
  const numbers = (base: number) => Array.from({ length: 20 }, (_, i) => `+4479112${String(base + i).padStart(5, '0')}`)
  // The other process: its own Node process, app, store connection and runner, on the same Redis prefix.
  const other = spawn(...withoutTapLoaders(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('../../helpers/refresh-process.ts', import.meta.url))]), {
    env: { ...process.env, SCAN_PREFIX: prefix, SCAN_RPS: env.REACHABILITY_UPSTREAM_RPS, SCAN_NUMBERS: JSON.stringify(numbers(100)) },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  t.teardown(() => { other.kill('SIGKILL') })
  let printed = ''
  other.stdout.setEncoding('utf8').on('data', (chunk: string) => { printed += chunk })
  const exited = once(other, 'exit')
  // Both scans run at once: this one starts when the other process is about to start its own.
  await waitFor(() => printed.startsWith('ready\n') ? true : undefined, 20_000, 'the other process to start')
  const ja = await a.app.inject({ method: 'POST', url: '/v1/reports/refresh', headers: { authorization: a.auth }, payload: { phone_numbers: numbers(0) } })
  await waitFor(async () => (await a.get(`/v1/reports/refresh/${ja.json().id}`)).json().status === 'completed' ? true : undefined, 20_000, 'this process\'s job')
  const [code] = await exited
  t.equal(code, 0, 'the other process completed its scan')
  // Either process's runner works on either job: only the total is known (20 numbers each, each checked once).
  const theirs = JSON.parse(printed.slice('ready\n'.length)) as number[]
  const calls = [...a.upstream.calls, ...theirs].sort((x, y) => x - y)
  t.equal(calls.length, 40)
  const span = calls.at(-1)! - calls[0]!
  t.ok(span >= 39 / 20 * 1000 * 0.9, `40 lookups from two processes at 20/s together took ${span} ms`)
  // No one-second window holds more than the rate (plus the one token a quiet bucket may hold).
  let worst = 0
  for (let i = 0; i < calls.length; i++) worst = Math.max(worst, calls.filter(c => c >= calls[i]! && c < calls[i]! + 1000).length)
  t.ok(worst <= 21, `at most 21 lookups in any second (saw ${worst})`)
})
