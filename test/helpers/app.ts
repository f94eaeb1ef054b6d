import type { FastifyInstance } from 'fastify'
import { buildApp, type AppOptions } from '../../src/app.js'
import { ALL_SCOPES } from '../../src/auth/inbound.js'
import { loadConfig, type Config } from '../../src/config.js'

export const TEST_SECRET = 'test-secret-for-reachroute-at-least-32-chars'

export function testConfig (env: Record<string, string | undefined> = {}): Config {
  // Workers are off unless a test asks for them: a test that forgets to close its app must not hang.
  // Rate limits too: a test polling every 20 ms is faster than any caller may be; and the providers' send rates.
  return loadConfig({
    NODE_ENV: 'test', LOG_LEVEL: 'silent', AUTH_HS256_SECRET: TEST_SECRET, REDIS_URL: undefined, WORKERS: 'off',
    RATE_LIMIT_NOTIFICATIONS_PER_MINUTE: '0', RATE_LIMIT_REACHABILITY_PER_MINUTE: '0', RATE_LIMIT_OPS_PER_MINUTE: '0', RATE_LIMIT_DEFAULT_PER_MINUTE: '0',
    SMS_RPS: '0', PUSH_RPS: '0',
    ...env,
  })
}

export interface TestApp {
  app: FastifyInstance
  /** A bearer header with the given scopes (all of them by default). */
  bearer: (scope?: string, sub?: string) => Promise<string>
}

export async function buildTestApp (env: Record<string, string | undefined> = {}, options: Omit<AppOptions, 'config'> = {}): Promise<TestApp> {
  const app = await buildApp({ config: testConfig(env), logger: false, ...options })
  await app.ready()
  return {
    app,
    bearer: async (scope = ALL_SCOPES, sub = 'test-caller') => `Bearer ${await app.auth.issue({ sub, scope, ttlSeconds: 600 })}`,
  }
}
