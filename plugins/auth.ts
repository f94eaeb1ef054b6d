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
  app.decorate('requireScope', (scope: Scope): onRequestHookHandler => async (request) => {
    const principal = await auth.authenticate(request.headers.authorization)
    if (!principal.scopes.has(scope)) throw new ForbiddenError(scope)
    request.principal = principal
  })
}, { name: 'auth', fastify: '5.x', dependencies: ['config'] })
