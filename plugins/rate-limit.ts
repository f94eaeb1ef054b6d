import rateLimit, { type FastifyRateLimitStoreCtor } from '@fastify/rate-limit'
import type { FastifyRequest } from 'fastify'
import fp from 'fastify-plugin'
import { problems } from '../routes/schemas/problem.js'
import { MemoryWindowCounter, type RateLimitGroup, rateLimitGroupOf, RedisWindowCounter } from '../src/http/rate-limit.js'
import { RedisStore } from '../src/store/redis/redis-store.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    rateLimitGroup?: RateLimitGroup
  }
}

const WINDOW_MS = 60_000

/**
 * Requests per minute per caller, per route group (RATE_LIMIT_*_PER_MINUTE), counted in Redis when the
 * store is Redis so every process shares the count. The limiter runs as a preParsing hook: after the
 * route's auth hook (onRequest), so the caller is the subject of a verified token, never a claim an
 * attacker can write into a forged one (which would let anyone spend another caller's budget, or dodge
 * their own with a new subject per request); and before the body is read and parsed, so a caller over
 * the limit costs no parsing. Requests refused by auth are never counted; routes without auth count
 * per client IP.
 */
export default fp(async (app) => {
  const limits = app.config.rateLimit
  const counter = app.store instanceof RedisStore
    ? new RedisWindowCounter(app.store.redis, app.config.redis.keyPrefix)
    : new MemoryWindowCounter()

  // Runs before the plugin's own onRoute hook (registered below), which reads config.rateLimit.
  app.addHook('onRoute', route => {
    const group = rateLimitGroupOf(route.url)
    if (!group || route.config?.rateLimit !== undefined) return
    if (route.schema?.response && !route.schema.hide) route.schema.response = { ...route.schema.response as object, 429: problems[429] }
    if (limits[group] === 0) return
    route.config = { ...route.config, rateLimitGroup: group, rateLimit: { max: limits[group], timeWindow: WINDOW_MS } }
  })

  const callerOf = (request: FastifyRequest) => request.principal ? `sub:${request.principal.subject}` : `ip:${request.ip}`
  await app.register(rateLimit, {
    global: false,
    hook: 'preParsing',
    enableDraftSpec: true,
    // A limiter that cannot count lets the request through: the route itself answers 503 if it needs the store.
    skipOnError: true,
    store: function SharedCounter () { return counter } as unknown as FastifyRateLimitStoreCtor,
    keyGenerator: request => `${request.routeOptions.config.rateLimitGroup}:${callerOf(request)}`,
    errorResponseBuilder: (request, context) => Object.assign(
      new Error(`at most ${context.max} requests a minute per caller on the ${request.routeOptions.config.rateLimitGroup} routes; ` +
        `retry after ${Math.ceil(context.ttl / 1000)} s`),
      { statusCode: 429 }),
  })
}, { name: 'rate-limit', fastify: '5.x', dependencies: ['config', 'store', 'auth'] })
