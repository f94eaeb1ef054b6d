import type { onRequestHookHandler } from 'fastify'
import fp from 'fastify-plugin'
import { InboundAuth, type Principal } from '../src/auth/inbound.js'
import type { Scope } from '../src/auth/scopes.js'
import { ForbiddenError } from '../src/domain/errors.js'

declare module 'fastify' {
  interface FastifyInstance {
    auth: InboundAuth
    /** An onRequest hook: a valid bearer token carrying the scope, else 401/403. */
    requireScope: (scope: Scope) => onRequestHookHandler
  }
  interface FastifyRequest {
    principal: Principal | null
  }
}

export default fp(async (app) => {
  const auth = await InboundAuth.create(app.config.auth)
  app.decorate('auth', auth)
  app.decorateRequest('principal', null)
  // A callback hook: a token seen before is checked without a promise; a new one is verified asynchronously.
  app.decorate('requireScope', (scope: Scope): onRequestHookHandler => (request, _reply, done) => {
    const admit = (principal: Principal) => {
      if (!principal.scopes.has(scope)) return done(new ForbiddenError(scope))
      request.principal = principal
      done()
    }
    const known = auth.remembered(request.headers.authorization)
    if (known) return admit(known)
    auth.authenticate(request.headers.authorization).then(admit, done)
  })
}, { name: 'auth', fastify: '5.x', dependencies: ['config'] })
