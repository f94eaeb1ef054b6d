import helmet, { type FastifyHelmetOptions } from '@fastify/helmet'
import Fastify from 'fastify'
import fp from 'fastify-plugin'
import { isDocsRoute } from './swagger.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** A Swagger UI route: its own CSP, and cacheable. */
    docs?: boolean
  }
  interface FastifyInstance {
    /** A JSON API answer's security headers, for answers sent before any onRequest hook runs (frameworkErrors, parser errors). */
    apiSecurityHeaders: Readonly<Record<string, string>>
  }
}

// A JSON API loads nothing and is never framed: its answers get a CSP that allows nothing, and are not
// sniffed, referred or cached. Swagger UI (/docs) loads its own scripts, styles and images, and gets a
// CSP that allows those from this origin only.

const API_CSP = {
  'default-src': ["'none'"],
  'base-uri': ["'none'"],
  'form-action': ["'none'"],
  'frame-ancestors': ["'none'"],
}

const DOCS_CSP = {
  'default-src': ["'self'"],
  'base-uri': ["'self'"],
  'connect-src': ["'self'"],
  'font-src': ["'self'", 'data:'],
  'form-action': ["'self'"],
  'frame-ancestors': ["'none'"],
  'img-src': ["'self'", 'data:'],
  'object-src': ["'none'"],
  'script-src': ["'self'"],
  'script-src-attr': ["'none'"],
  // Swagger UI's syntax highlighting sets inline styles; scripts stay 'self' only.
  'style-src': ["'self'", "'unsafe-inline'"],
}

/** Response headers that are not helmet's. */
const NOT_SECURITY = new Set(['content-type', 'content-length', 'date', 'connection', 'keep-alive'])

/**
 * The headers @fastify/helmet sends with these options, worked out once at start: the plugin builds
 * them anew on every request, which measured about 0.1 ms a request here; a static set costs nothing.
 */
async function helmetHeaders (options: FastifyHelmetOptions): Promise<Record<string, string>> {
  const probe = Fastify({ logger: false })
  await probe.register(helmet, options)
  probe.get('/', async () => '')
  try {
    const { headers } = await probe.inject('/')
    return Object.fromEntries(Object.entries(headers).filter(([name]) => !NOT_SECURITY.has(name)).map(([name, value]) => [name, String(value)]))
  } finally {
    await probe.close()
  }
}

export default fp(async (app) => {
  const hsts = app.config.hstsMaxAgeSeconds
  const common: FastifyHelmetOptions = {
    frameguard: { action: 'deny' },
    referrerPolicy: { policy: 'no-referrer' },
    // Only over HTTPS (HSTS_MAX_AGE_SECONDS): a browser ignores it on plain HTTP anyway.
    strictTransportSecurity: hsts > 0 ? { maxAge: hsts, includeSubDomains: true } : false,
  }
  const docsCsp = hsts > 0 ? { ...DOCS_CSP, 'upgrade-insecure-requests': [] } : DOCS_CSP
  const api = {
    ...await helmetHeaders({ ...common, contentSecurityPolicy: { useDefaults: false, directives: API_CSP } }),
    // Answers carry people's reachability and notifications: no shared or browser cache keeps them.
    'cache-control': 'no-store',
  }
  const docs = await helmetHeaders({ ...common, contentSecurityPolicy: { useDefaults: false, directives: docsCsp } })
  app.decorate('apiSecurityHeaders', api)
  app.addHook('onRoute', route => {
    if (isDocsRoute(route.url)) route.config = { ...route.config, docs: true }
  })
  // A callback hook, not an async one: this runs on every request.
  app.addHook('onRequest', (request, reply, done) => {
    reply.headers(request.routeOptions.config.docs ? docs : api)
    done()
  })
}, { name: 'security-headers', fastify: '5.x', dependencies: ['config'] })
