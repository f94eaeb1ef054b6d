import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { QueueOps } from '../../../src/queue/ops.js'
import { jsonResponse } from '../../schemas/docs.js'
import { pickProblems, problemResponse, storeUnavailable } from '../../schemas/problem.js'
import { queryInt, ReachabilitySchema } from '../../schemas/reachability.js'

const security = [{ bearerAuth: [] }]
const IdParam = z.object({
  id: z.string().max(100).meta({ description: 'The id of the dead letter\'s notification', examples: ['ntf_07_3f2a9c0d4b8e4f6a9b1c2d3e4f5a6b7c'] }),
})

const DeadLetterSchema = z.object({
  id: z.string().meta({ description: 'The notification id', examples: ['ntf_07_3f2a9c0d4b8e4f6a9b1c2d3e4f5a6b7c'] }),
  to: z.string().meta({ description: 'The phone number, in E.164 form (empty when the notification is past its retention)', examples: ['+990123433'] }),
  status: z.string().meta({ description: 'The notification\'s final status: expired, failed or dropped (failed when its record is past its retention)', examples: ['expired'] }),
  channel: z.string().meta({ description: 'Where the notification was when it ended (push, sms, fallback_queue or none)', examples: ['fallback_queue'] }),
  reason: z.string().meta({ description: 'Why it ended', examples: ['expired: the device did not come back within the ttl of 86400 s'] }),
  reachability: ReachabilitySchema.nullable().meta({ description: 'The last reachability seen' }),
  dead_at: z.string().meta({ description: 'When it became a dead letter (ISO 8601, UTC)', examples: ['2026-11-26T10:42:05.000Z'] }),
  created_at: z.string().meta({ description: 'When the notification was accepted (empty when it is past its retention)', examples: ['2026-11-25T10:42:00.000Z'] }),
  expires_at: z.string().meta({ description: 'When its delivery window ended (empty when it is past its retention)', examples: ['2026-11-26T10:42:00.000Z'] }),
}).meta({ id: 'DeadLetter', description: 'A notification that ended without being delivered: expired, dropped or permanently failed' })

const queueRoutes: FastifyPluginAsyncZod = async (app) => {
  const ops = new QueueOps(app.store, Date.now, n => app.reachabilityEvents.watch(n.request.to, n.id, Date.parse(n.expires_at)))
  app.addHook('onRequest', app.requireScope('ops'))

  app.get('/', {
    schema: {
      tags: ['queue'],
      operationId: 'getQueueState',
      summary: 'The fallback queue and outboxes at a glance',
      description: 'Fallback-queue entries by state (waiting for a later check, due, leased by a scheduler, dead), the oldest waiting age, ' +
        'the next check time, re-checks and wake-ups in the last hour, the depth of each outbox lane and of the retry set, and the campaign counts pending.',
      security,
      response: {
        200: jsonResponse('The state of the fallback queue and the outboxes, over all shards', z.object({
          waiting: z.number().int().meta({ description: 'Fallback-queue entries waiting for a later re-check', examples: [12] }),
          due: z.number().int().meta({ description: 'Fallback-queue entries due for a re-check now', examples: [0] }),
          leased: z.number().int().meta({ description: 'Fallback-queue entries a scheduler is re-checking now', examples: [1] }),
          dead: z.number().int().meta({ description: 'Dead letters: expired and permanently failed notifications', examples: [3] }),
          oldest_waiting_seconds: z.number().int().nullable().meta({ description: 'How long the oldest entry has been in the fallback queue, in seconds; null when it is empty', examples: [5400] }),
          next_check_at: z.string().nullable().meta({ description: 'When the next re-check is due; null when the fallback queue is empty', examples: ['2026-11-25T10:44:00.000Z'] }),
          checks_last_hour: z.number().int().meta({ description: 'Re-checks made in the last hour', examples: [40] }),
          wakeups_last_hour: z.number().int().meta({ description: 'Notifications handed to an outbox because their device came back', examples: [7] }),
          outbox: z.object({
            push: z.number().int().meta({ description: 'Push jobs', examples: [2] }),
            sms: z.number().int().meta({ description: 'SMS jobs', examples: [5] }),
            callback: z.number().int().meta({ description: 'Status callbacks to post', examples: [1] }),
            push_bulk: z.number().int().meta({ description: 'Push jobs of campaigns (served after the transactional lanes)', examples: [300] }),
            sms_bulk: z.number().int().meta({ description: 'SMS jobs of campaigns (served after the transactional lanes)', examples: [700] }),
            retry: z.number().int().meta({ description: 'Provider retries waiting for their time', examples: [0] }),
          }).meta({ description: 'Jobs waiting (or in hand, not yet acknowledged) per lane, and provider retries waiting for their time' }),
          campaign_counts_pending: z.number().int().meta({ description: 'Campaign notifications that reached a final status and are not yet counted in their campaign\'s progress (counted at once as a rule; a count its process could not make is made by the count sweeper after 30 s)', examples: [0] }),
        }).meta({ id: 'QueueState', description: 'The fallback queue and outboxes at a glance' })),
        ...pickProblems(401, 403),
        503: storeUnavailable,
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
        cursor: z.string().max(400).optional().meta({ description: 'next_cursor of the previous page; none for the first page (opaque; it names the last item given, so letters retried or added between pages shift nothing)', examples: ['WyJ2MiIsMTc5NTY3MzYwMjMwMywibnRmXzAwXzNmMmE5YzBkNGI4ZTRmNmE5YjFjMmQzZTRmNWE2YjdjIl0'] }),
        limit: queryInt({ min: 1, max: 500, fallback: 50, description: 'Dead letters per page, 1 to 500 (default 50)' }),
      }),
      response: {
        200: jsonResponse('One page of dead letters, oldest first (by when each ended, over every shard)', z.object({
          items: z.array(DeadLetterSchema).meta({ description: 'The dead letters of this page' }),
          next_cursor: z.string().nullable().meta({ description: 'Pass as cursor for the next page; null on the last page', examples: ['WyJ2MiIsMTc5NTY3MzYwMjMwMywibnRmXzAwXzNmMmE5YzBkNGI4ZTRmNmE5YjFjMmQzZTRmNWE2YjdjIl0'] }),
        })),
        ...pickProblems(401, 403),
        400: problemResponse('cursor is not a next_cursor this service gave out, or limit is not a whole number from 1 to 500'),
        503: storeUnavailable,
      },
    },
  }, async (request) => ops.listDead(request.query.cursor, request.query.limit))

  app.post('/dead/:id/retry', {
    // {"ttl_seconds": n} at most.
    bodyLimit: 1024,
    schema: {
      tags: ['queue'],
      operationId: 'retryDeadLetter',
      summary: 'Put a dead letter back in the fallback queue, with a new expiry',
      description: 'The notification is re-checked at once and delivered when its device is reachable, within the new ttl.',
      security,
      params: IdParam,
      body: z.strictObject({
        ttl_seconds: z.number().int().min(1).max(7 * 86400).optional().meta({
          description: 'The new delivery window in seconds, counted from now (at most 7 days); the original ttl_seconds by default',
          examples: [3600],
        }),
      }).nullish().meta({
        description: 'Optional: without a body (or with {}) the new window is the notification\'s original ttl_seconds, counted from now',
        examples: [{ ttl_seconds: 3600 }],
      }),
      response: {
        202: jsonResponse('Back in the fallback queue, due for a re-check now', z.object({
          id: z.string().meta({ description: 'The notification id', examples: ['ntf_07_3f2a9c0d4b8e4f6a9b1c2d3e4f5a6b7c'] }),
          status: z.string().meta({ description: 'The notification\'s status as read after the retry: queued (a scheduler may already have handed it on, or ended it)', examples: ['queued'] }),
          channel: z.string().meta({ description: 'Where it is as read after the retry: fallback_queue (or the channel a scheduler has handed it to since)', examples: ['fallback_queue'] }),
          expires_at: z.string().meta({ description: 'The new end of its delivery window (now plus the ttl)', examples: ['2026-11-26T11:00:00.000Z'] }),
        })),
        ...pickProblems(401, 403, 413),
        400: problemResponse('ttl_seconds is not a whole number from 1 to 604800, the body has another field, or the JSON is malformed'),
        404: problemResponse('No dead letter with this id'),
        422: problemResponse('The notification is no longer failed or expired: only those can be retried'),
        503: storeUnavailable,
      },
    },
  }, async (request, reply) => {
    const n = await ops.retryDead(request.params.id, request.body?.ttl_seconds)
    return reply.code(202).send({ id: n.id, status: n.status, channel: n.channel, expires_at: n.expires_at })
  })

  app.delete('/dead/:id', {
    // Takes no body; one sent anyway is read up to this much.
    bodyLimit: 1024,
    schema: {
      tags: ['queue'],
      operationId: 'deleteDeadLetter',
      summary: 'Remove a dead letter',
      description: 'The notification record itself stays readable until its retention ends.',
      security,
      params: IdParam,
      response: {
        204: z.null().meta({ description: 'Removed' }),
        ...pickProblems(401, 403),
        404: problemResponse('No dead letter with this id'),
        503: storeUnavailable,
      },
    },
  }, async (request, reply) => {
    await ops.deleteDead(request.params.id)
    return reply.code(204).send(null)
  })
}

export default queueRoutes
