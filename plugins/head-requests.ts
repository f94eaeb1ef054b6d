import type { onRequestHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import { MethodNotAllowedError } from '../src/domain/errors.js'
import { isDocsRoute } from './swagger.js'

declare module 'fastify' {
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
 */
export default fp(async (app) => {
  /** The methods each path takes, as the routes are declared; read when a HEAD is refused, by then all are. */
  const methodsOf = new Map<string, Set<string>>()
  app.addHook('onRoute', route => {
    let methods = methodsOf.get(route.url)
    if (!methods) methodsOf.set(route.url, methods = new Set())
    if (route.method !== 'HEAD') {
      for (const method of [route.method].flat()) methods.add(method)
      return
    }
    if (route.config?.head || isDocsRoute(route.url)) {
      route.config = { ...route.config, swagger: { ...route.config?.swagger, exposeHeadRoute: true } }
      return
    }
    route.onRequest = [...[route.onRequest ?? []].flat(), refuseHead(methods)]
  })
}, { name: 'head-requests', fastify: '5.x' })

function refuseHead (methods: ReadonlySet<string>): onRequestHookHandler {
  return (_request, _reply, done) => {
    done(new MethodNotAllowedError('HEAD is not answered here: the GET of this path does real work (it reads the store, or looks a number up ' +
      'and may ask the reachability upstream) that HEAD would throw away. Send GET.', [...methods].sort()))
  }
}
