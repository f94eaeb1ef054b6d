// A second service process for the shared-budget test: the app on the Redis prefix it is given, a fleet scan
// of the numbers it is given (after printing a line `ready`), and the times of its upstream calls printed as
// a JSON line when the scan has completed.
import type { UpstreamAnswer } from '../../src/domain/reachability.js'
import type { ReachabilityUpstream } from '../../src/reachability/upstreams/upstream.js'
import { buildTestApp } from './app.js'
import { REDIS_URL } from './redis.js'

const calls: number[] = []
const upstream: ReachabilityUpstream = {
  name: 'timed',
  async check (): Promise<UpstreamAnswer> {
    calls.push(Date.now())
    return { is_reachable: true, connectivity: ['DATA', 'SMS'], latest_status_at: new Date().toISOString(), status: { code: 'OK', message: 'Success' } }
  },
  async close () {},
}

const { app, bearer } = await buildTestApp({
  REDIS_URL, REDIS_KEY_PREFIX: process.env.SCAN_PREFIX!, QUEUE_SHARDS: '3', WORKERS: 'on', REACHABILITY_UPSTREAM_RPS: process.env.SCAN_RPS!,
}, { upstream })
const authorization = await bearer('reports:read')
const numbers = JSON.parse(process.env.SCAN_NUMBERS!) as string[]
process.stdout.write('ready\n')
const job = await app.inject({ method: 'POST', url: '/v1/reports/refresh', headers: { authorization }, payload: { phone_numbers: numbers } })
if (job.statusCode !== 202) throw new Error(`refresh refused: ${job.body}`)
const deadline = Date.now() + 20_000
while ((await app.inject({ url: `/v1/reports/refresh/${job.json().id}`, headers: { authorization } })).json().status !== 'completed') {
  if (Date.now() > deadline) throw new Error('the scan did not complete within 20 s')
  await new Promise(resolve => setTimeout(resolve, 50))
}
await app.close()
process.stdout.write(JSON.stringify(calls))
