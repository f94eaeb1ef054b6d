import { readFileSync } from 'node:fs'
import { z } from 'zod'
import { parseAllowedHost } from './notifications/callback-policy.js'

// The one place that reads the environment. Everything else receives a Config.

/**
 * A number as the environment writes one: decimal digits, maybe a fraction ("30", "0.5"), around it spaces. What
 * Number() would also take is refused: " " (0), "0x1F90", "1e3".
 */
const num = <T extends z.ZodNumber>(schema: T) =>
  z.string().trim().regex(/^-?\d+(\.\d+)?$/, { error: 'not a number written in decimal digits (e.g. 30 or 0.5)' }).transform(Number).pipe(schema)
const seconds = (def: number) => num(z.number().int().min(0)).default(def)
const positive = (def: number) => num(z.number().int().min(1)).default(def)
const optionalString = z.string().trim().min(1).optional()
const optionalUrl = z.url({ protocol: /^https?$/ }).optional()
const bool = (def: boolean) => z.stringbool().default(def)
/** With REACHABILITY_PROVIDER=camara: these three, or CAMARA_ACCESS_TOKEN. */
const CAMARA_CLIENT_CREDENTIALS = ['CAMARA_TOKEN_URL', 'CAMARA_CLIENT_ID', 'CAMARA_CLIENT_SECRET'] as const

export const envSchema = z
  .object({
    NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
    PORT: num(z.number().int().min(0).max(65535)).default(3000),
    HOST: z.string().min(1).default('0.0.0.0'),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    REQUEST_TIMEOUT_MS: num(z.number().int().min(100).max(3_600_000)).default(120_000),

    REDIS_URL: z.url({ protocol: /^rediss?$/, hostname: /^.+$/, error: 'a redis:// or rediss:// URL with a host, e.g. redis://127.0.0.1:6379' }).optional(),
    REDIS_CLUSTER_NODES: z.string().trim()
      .regex(/^(\[[0-9A-Fa-f:.]+\]|[^\s,:[\]]+):\d{1,5}(\s*,\s*(\[[0-9A-Fa-f:.]+\]|[^\s,:[\]]+):\d{1,5})*$/, 'comma-separated host:port pairs, e.g. 10.0.0.1:6379,10.0.0.2:6379')
      .optional(),
    REDIS_KEY_PREFIX: z.string().regex(/^[A-Za-z0-9:_-]{1,32}$/, 'letters, digits, ":", "_" or "-", at most 32').default('rr:'),
    REDIS_COMMAND_TIMEOUT_MS: positive(1000),
    QUEUE_SHARDS: num(z.number().int().min(1).max(100)).default(16),

    WORKERS: z.enum(['on', 'off']).default('on'),
    WORKER_CONCURRENCY: num(z.number().int().min(1).max(1000)).default(32),
    WORKER_IDLE_POLL_MS: num(z.number().int().min(1).max(10000)).default(200),
    WORKER_VISIBILITY_TIMEOUT_MS: num(z.number().int().min(100)).default(30000),
    DELIVERY_MAX_ATTEMPTS: num(z.number().int().min(1).max(50)).default(5),
    DELIVERY_RETRY_BASE_MS: positive(2000),
    DELIVERY_RETRY_MAX_MS: positive(300000),
    NOTIFICATION_RETENTION_SECONDS: num(z.number().int().min(60)).default(7 * 86400),
    IDEMPOTENCY_TTL_SECONDS: num(z.number().int().min(60)).default(86400),
    CAMPAIGN_IDEMPOTENCY_TTL_SECONDS: num(z.number().int().min(60)).default(3600),
    CALLBACK_MAX_ATTEMPTS: num(z.number().int().min(1).max(50)).default(8),

    FALLBACK_FIRST_CHECK_SECONDS: positive(60),
    FALLBACK_BACKOFF_FACTOR: num(z.number().min(1).max(10)).default(2),
    FALLBACK_MAX_INTERVAL_SECONDS: positive(3600),
    FALLBACK_RECHECK_MAX_AGE_SECONDS: seconds(5),
    FALLBACK_LEASE_SECONDS: positive(60),
    FALLBACK_POLL_MS: num(z.number().int().min(10).max(60000)).default(1000),
    FALLBACK_CONCURRENCY: num(z.number().int().min(1).max(1000)).default(16),
    DEAD_LETTER_RETENTION_SECONDS: num(z.number().int().min(60)).default(30 * 86400),

    REACHABILITY_PROVIDER: z.enum(['sandbox', 'vonage', 'camara']).default('sandbox'),
    REACHABILITY_TIMEOUT_MS: positive(2000),
    REACHABILITY_RETRIES: num(z.number().int().min(0).max(10)).default(2),
    REACHABILITY_RETRY_BASE_MS: positive(100),
    REACHABILITY_RETRY_MAX_MS: positive(2000),
    REACHABILITY_TTL_REACHABLE_SECONDS: seconds(300),
    REACHABILITY_TTL_UNREACHABLE_SECONDS: seconds(60),
    REACHABILITY_TTL_INVALID_SECONDS: seconds(86400),
    REACHABILITY_MAX_STALE_SECONDS: seconds(3600),
    REACHABILITY_UPSTREAM_RPS: num(z.number().min(0.1).max(100000)).default(50),
    REFRESH_CONCURRENCY: num(z.number().int().min(1).max(1000)).default(16),
    REACHABILITY_BATCH_CONCURRENCY: num(z.number().int().min(1).max(256)).default(16),
    SANDBOX_COMEBACK_SECONDS: seconds(20),

    VONAGE_API_BASE_URL: z.url({ protocol: /^https?$/ }).default('https://api-eu.vonage.com'),
    VONAGE_INSIGHTS_PATH: z.string().startsWith('/').default('/identity-insights/v1/requests'),
    VONAGE_APPLICATION_ID: optionalString,
    VONAGE_PRIVATE_KEY: optionalString,
    VONAGE_PRIVATE_KEY_PATH: optionalString,
    VONAGE_INSIGHTS_PURPOSE: z.string().min(1).default('FraudPreventionAndDetection'),
    VONAGE_JWT_TTL_SECONDS: num(z.number().int().min(120).max(86400)).default(900),

    CAMARA_BASE_URL: optionalUrl,
    CAMARA_ACCESS_TOKEN: optionalString,
    CAMARA_TOKEN_URL: optionalUrl,
    CAMARA_CLIENT_ID: optionalString,
    CAMARA_CLIENT_SECRET: optionalString,
    CAMARA_SCOPE: optionalString,
    CAMARA_SUBSCRIPTIONS_URL: optionalUrl,
    CAMARA_SINK_TOKEN: z.string().min(16, 'must be at least 16 characters').optional(),
    PUBLIC_BASE_URL: optionalUrl,

    AUTH_JWKS_URL: optionalUrl,
    AUTH_PUBLIC_KEY: optionalString,
    AUTH_HS256_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
    AUTH_ISSUER: optionalString,
    AUTH_AUDIENCE: optionalString,
    AUTH_JWKS_TIMEOUT_MS: positive(2000),
    AUTH_JWKS_COOLDOWN_MS: positive(30000),

    DOCS_ENABLED: bool(true),
    METRICS_AUTH: z.enum(['none', 'ops']).optional(),
    METRICS_PORT: num(z.number().int().min(1).max(65535)).optional(),
    BREAKER_FAILURES: num(z.number().int().min(1).max(1000)).default(5),
    BREAKER_HALF_OPEN_AFTER_MS: positive(10000),
    DOCS_AUTH: z.enum(['none', 'ops']).default('none'),
    HSTS_MAX_AGE_SECONDS: seconds(0),
    RATE_LIMIT_NOTIFICATIONS_PER_MINUTE: seconds(3000),
    RATE_LIMIT_REACHABILITY_PER_MINUTE: seconds(6000),
    RATE_LIMIT_OPS_PER_MINUTE: seconds(300),
    RATE_LIMIT_DEFAULT_PER_MINUTE: seconds(600),

    SMS_PROVIDER: z.enum(['sandbox', 'vonage']).default('sandbox'),
    PUSH_PROVIDER: z.enum(['sandbox', 'fcm', 'webhook']).default('sandbox'),
    CHANNEL_TIMEOUT_MS: positive(5000),
    SMS_RPS: num(z.number().min(0).max(100000)).default(30),
    PUSH_RPS: num(z.number().min(0).max(100000)).default(500),
    // What Vonage takes as an SMS sender: an alphanumeric id of up to 11 characters, or a number of up to 15 digits.
    SMS_FROM: z.string().regex(/^([A-Za-z0-9 ]{1,11}|\d{1,15})$/, 'an alphanumeric sender id of 1 to 11 letters, digits and spaces, or a number of 1 to 15 digits without "+"').default('reachroute'),
    VONAGE_MESSAGES_BASE_URL: z.url({ protocol: /^https?$/ }).default('https://api.nexmo.com'),
    VONAGE_SIGNATURE_SECRET: optionalString,
    FCM_SERVICE_ACCOUNT: optionalString,
    FCM_SERVICE_ACCOUNT_PATH: optionalString,
    FCM_PROJECT_ID: optionalString,
    FCM_BASE_URL: z.url({ protocol: /^https?$/ }).default('https://fcm.googleapis.com'),
    FCM_TOKEN_URL: z.url({ protocol: /^https?$/ }).default('https://oauth2.googleapis.com/token'),
    PUSH_WEBHOOK_URL: optionalUrl,
    PUSH_WEBHOOK_SECRET: z.string().min(16, 'must be at least 16 characters').optional(),
    CALLBACK_SIGNING_SECRET: z.string().min(16, 'must be at least 16 characters').optional(),
    CALLBACK_ALLOWED_HOSTS: z.string().trim()
      .superRefine((list, ctx) => {
        const hosts = hostList(list)
        const bad = hosts.filter(host => parseAllowedHost(host) === undefined)
        // A list of nothing (",") would allow any host: the opposite of what was meant.
        if (hosts.length > 0 && bad.length === 0) return
        ctx.addIssue({
          code: 'custom',
          message: `${bad.length > 0 ? `${bad.map(host => JSON.stringify(host)).join(', ')}: ` : 'no host given: '}comma-separated host names or IP addresses ` +
            '(IPv6 in brackets), "*.example.com" for any name under example.com; no scheme, port or path',
        })
      })
      .optional(),
  })
  .superRefine((env, ctx) => {
    const need = (cond: boolean, path: string, message: string) => {
      if (!cond) ctx.addIssue({ code: 'custom', path: [path], message })
    }
    if (env.REACHABILITY_PROVIDER === 'vonage') {
      need(!!env.VONAGE_APPLICATION_ID, 'VONAGE_APPLICATION_ID', 'required when REACHABILITY_PROVIDER=vonage')
      need(!!(env.VONAGE_PRIVATE_KEY || env.VONAGE_PRIVATE_KEY_PATH), 'VONAGE_PRIVATE_KEY',
        'VONAGE_PRIVATE_KEY or VONAGE_PRIVATE_KEY_PATH is required when REACHABILITY_PROVIDER=vonage')
    }
    if (env.REACHABILITY_PROVIDER === 'camara') {
      need(!!env.CAMARA_BASE_URL, 'CAMARA_BASE_URL', 'required when REACHABILITY_PROVIDER=camara')
      const clientCredentials = CAMARA_CLIENT_CREDENTIALS.filter(name => env[name] !== undefined)
      const trio = CAMARA_CLIENT_CREDENTIALS.join(', ')
      if (env.CAMARA_ACCESS_TOKEN) {
        need(clientCredentials.length === 0, 'CAMARA_ACCESS_TOKEN',
          `set CAMARA_ACCESS_TOKEN (a static token) or ${trio} (OAuth2 client credentials), not both`)
      } else if (clientCredentials.length === 0) {
        need(false, 'CAMARA_ACCESS_TOKEN',
          `required when REACHABILITY_PROVIDER=camara, unless ${trio} are set (OAuth2 client credentials)`)
      } else {
        for (const name of CAMARA_CLIENT_CREDENTIALS) {
          need(env[name] !== undefined, name, `required with ${clientCredentials.join(' and ')}: OAuth2 client credentials need all of ${trio}`)
        }
      }
    }
    need(!env.CAMARA_SCOPE || CAMARA_CLIENT_CREDENTIALS.every(name => env[name] !== undefined), 'CAMARA_SCOPE',
      `only used with OAuth2 client credentials (${CAMARA_CLIENT_CREDENTIALS.join(', ')})`)
    if (env.SMS_PROVIDER === 'vonage') {
      need(!!env.VONAGE_APPLICATION_ID, 'VONAGE_APPLICATION_ID', 'required when SMS_PROVIDER=vonage')
      need(!!(env.VONAGE_PRIVATE_KEY || env.VONAGE_PRIVATE_KEY_PATH), 'VONAGE_PRIVATE_KEY',
        'VONAGE_PRIVATE_KEY or VONAGE_PRIVATE_KEY_PATH is required when SMS_PROVIDER=vonage')
    }
    if (env.PUSH_PROVIDER === 'fcm') {
      need(!!(env.FCM_SERVICE_ACCOUNT || env.FCM_SERVICE_ACCOUNT_PATH), 'FCM_SERVICE_ACCOUNT',
        'FCM_SERVICE_ACCOUNT or FCM_SERVICE_ACCOUNT_PATH is required when PUSH_PROVIDER=fcm')
    }
    if (env.PUSH_PROVIDER === 'webhook') {
      need(!!env.PUSH_WEBHOOK_URL, 'PUSH_WEBHOOK_URL', 'required when PUSH_PROVIDER=webhook')
      need(!!env.PUSH_WEBHOOK_SECRET, 'PUSH_WEBHOOK_SECRET', 'required when PUSH_PROVIDER=webhook')
    }
    for (const name of ['VONAGE_PRIVATE_KEY_PATH', 'FCM_SERVICE_ACCOUNT_PATH'] as const) {
      const path = env[name]
      if (!path) continue
      try {
        readFileSync(path)
      } catch (err) {
        need(false, name, `cannot be read: ${(err as Error).message}`)
      }
    }
    if (env.CAMARA_SUBSCRIPTIONS_URL) {
      need(env.REACHABILITY_PROVIDER === 'camara', 'CAMARA_SUBSCRIPTIONS_URL', 'only used with REACHABILITY_PROVIDER=camara')
      need(!!env.PUBLIC_BASE_URL, 'PUBLIC_BASE_URL', 'required with CAMARA_SUBSCRIPTIONS_URL: the operator posts events to <PUBLIC_BASE_URL>/v1/webhooks/camara')
      need(!!env.CAMARA_SINK_TOKEN, 'CAMARA_SINK_TOKEN', 'required with CAMARA_SUBSCRIPTIONS_URL: the token the operator sends with each event')
    }
    need(!(env.REDIS_URL && env.REDIS_CLUSTER_NODES), 'REDIS_CLUSTER_NODES', 'set REDIS_URL (one Redis) or REDIS_CLUSTER_NODES (Redis Cluster), not both')
    need(!env.REDIS_CLUSTER_NODES || parseNodes(env.REDIS_CLUSTER_NODES)!.every(n => n.port >= 1 && n.port <= 65535), 'REDIS_CLUSTER_NODES', 'ports run from 1 to 65535')
    need(env.METRICS_PORT === undefined || env.METRICS_PORT !== env.PORT, 'METRICS_PORT', 'must differ from PORT')
    need(env.METRICS_PORT === undefined || env.METRICS_AUTH !== 'ops', 'METRICS_AUTH',
      'ops guards /metrics on the main port only; the METRICS_PORT listener has no auth (keep it on a network only the scraper reaches)')
    const authSources = [env.AUTH_JWKS_URL, env.AUTH_PUBLIC_KEY, env.AUTH_HS256_SECRET].filter(Boolean).length
    need(authSources <= 1, 'AUTH_JWKS_URL', 'set only one of AUTH_JWKS_URL, AUTH_PUBLIC_KEY, AUTH_HS256_SECRET')
    need(authSources === 1 || env.NODE_ENV !== 'production', 'AUTH_JWKS_URL',
      'NODE_ENV=production needs one of AUTH_JWKS_URL, AUTH_PUBLIC_KEY or AUTH_HS256_SECRET')
  })

export type Env = z.infer<typeof envSchema>

export interface Config {
  env: Env['NODE_ENV']
  port: number
  host: string
  logLevel: Env['LOG_LEVEL']
  /** How long a client may take to send a whole request, headers and body (then 408 and the connection closed). */
  requestTimeoutMs: number
  redis: {
    url: string | undefined
    /** Redis Cluster seed nodes (REDIS_CLUSTER_NODES); set, the store uses Redis Cluster instead of REDIS_URL. */
    clusterNodes: { host: string, port: number }[] | undefined
    keyPrefix: string
    commandTimeoutMs: number
  }
  /** How many shards the outboxes and queues are split into (each shard: one Redis Cluster slot). */
  shards: number
  workers: {
    enabled: boolean
    concurrency: number
    idlePollMs: number
    visibilityTimeoutMs: number
  }
  delivery: {
    maxAttempts: number
    retryBaseMs: number
    retryMaxMs: number
    retentionSeconds: number
    idempotencyTtlSeconds: number
    /** How long a campaign recipient's idempotency record is kept once its chunk is counted. */
    campaignIdempotencyTtlSeconds: number
    callbackMaxAttempts: number
  }
  fallback: {
    firstCheckSeconds: number
    backoffFactor: number
    maxIntervalSeconds: number
    recheckMaxAgeSeconds: number
    leaseSeconds: number
    pollMs: number
    concurrency: number
    deadLetterRetentionSeconds: number
  }
  reachability: {
    provider: Env['REACHABILITY_PROVIDER']
    timeoutMs: number
    retries: number
    retryBaseMs: number
    retryMaxMs: number
    ttl: { reachableSeconds: number, unreachableSeconds: number, invalidSeconds: number }
    maxStaleSeconds: number
    batchConcurrency: number
    /** Upstream lookups per second that background work (fleet scans) may make, across every process. */
    upstreamRps: number
    refreshConcurrency: number
    sandboxComebackSeconds: number
  }
  vonage: {
    baseUrl: string
    insightsPath: string
    applicationId: string | undefined
    privateKey: string | undefined
    purpose: string
    jwtTtlSeconds: number
  }
  camara: {
    baseUrl: string | undefined
    /** A static bearer token (CAMARA_ACCESS_TOKEN); unset when clientCredentials are. */
    accessToken: string | undefined
    /** OAuth2 client credentials: access tokens are fetched from tokenUrl and renewed before they expire. */
    clientCredentials: { tokenUrl: string, clientId: string, clientSecret: string, scope: string | undefined } | undefined
    /** The subscriptions API root; set, queued numbers get reachability subscriptions. */
    subscriptionsUrl: string | undefined
    sinkToken: string | undefined
  }
  /** Where the world reaches this service (for webhook sinks). */
  publicBaseUrl: string | undefined
  auth: {
    jwksUrl: string | undefined
    publicKey: string | undefined
    hs256Secret: string | undefined
    issuer: string | undefined
    audience: string | undefined
    jwksTimeoutMs: number
    jwksCooldownMs: number
  }
  docsEnabled: boolean
  metrics: {
    /** Who may read /metrics on the main port: anyone, or tokens with the ops scope. */
    auth: 'none' | 'ops'
    /** Set: /metrics is served only on this port of its own, without auth, and not on the main port. */
    port: number | undefined
  }
  /** Circuit breakers on the reachability upstream and each channel provider. */
  breaker: { failures: number, halfOpenAfterMs: number }
  /** `ops`: /docs and /openapi.json need a token with the ops scope. */
  docsAuth: Env['DOCS_AUTH']
  /** Set when the service is reached over HTTPS: Strict-Transport-Security max-age; 0 sends no HSTS. */
  hstsMaxAgeSeconds: number
  /** Requests per minute per caller in each route group; 0 turns a group's limit off. */
  rateLimit: { notifications: number, reachability: number, ops: number, default: number }
  channels: {
    smsProvider: Env['SMS_PROVIDER']
    pushProvider: Env['PUSH_PROVIDER']
    timeoutMs: number
    /** Provider calls per second across every process (a token bucket in the store); 0: no limit. */
    smsRps: number
    pushRps: number
    smsFrom: string
    vonageMessagesBaseUrl: string
    vonageSignatureSecret: string | undefined
    /** The FCM service account JSON text, from FCM_SERVICE_ACCOUNT or the file at FCM_SERVICE_ACCOUNT_PATH. */
    fcmServiceAccount: string | undefined
    fcmProjectId: string | undefined
    fcmBaseUrl: string
    fcmTokenUrl: string
    pushWebhookUrl: string | undefined
    pushWebhookSecret: string | undefined
  }
  callbackSigningSecret: string | undefined
  /** Where status callbacks may go (CALLBACK_ALLOWED_HOSTS, normalised); empty: anywhere. */
  callbackAllowedHosts: string[]
}

export class ConfigError extends Error {
  constructor (readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`)
    this.name = 'ConfigError'
  }
}

/** Parses the environment once; a bad value throws a ConfigError naming each variable. */
export function loadConfig (source: Record<string, string | undefined> = process.env): Config {
  // An empty variable counts as unset, as shells and compose files often leave them. One of spaces only is neither
  // empty nor a value (a number would read it as 0, a secret as spaces): refused, for the variables read here.
  const env = Object.fromEntries(Object.entries(source).filter(([, v]) => v !== undefined && v !== ''))
  const blank = Object.keys(envSchema.shape).filter(name => env[name] !== undefined && env[name]!.trim() === '')
  const parsed = envSchema.safeParse(env)
  if (blank.length > 0 || !parsed.success) {
    throw new ConfigError([
      ...blank.map(name => `${name}: only whitespace: leave it empty (unset) or give a value`),
      ...(parsed.success ? [] : parsed.error.issues.filter(i => !blank.includes(String(i.path[0]))).map(i => `${i.path.join('.') || '(environment)'}: ${i.message}`)),
    ])
  }
  const e = parsed.data
  return {
    env: e.NODE_ENV,
    port: e.PORT,
    host: e.HOST,
    logLevel: e.LOG_LEVEL,
    requestTimeoutMs: e.REQUEST_TIMEOUT_MS,
    redis: { url: e.REDIS_URL, clusterNodes: parseNodes(e.REDIS_CLUSTER_NODES), keyPrefix: e.REDIS_KEY_PREFIX, commandTimeoutMs: e.REDIS_COMMAND_TIMEOUT_MS },
    shards: e.QUEUE_SHARDS,
    workers: {
      enabled: e.WORKERS === 'on',
      concurrency: e.WORKER_CONCURRENCY,
      idlePollMs: e.WORKER_IDLE_POLL_MS,
      visibilityTimeoutMs: e.WORKER_VISIBILITY_TIMEOUT_MS,
    },
    delivery: {
      maxAttempts: e.DELIVERY_MAX_ATTEMPTS,
      retryBaseMs: e.DELIVERY_RETRY_BASE_MS,
      retryMaxMs: e.DELIVERY_RETRY_MAX_MS,
      retentionSeconds: e.NOTIFICATION_RETENTION_SECONDS,
      idempotencyTtlSeconds: e.IDEMPOTENCY_TTL_SECONDS,
      campaignIdempotencyTtlSeconds: e.CAMPAIGN_IDEMPOTENCY_TTL_SECONDS,
      callbackMaxAttempts: e.CALLBACK_MAX_ATTEMPTS,
    },
    fallback: {
      firstCheckSeconds: e.FALLBACK_FIRST_CHECK_SECONDS,
      backoffFactor: e.FALLBACK_BACKOFF_FACTOR,
      maxIntervalSeconds: e.FALLBACK_MAX_INTERVAL_SECONDS,
      recheckMaxAgeSeconds: e.FALLBACK_RECHECK_MAX_AGE_SECONDS,
      leaseSeconds: e.FALLBACK_LEASE_SECONDS,
      pollMs: e.FALLBACK_POLL_MS,
      concurrency: e.FALLBACK_CONCURRENCY,
      deadLetterRetentionSeconds: e.DEAD_LETTER_RETENTION_SECONDS,
    },
    reachability: {
      provider: e.REACHABILITY_PROVIDER,
      timeoutMs: e.REACHABILITY_TIMEOUT_MS,
      retries: e.REACHABILITY_RETRIES,
      retryBaseMs: e.REACHABILITY_RETRY_BASE_MS,
      retryMaxMs: e.REACHABILITY_RETRY_MAX_MS,
      ttl: {
        reachableSeconds: e.REACHABILITY_TTL_REACHABLE_SECONDS,
        unreachableSeconds: e.REACHABILITY_TTL_UNREACHABLE_SECONDS,
        invalidSeconds: e.REACHABILITY_TTL_INVALID_SECONDS,
      },
      maxStaleSeconds: e.REACHABILITY_MAX_STALE_SECONDS,
      batchConcurrency: e.REACHABILITY_BATCH_CONCURRENCY,
      upstreamRps: e.REACHABILITY_UPSTREAM_RPS,
      refreshConcurrency: e.REFRESH_CONCURRENCY,
      sandboxComebackSeconds: e.SANDBOX_COMEBACK_SECONDS,
    },
    vonage: {
      baseUrl: e.VONAGE_API_BASE_URL.replace(/\/+$/, ''),
      insightsPath: e.VONAGE_INSIGHTS_PATH,
      applicationId: e.VONAGE_APPLICATION_ID,
      privateKey: e.VONAGE_PRIVATE_KEY ?? (e.VONAGE_PRIVATE_KEY_PATH ? readFileSync(e.VONAGE_PRIVATE_KEY_PATH, 'utf8') : undefined),
      purpose: e.VONAGE_INSIGHTS_PURPOSE,
      jwtTtlSeconds: e.VONAGE_JWT_TTL_SECONDS,
    },
    camara: {
      baseUrl: e.CAMARA_BASE_URL?.replace(/\/+$/, ''),
      accessToken: e.CAMARA_ACCESS_TOKEN,
      clientCredentials: e.CAMARA_TOKEN_URL && e.CAMARA_CLIENT_ID && e.CAMARA_CLIENT_SECRET
        ? { tokenUrl: e.CAMARA_TOKEN_URL, clientId: e.CAMARA_CLIENT_ID, clientSecret: e.CAMARA_CLIENT_SECRET, scope: e.CAMARA_SCOPE }
        : undefined,
      subscriptionsUrl: e.CAMARA_SUBSCRIPTIONS_URL?.replace(/\/+$/, ''),
      sinkToken: e.CAMARA_SINK_TOKEN,
    },
    publicBaseUrl: e.PUBLIC_BASE_URL?.replace(/\/+$/, ''),
    auth: {
      jwksUrl: e.AUTH_JWKS_URL,
      publicKey: e.AUTH_PUBLIC_KEY,
      hs256Secret: e.AUTH_HS256_SECRET,
      issuer: e.AUTH_ISSUER,
      audience: e.AUTH_AUDIENCE,
      jwksTimeoutMs: e.AUTH_JWKS_TIMEOUT_MS,
      jwksCooldownMs: e.AUTH_JWKS_COOLDOWN_MS,
    },
    docsEnabled: e.DOCS_ENABLED,
    metrics: {
      // Default: behind the ops scope in production, unless a port of its own keeps it off the public listener.
      auth: e.METRICS_AUTH ?? (e.NODE_ENV === 'production' && e.METRICS_PORT === undefined ? 'ops' : 'none'),
      port: e.METRICS_PORT,
    },
    breaker: { failures: e.BREAKER_FAILURES, halfOpenAfterMs: e.BREAKER_HALF_OPEN_AFTER_MS },
    docsAuth: e.DOCS_AUTH,
    hstsMaxAgeSeconds: e.HSTS_MAX_AGE_SECONDS,
    rateLimit: {
      notifications: e.RATE_LIMIT_NOTIFICATIONS_PER_MINUTE,
      reachability: e.RATE_LIMIT_REACHABILITY_PER_MINUTE,
      ops: e.RATE_LIMIT_OPS_PER_MINUTE,
      default: e.RATE_LIMIT_DEFAULT_PER_MINUTE,
    },
    channels: {
      smsProvider: e.SMS_PROVIDER,
      pushProvider: e.PUSH_PROVIDER,
      timeoutMs: e.CHANNEL_TIMEOUT_MS,
      smsRps: e.SMS_RPS,
      pushRps: e.PUSH_RPS,
      smsFrom: e.SMS_FROM,
      vonageMessagesBaseUrl: e.VONAGE_MESSAGES_BASE_URL.replace(/\/+$/, ''),
      vonageSignatureSecret: e.VONAGE_SIGNATURE_SECRET,
      fcmServiceAccount: e.FCM_SERVICE_ACCOUNT ?? (e.FCM_SERVICE_ACCOUNT_PATH ? readFileSync(e.FCM_SERVICE_ACCOUNT_PATH, 'utf8') : undefined),
      fcmProjectId: e.FCM_PROJECT_ID,
      fcmBaseUrl: e.FCM_BASE_URL.replace(/\/+$/, ''),
      fcmTokenUrl: e.FCM_TOKEN_URL,
      pushWebhookUrl: e.PUSH_WEBHOOK_URL,
      pushWebhookSecret: e.PUSH_WEBHOOK_SECRET,
    },
    callbackSigningSecret: e.CALLBACK_SIGNING_SECRET,
    callbackAllowedHosts: hostList(e.CALLBACK_ALLOWED_HOSTS).map(host => parseAllowedHost(host)!),
  }
}

/** "a.example.com, *.example.org" → ['a.example.com', '*.example.org']; unset or empty → []. */
function hostList (list: string | undefined): string[] {
  return (list ?? '').split(',').map(host => host.trim()).filter(host => host !== '')
}

/** "h1:6379, [::1]:7001" → [{ host: 'h1', port: 6379 }, { host: '::1', port: 7001 }] (the format is checked by the schema). */
function parseNodes (list: string | undefined): { host: string, port: number }[] | undefined {
  if (!list) return undefined
  return list.split(',').map(item => {
    const at = item.trim().lastIndexOf(':')
    return { host: item.trim().slice(0, at).replace(/^\[(.*)\]$/, '$1'), port: Number(item.trim().slice(at + 1)) }
  })
}
