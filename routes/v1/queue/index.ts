import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { QueueOps } from '../../../src/queue/ops.js'
import { pickProblems } from '../../schemas/problem.js'
import { ReachabilitySchema } from '../../schemas/reachability.js'

const security = [{ bearerAuth: [] }]
const IdParam = z.object({ id: z.string().max(100).meta({ examples: ['ntf_07_3f2a9c0d4b8e4f6a9b1c2d3e4f5a6b7c'] }) })

const DeadLetterSchema = z.object({
  id: z.string(),
  to: z.string().meta({ examples: ['+990123433'] }),
  status: z.string().meta({ examples: ['expired'] }),
  channel: z.string().meta({ examples: ['fallback_queue'] }),
  reason: z.string().meta({ description: 'Why it ended', examples: ['expired: the device did not come back within the ttl of 86400 s'] }),
  reachability: ReachabilitySchema.nullable().meta({ description: 'The last reachability seen' }),
  dead_at: z.string(),
  created_at: z.string(),
  expires_at: z.string(),
}).meta({ id: 'DeadLetter' })

const queueRoutes: FastifyPluginAsyncZod = async (app) => {
  const ops = new QueueOps(app.store, Date.now, n => app.reachabilityEvents.watch(n.request.to, n.id, Date.parse(n.expires_at)))
  app.addHook('onRequest', app.requireScope('ops'))

  app.get('/', {
    schema: {
      tags: ['queue'],
      operationId: 'getQueueState',
      summary: 'The fallback queue and outboxes at a glance',
      description: 'Fallback-queue entries by state (waiting for a later check, due, leased by a scheduler, dead), the oldest waiting age, ' +
        'the next check time, re-checks and wake-ups in the last hour, and the depth of each outbox lane and of the retry set.',
      security,
      response: {
        200: z.object({
          waiting: z.number().int().meta({ examples: [12] }),
          due: z.number().int().meta({ examples: [0] }),
          leased: z.number().int().meta({ examples: [1] }),
          dead: z.number().int().meta({ examples: [3] }),
          oldest_waiting_seconds: z.number().int().nullable().meta({ examples: [5400] }),
          next_check_at: z.string().nullable().meta({ examples: ['2026-11-25T10:44:00.000Z'] }),
          checks_last_hour: z.number().int().meta({ examples: [40] }),
          wakeups_last_hour: z.number().int().meta({ description: 'Notifications handed to an outbox because their device came back', examples: [7] }),
          outbox: z.object({ push: z.number().int(), sms: z.number().int(), callback: z.number().int(), retry: z.number().int() })
            .meta({ description: 'Jobs waiting (or in hand, not yet acknowledged) per lane, and provider retries waiting for their time' }),
        }).meta({ id: 'QueueState' }),
        ...pickProblems(401, 403, 503),
      },
    },
  }, async () => ops.state())

  app.get('/dead', {
    schema: {
      tags: ['queue'],
      operationId: 'listDeadLetters',
      summary: 'Dead letters: expired and permanently failed notifications',
      description: 'With the reason each ended and the last reachability seen; paged with the opaque next_cursor.',
      security,
      querystring: z.object({
        cursor: z.string().max(20).optional().meta({ description: 'next_cursor of the previous page' }),
        limit: z.coerce.number().int().min(1).max(500).default(50).meta({ examples: [50] }),
      }),
      response: {
        200: z.object({ items: z.array(DeadLetterSchema), next_cursor: z.string().nullable() }),
        ...pickProblems(400, 401, 403, 503),
      },
    },
  }, async (request) => ops.listDead(request.query.cursor, request.query.limit))

  app.post('/dead/:id/retry', {
    schema: {
      tags: ['queue'],
      operationId: 'retryDeadLetter',
      summary: 'Put a dead letter back in the fallback queue, with a new expiry',
      description: 'The notification is re-checked at once and delivered when its device is reachable, within the new ttl.',
      security,
      params: IdParam,
      body: z.strictObject({
        ttl_seconds: z.number().int().min(1).max(7 * 86400).optional().meta({ description: 'The new delivery window; the original ttl by default', examples: [3600] }),
      }).nullish().meta({ description: 'Optional' }),
      response: {
        202: z.object({ id: z.string(), status: z.string(), channel: z.string(), expires_at: z.string() }),
        ...pickProblems(400, 401, 403, 404, 422, 503),
      },
    },
  }, async (request, reply) => {
    const n = await ops.retryDead(request.params.id, request.body?.ttl_seconds)
    return reply.code(202).send({ id: n.id, status: n.status, channel: n.channel, expires_at: n.expires_at })
  })

  app.delete('/dead/:id', {
    schema: {
      tags: ['queue'],
      operationId: 'deleteDeadLetter',
      summary: 'Remove a dead letter',
      description: 'The notification record itself stays readable until its retention ends.',
      security,
      params: IdParam,
      response: { 204: z.null().meta({ description: 'Removed' }), ...pickProblems(401, 403, 404, 503) },
    },
  }, async (request, reply) => {
    await ops.deleteDead(request.params.id)
    return reply.code(204).send(null)
  })
}

export default queueRoutes
