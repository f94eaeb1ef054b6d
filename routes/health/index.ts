import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { WorkersStuckError } from '../../src/domain/errors.js'
import { jsonResponse } from '../schemas/docs.js'
import { problemResponse } from '../schemas/problem.js'

const healthRoutes: FastifyPluginAsyncZod = async (app) => {
  // Probes may use HEAD: both answer it (config.head), as cheap as GET and writing nothing.
  app.get('/healthz', {
    config: { head: true },
    schema: {
      tags: ['ops'],
      operationId: 'healthz',
      summary: 'Liveness: the process answers',
      description: 'Cheap: touches nothing outside the process. No auth.',
      response: {
        200: jsonResponse('The process is alive', z.object({
          status: z.literal('ok').meta({ description: 'Always "ok": an answer at all means alive', examples: ['ok'] }),
        })),
      },
    },
  }, async () => ({ status: 'ok' as const }))

  app.get('/readyz', {
    config: { head: true },
    schema: {
      tags: ['ops'],
      operationId: 'readyz',
      summary: 'Readiness: the store answers and the workers turn',
      description: 'Answers 503 while the store (Redis) does not answer, or while a background worker running in this process ' +
        '(WORKERS=on) has not begun a turn of its loop for longer than 3 poll intervals, and never less than 30 s. No auth.',
      response: {
        200: jsonResponse('The store answers: ready for traffic', z.object({
          status: z.literal('ready').meta({ description: 'Always "ready" (a store that does not answer gives 503 instead)', examples: ['ready'] }),
          store: z.enum(['redis', 'memory']).meta({ description: 'The store in use: redis (REDIS_URL set) or memory (the embedded default)', examples: ['redis'] }),
        })),
        503: problemResponse('The store does not answer (store-unavailable), or a worker of this process is stuck (workers-stuck): not ready for traffic'),
      },
    },
  }, async () => {
    await app.store.ping()
    const stuck = app.stuckWorkers()
    if (stuck.length > 0) {
      throw new WorkersStuckError(stuck.map(w => `the ${w.name} has not turned for ${Math.round(w.silentMs / 1000)} s (limit ${w.limitMs / 1000} s)`).join('; '))
    }
    return { status: 'ready' as const, store: app.store.kind }
  })
}

export default healthRoutes
