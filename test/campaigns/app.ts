import type { Test } from 'tap'
import { SandboxPushChannel, SandboxSmsChannel } from '../../src/channels/sandbox.js'
import { buildTestApp } from '../helpers/app.js'
import { dropPrefix, REDIS_URL, redisAvailable, uniquePrefix } from '../helpers/redis.js'

// The app with its workers on, for POST /v1/campaigns tests: on each store, what it answers and what it sent.

export const haveRedis = await redisAvailable()
export const STORES = ['memory', 'redis'] as const
export const NDJSON = { 'content-type': 'application/x-ndjson' }
export const message = { sms: { text: 'Hi {{name}}' }, push: { title: 'Hi', body: 'Hi {{name}}' } }

/** An NDJSON body: each value a line (a string as it is), each line ending in a newline. */
export const ndjson = (...lines: unknown[]) => lines.map(l => typeof l === 'string' ? l : JSON.stringify(l)).join('\n') + '\n'

export function skipStore (store: typeof STORES[number]): string | false {
  return store === 'redis' && !haveRedis && 'Redis is not running'
}

export async function campaignApp (t: Test, store: typeof STORES[number], env: Record<string, string> = {}) {
  const prefix = uniquePrefix()
  const sms = new SandboxSmsChannel({ log: () => {} })
  const push = new SandboxPushChannel({ log: () => {} })
  const { app, bearer } = await buildTestApp({
    ...(store === 'redis' ? { REDIS_URL, REDIS_KEY_PREFIX: prefix } : {}),
    QUEUE_SHARDS: '3', WORKERS: 'on', WORKER_IDLE_POLL_MS: '20', FALLBACK_POLL_MS: '20', REACHABILITY_UPSTREAM_RPS: '100000',
    ...env,
  }, { channels: { sms, push } })
  t.teardown(async () => {
    await app.close()
    if (store === 'redis') await dropPrefix(prefix)
  })
  const auth = await bearer('campaigns:write campaigns:read')
  const post = (payload: unknown, headers: Record<string, string> = {}) =>
    app.inject({ method: 'POST', url: '/v1/campaigns', headers: { authorization: auth, ...headers }, payload: payload as string })
  const listed = async () => (await app.inject({ url: '/v1/campaigns', headers: { authorization: auth } })).json().items as { id: string, status: string }[]
  /** Messages the sandbox channels delivered. */
  const sent = () => sms.deliveries().length + push.deliveries().length
  return { app, auth, post, listed, sent }
}
