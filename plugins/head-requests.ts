import type { FastifyRequest, onRequestHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import { MethodNotAllowedError } from '../src/domain/errors.js'
import { isDocsRoute } from './swagger.js'

declare module 'fastify' {
  interface FastifyInstance {
    /**
     * For a request no route took (request.is404): the 405 when its path takes other methods, else undefined (a 404).
     * Called from the app's one onRequest hook, so that requests that found their route pay no hook of their own.
     */
    methodNotAllowed: (request: FastifyRequest) => MethodNotAllowedError | undefined
  }
  interface FastifyContextConfig {
    /** This GET answers HEAD too (its status and headers, no body): only a GET that is cheap, writes nothing and asks no upstream. */
    head?: boolean
  }
}

/**
 * Fastify gives every GET a HEAD twin that runs the GET's handler and drops the body. On the API that would look a
 * number up (maybe asking the carrier: money and upstream budget) or read the store, for nothing. So HEAD is answered
 * only where the GET opts in (`config.head`: health, readiness, metrics) and on the docs, and documented in the spec
 * (the docs' HEADs are hidden, as their GETs are). Everywhere else it is a 405 problem with the path's methods in
 * Allow, from a hook of the HEAD route itself: after the route's auth, before rate limiting, parsing and the handler.
 *
 * Any other method a path does not take (PUT on /v1/notifications) matches no route: Fastify would answer 404. It is a
 * 405 problem too, with the same Allow (HEAD in it where HEAD is answered), from the app's onRequest hook (see
 * methodNotAllowed), before its body is read. A path no route takes stays a 404.
 */
export default fp(async (app) => {
  /** The methods each path takes, as the routes are declared; read when a request is refused, by then all are. */
  const methodsOf = new Map<string, Set<string>>()
  /** The paths whose HEAD is answered. */
  const answersHead = new Set<string>()
  app.addHook('onRoute', route => {
    let methods = methodsOf.get(route.url)
    if (!methods) methodsOf.set(route.url, methods = new Set())
    if (route.method !== 'HEAD') {
      for (const method of [route.method].flat()) methods.add(method)
      return
    }
    if (route.config?.head || isDocsRoute(route.url)) {
      route.config = { ...route.config, swagger: { ...route.config?.swagger, exposeHeadRoute: true } }
      answersHead.add(route.url)
      return
    }
    route.onRequest = [...[route.onRequest ?? []].flat(), refuseHead(methods)]
  })

  const tests = new Map<string, RegExp>()
  /** What Allow names for a request's path: the methods of every route pattern it matches, none when it matches none. */
  const allowedAt = (url: string): string[] => {
    const path = url.split('?', 1)[0]!
    const allowed = new Set<string>()
    for (const [pattern, methods] of methodsOf) {
      let test = tests.get(pattern)
      if (!test) tests.set(pattern, test = pathTest(pattern))
      if (!test.test(path)) continue
      for (const method of methods) allowed.add(method)
      if (answersHead.has(pattern)) allowed.add('HEAD')
    }
    return [...allowed].sort()
  }
  app.decorate('methodNotAllowed', (request: FastifyRequest) => {
    const allowed = allowedAt(request.url)
    // A pattern of this very method matches, yet the router found no route (an odd encoding): a 404, not a 405.
    if (allowed.length === 0 || allowed.includes(request.method)) return undefined
    return new MethodNotAllowedError(`${request.method} is not answered here: this path takes ${allowed.join(', ')}`, allowed)
  })
}, { name: 'head-requests', fastify: '5.x' })

/** A route pattern as a test of a request path: `:name` is one segment, `*` the rest; a trailing slash is ignored, as the router ignores it. */
function pathTest (pattern: string): RegExp {
  const source = pattern.replace(/\/+$/, '').split('/')
    .map(segment => segment === '*' ? '.*' : segment.startsWith(':') ? '[^/]+' : segment.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('/')
  return new RegExp(`^${source}/?$`)
}

function refuseHead (methods: ReadonlySet<string>): onRequestHookHandler {
  return (_request, _reply, done) => {
    done(new MethodNotAllowedError('HEAD is not answered here: the GET of this path does real work (it reads the store, or looks a number up ' +
      'and may ask the reachability upstream) that HEAD would throw away. Send GET.', [...methods].sort()))
  }
}
