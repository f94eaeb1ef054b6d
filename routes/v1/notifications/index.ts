import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { AcceptAnswerSchema, IdempotencyHeaders, NotificationBody, NotificationSchema } from '../../schemas/notification.js'
import { jsonResponse } from '../../schemas/docs.js'
import { pickProblems, problemResponse, storeUnavailable } from '../../schemas/problem.js'

const security = [{ bearerAuth: [] }]

const notificationRoutes: FastifyPluginAsyncZod = async (app) => {
  app.post('/', {
    onRequest: app.requireScope('notifications:write'),
    bodyLimit: 64 * 1024,
    schema: {
      tags: ['notifications'],
      operationId: 'createNotification',
      summary: 'Notify a customer over the channel that will reach the phone',
      description: 'Looks up the number\'s reachability, decides the channel (push when connected for DATA and a token is given, ' +
        'SMS when connected for SMS, the fallback queue when not reachable, the on_unknown policy when the upstream gives no answer) ' +
        'and stores the notification with its delivery job in one atomic step. 202 means it is durably stored and will reach a final status.',
      security,
      headers: IdempotencyHeaders,
      body: NotificationBody,
      response: {
        202: jsonResponse('Accepted and durably stored: the notification id and where it was routed (also for an Idempotency-Key replay)', AcceptAnswerSchema),
        ...pickProblems(400, 401, 403, 413),
        503: problemResponse('The store is unavailable (store-unavailable: nothing was stored); or it stopped answering while the notification was ' +
          'being stored and did not come back in time to say whether it was (outcome-unknown, with notification_id: read that notification once ' +
          'the store answers, a 404 meaning it was not stored, or send the request again with the same Idempotency-Key). Retry after Retry-After seconds'),
        409: problemResponse('A request with the same Idempotency-Key is still in flight (or took over this one\'s claim); retry after Retry-After seconds'),
        422: problemResponse('No channel can carry this message (it needs SMS text, or push content with a push_token, on a channel routing.channels allows), ' +
          'or callback_url is given without CALLBACK_SIGNING_SECRET on the service or on a host CALLBACK_ALLOWED_HOSTS does not allow, or the Idempotency-Key was used before with another body'),
      },
    },
  }, async (request, reply) => {
    const { answer, replayed } = await app.notifications.accept(request.principal!.subject, request.body, request.headers['idempotency-key'])
    if (replayed) reply.header('idempotent-replayed', 'true')
    return reply.code(202).send(answer)
  })

  app.get('/:id', {
    onRequest: app.requireScope('notifications:read'),
    schema: {
      tags: ['notifications'],
      operationId: 'getNotification',
      summary: 'A notification\'s status and everything that happened to it',
      description: 'Kept for NOTIFICATION_RETENTION_SECONDS (default 7 days) after it was accepted.',
      security,
      params: z.object({
        id: z.string().max(100).meta({ description: 'The notification id, as the 202 answer gave it', examples: ['ntf_07_3f2a9c0d4b8e4f6a9b1c2d3e4f5a6b7c'] }),
      }),
      response: {
        200: jsonResponse('The notification, its status and its events', NotificationSchema),
        ...pickProblems(401, 403),
        404: problemResponse('No notification with this id, or it is past its retention'),
        503: storeUnavailable,
      },
    },
  }, async (request) => {
    const { notification: n, events } = await app.notifications.get(request.params.id)
    return {
      id: n.id,
      to: n.request.to,
      status: n.status,
      channel: n.channel,
      reason: n.reason,
      reachability: n.reachability,
      attempts: n.attempts,
      client_ref: n.request.client_ref ?? null,
      metadata: n.request.metadata ?? null,
      campaign_id: n.campaign_id ?? null,
      provider_message_id: n.provider_message_id ?? null,
      created_at: n.created_at,
      updated_at: n.updated_at,
      expires_at: n.expires_at,
      events,
    }
  })
}

export default notificationRoutes
