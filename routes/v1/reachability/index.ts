import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { lookupMany } from '../../../src/reachability/service.js'
import { toProblem } from '../../../plugins/errors.js'
import { jsonResponse } from '../../schemas/docs.js'
import { pickProblems, problemResponse, ProblemSchema } from '../../schemas/problem.js'
import { MaxAge, MaxAgeQuery, PHONE_NUMBER_META, PhoneNumber, ReachabilitySchema } from '../../schemas/reachability.js'

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
      response: {
        200: jsonResponse('The reachability record of the number', ReachabilitySchema),
        ...pickProblems(401, 403),
        400: problemResponse('The phone number is not valid (the reason is in detail), or max_age is not a whole number from 0 to 86400'),
        503: problemResponse('The upstream gave no usable answer and no stale cached entry was at hand, or the store is unavailable; retry after Retry-After seconds'),
      },
    },
  }, async (request) => {
    return app.reachability.lookup(request.params.phone_number, { maxAgeSeconds: request.query.max_age })
  })

  app.post('/batch', {
    // 1000 numbers of at most 32 characters, pretty-printed, are about 41 KB.
    bodyLimit: 64 * 1024,
    schema: {
      tags: ['reachability'],
      operationId: 'getReachabilityBatch',
      summary: 'Reachability of up to 1000 numbers at once',
      description: 'One result per number, in the order given: a reachability record, or a problem for that number alone: ' +
        'an invalid number (400 invalid-phone-number), an upstream that gave no usable answer with no stale entry at hand ' +
        '(503 upstream-unavailable), or a store that did not answer (503 store-unavailable). Neither fails the batch: a 503 in ' +
        'results is for that number, to ask again (alone or in a later batch). Upstream lookups run with bounded concurrency.',
      security,
      body: z.strictObject({
        // Any string: one that is empty or too long to be a number is a problem in its place, as any invalid number.
        phone_numbers: z.array(z.string().meta(PHONE_NUMBER_META)).min(1).max(1000).meta({
          description: '1 to 1000 phone numbers, each in E.164 form (the leading "+" is optional); an invalid one gets a problem in its place',
          examples: [['+990123400', '+990123411']],
        }),
        max_age: MaxAge,
      }).meta({ examples: [{ phone_numbers: ['+990123400', '+990123411', 'not-a-number'], max_age: 300 }] }),
      response: {
        200: jsonResponse('One result per number, in the order given', z.object({
          results: z.array(z.union([ReachabilitySchema, ProblemSchema])).meta({
            description: 'In the order of phone_numbers: a Reachability record, or a Problem for that number (its status: 400 for an invalid number, 503 for one to ask again)',
          }),
        })),
        ...pickProblems(401, 403, 413),
        400: problemResponse('phone_numbers is missing, empty, longer than 1000 or holds a non-string, max_age is wrong, or the JSON is malformed ' +
          '(a string that is not a valid number, even an empty one, is a problem in its place in results, not a 400)'),
      },
    },
  }, async (request) => {
    const items = await lookupMany(app.reachability, request.body.phone_numbers, app.config.reachability.batchConcurrency,
      { maxAgeSeconds: request.body.max_age })
    return { results: items.map(item => item.ok ? item.result : toProblem(item.error, request).problem) }
  })
}

export default reachabilityRoutes
