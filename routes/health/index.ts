import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { pickProblems } from '../schemas/problem.js'

const healthRoutes: FastifyPluginAsyncZod = async (app) => {
  app.get('/healthz', {
    schema: {
      tags: ['ops'],
      operationId: 'healthz',
      summary: 'Liveness: the process answers',
      description: 'Cheap: touches nothing outside the process. No auth.',
      response: { 200: z.object({ status: z.literal('ok') }) },
    },
  }, async () => ({ status: 'ok' as const }))

  app.get('/readyz', {
    schema: {
      tags: ['ops'],
      operationId: 'readyz',
      summary: 'Readiness: the store answers',
      description: 'Answers 503 while the store (Redis) does not answer. No auth.',
      response: {
        200: z.object({ status: z.literal('ready'), store: z.enum(['redis', 'memory']) }),
        ...pickProblems(503),
      },
    },
  }, async () => {
    await app.store.ping()
    return { status: 'ready' as const, store: app.store.kind }
  })
}

export default healthRoutes
