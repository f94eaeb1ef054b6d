import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { lookupMany } from '../../../src/reachability/service.js'
import { toProblem } from '../../../plugins/errors.js'
import { pickProblems, ProblemSchema } from '../../schemas/problem.js'
import { MaxAgeQuery, PhoneNumber, PhoneNumberInput, ReachabilitySchema } from '../../schemas/reachability.js'

const security = [{ bearerAuth: [] }]

const reachabilityRoutes: FastifyPluginAsyncZod = async (app) => {
  app.addHook('onRequest', app.requireScope('reachability:read'))

  app.get('/:phone_number', {
    schema: {
      tags: ['reachability'],
      operationId: 'getReachability',
      summary: 'Is this phone reachable, and for DATA, SMS or both?',
      description: 'Answers from the cache while it is fresh (source "cache"), otherwise asks the upstream (source "upstream"). ' +
        'When the upstream fails, a stale cached entry is served (source "stale_cache"); with none, the answer is 503.',
      security,
      params: z.object({ phone_number: PhoneNumber }),
      querystring: z.object({ max_age: MaxAgeQuery }),
      response: { 200: ReachabilitySchema, ...pickProblems(400, 401, 403, 503) },
    },
  }, async (request) => {
    return app.reachability.lookup(request.params.phone_number, { maxAgeSeconds: request.query.max_age })
  })

  app.post('/batch', {
    schema: {
      tags: ['reachability'],
      operationId: 'getReachabilityBatch',
      summary: 'Reachability of up to 1000 numbers at once',
      description: 'One result per number, in the order given: a reachability record, or a problem for that number alone ' +
        '(an invalid number does not fail the batch). Upstream lookups run with bounded concurrency.',
      security,
      body: z.strictObject({
        phone_numbers: z.array(PhoneNumberInput).min(1).max(1000).meta({ description: '1 to 1000 phone numbers' }),
        max_age: MaxAgeQuery,
      }).meta({ examples: [{ phone_numbers: ['+990123400', '+990123411', 'not-a-number'] }] }),
      response: {
        200: z.object({
          results: z.array(z.union([ReachabilitySchema, ProblemSchema])).meta({
            description: 'In the order of phone_numbers: a Reachability record, or a Problem for that number',
          }),
        }),
        ...pickProblems(400, 401, 403, 413),
      },
    },
  }, async (request) => {
    const items = await lookupMany(app.reachability, request.body.phone_numbers, app.config.reachability.batchConcurrency,
      { maxAgeSeconds: request.body.max_age })
    return { results: items.map(item => item.ok ? item.result : toProblem(item.error, request).problem) }
  })
}

export default reachabilityRoutes
