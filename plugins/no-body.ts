import type { onRequestHookHandler, preValidationHookHandler, RouteOptions } from 'fastify'
import fp from 'fastify-plugin'
import { z } from 'zod'
import { ValidationError } from '../src/domain/errors.js'

const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])

/** What a route whose method could carry a body makes of one: none taken, or one it may go without. */
export function bodyKind (route: Pick<RouteOptions, 'method' | 'schema'>): 'none' | 'optional' | 'required' | undefined {
  if (![route.method].flat().some(m => BODY_METHODS.has(m))) return undefined
  const body = route.schema?.body
  if (body === undefined) return 'none'
  return body instanceof z.ZodType && body.safeParse(undefined).success ? 'optional' : 'required'
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route takes no body, or may go without: an empty one is none, whatever the headers said (see app.ts's JSON parser). */
    emptyBodyIsNone?: boolean
  }
}

const NO_BODY_DETAIL = 'this operation takes no body: send none (an empty body, or {}, is none, with Content-Type: application/json too)'

/**
 * The routes that take no body (a dead letter's DELETE, a campaign's pause, resume and cancel), all alike: a body with
 * content is a 400 before the handler runs, so nothing changes, except `{}`, which asks for nothing (clients that
 * always send a JSON object send it); an empty one is none, also with
 * `Content-Type: application/json` (`curl -X POST -H 'Content-Type: application/json'` with no data), which the JSON
 * parser would refuse as an empty body. A route whose body is optional (a dead letter's retry) takes an empty one as
 * none too. A Content-Type the route does not take is still a 415, and a body over its limit a 413.
 */
export default fp(async (app) => {
  app.addHook('onRoute', route => {
    const kind = bodyKind(route)
    if (kind !== 'none' && kind !== 'optional') return
    route.config = { ...route.config, emptyBodyIsNone: true }
    route.onRequest = [...[route.onRequest ?? []].flat(), emptyIsNone]
    if (kind === 'none') route.preValidation = [...[route.preValidation ?? []].flat(), refuseBody]
  })
}, { name: 'no-body', fastify: '5.x' })

/**
 * A request whose headers say it has no body (no Content-Length, or 0, and no Transfer-Encoding) has its Content-Type
 * set aside, so that Fastify reads no body rather than handing "" to the JSON parser. A body that turns out empty only
 * once read (chunked) is none to the JSON parser itself, by the route's `emptyBodyIsNone`.
 */
const emptyIsNone: onRequestHookHandler = (request, _reply, done) => {
  const { 'content-type': type, 'content-length': length, 'transfer-encoding': encoding } = request.headers
  if (type !== undefined && encoding === undefined && (length === undefined || length === '0')) request.headers = { 'content-type': undefined }
  done()
}

const refuseBody: preValidationHookHandler = (request, _reply, done) => {
  const { body } = request
  const none = body === undefined || (typeof body === 'object' && body !== null && !Array.isArray(body) && Object.keys(body).length === 0)
  done(none ? undefined : new ValidationError(`body: ${NO_BODY_DETAIL}`, [{ path: 'body', message: NO_BODY_DETAIL }]))
}
