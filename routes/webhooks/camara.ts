import { timingSafeEqual } from 'node:crypto'
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { UnauthorizedError } from '../../src/domain/errors.js'
import { parseJsonBody } from '../../src/http/json-body.js'
import { transformingBodyExamples } from '../schemas/docs.js'
import { pickProblems, problemResponse, storeUnavailable } from '../schemas/problem.js'

const CloudEvent = z.looseObject({
  id: z.string().min(1).max(200).meta({ description: 'Event id, unique for its source; a repeat of a source and id already applied is ignored', examples: ['83a0d986-0866-4f38-b8c0-fc65bfcda452'] }),
  source: z.string().min(1).max(2000).meta({ description: 'The event\'s source: the operator\'s subscription', examples: ['https://operator.example/device-reachability-status-subscriptions/v0.7/subscriptions/qs15-h556-rt89-1298'] }),
  type: z.string().min(1).max(200).meta({
    description: 'org.camaraproject.device-reachability-status-subscriptions.v0.reachability-data, …-sms, …-disconnected or …-subscription-ends',
    examples: ['org.camaraproject.device-reachability-status-subscriptions.v0.reachability-data'],
  }),
  specversion: z.literal('1.0').meta({ description: 'The CloudEvents version: 1.0', examples: ['1.0'] }),
  datacontenttype: z.string().max(100).optional().meta({ description: 'The media type of data', examples: ['application/json'] }),
  time: z.iso.datetime({ offset: true }).meta({ description: 'When the operator saw the change (ISO 8601 with offset)', examples: ['2026-11-25T10:41:38.657Z'] }),
  data: z.looseObject({
    // Checked by CAMARA's own pattern, not by the numbering plans: the subscription names the number, and this one is
    // only compared with it (libphonenumber refused the spec's own example, +123456789, and with it the whole event).
    device: z.looseObject({ phoneNumber: z.string().regex(/^\+[1-9][0-9]{4,14}$/, { error: 'not a phone number in E.164 form (CAMARA\'s pattern ^\\+[1-9][0-9]{4,14}$)' }).optional()
      .meta({ description: 'The device\'s number in E.164 form (CAMARA\'s pattern); it must be the subscription\'s, or the event is ignored', examples: ['+447911123456'] }) }).optional().meta({
      description: 'The device the event is about (optional: the subscription names it); a phone number given must be the subscription\'s',
    }),
    subscriptionId: z.string().min(1).max(200).meta({
      description: 'The operator\'s id of the subscription; an event from a subscription that is not (or no longer) ours is ignored',
      examples: ['qs15-h556-rt89-1298'],
    }),
  }).meta({ description: 'The event\'s payload' }),
}).meta({
  description: 'A CloudEvents 1.0 event of CAMARA Device Reachability Status Subscriptions',
  ...transformingBodyExamples({
    reachability_data: {
      summary: 'The device is connected for data again',
      value: {
        id: '83a0d986-0866-4f38-b8c0-fc65bfcda452',
        source: 'https://operator.example/device-reachability-status-subscriptions/v0.7/subscriptions/qs15-h556-rt89-1298',
        type: 'org.camaraproject.device-reachability-status-subscriptions.v0.reachability-data',
        specversion: '1.0',
        datacontenttype: 'application/json',
        time: '2026-11-25T10:41:38.657Z',
        data: { device: { phoneNumber: '+990123444' }, subscriptionId: 'qs15-h556-rt89-1298' },
      },
    },
  }),
})

/** Events from a CAMARA operator, for numbers with notifications waiting in the fallback queue. */
const camaraWebhookRoutes: FastifyPluginAsyncZod = async (app) => {
  app.addContentTypeParser('application/cloudevents+json', { parseAs: 'string' }, async (_request: unknown, body: string) => parseJsonBody(body))
  const expected = app.config.camara.sinkToken

  app.post('/', {
    bodyLimit: 16 * 1024,
    onRequest: async (request) => {
      if (!expected) throw new UnauthorizedError('CAMARA_SINK_TOKEN is not set: no event is accepted')
      const given = /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? '')?.[1] ?? ''
      const a = Buffer.from(given)
      const b = Buffer.from(expected)
      if (a.length !== b.length || !timingSafeEqual(a, b)) throw new UnauthorizedError('the sink access token does not match')
    },
    schema: {
      tags: ['webhooks'],
      operationId: 'camaraReachabilityEvent',
      summary: 'CAMARA reachability events (the subscriptions\' sink)',
      description: 'The operator posts CloudEvents here (Content-Type application/cloudevents+json) with the sink access token given at ' +
        'subscription (CAMARA_SINK_TOKEN) as a bearer token. A reachability-data or -sms event updates the cache and makes the number\'s ' +
        'queued notifications due at once. The number is the one subscribed under `data.subscriptionId`; an event from a subscription ' +
        'that is not (or no longer) ours changes nothing, nor does a repeat (the same `source` and `id`) of an event already applied. A ' +
        'subscription-ends the operator decided re-subscribes while notifications still wait. Answers 204.',
      security: [{ sinkToken: [] }],
      consumes: ['application/cloudevents+json', 'application/json'],
      body: CloudEvent,
      response: {
        204: z.null().meta({ description: 'Taken (or ignored: a repeat, or a subscription that is not ours)' }),
        ...pickProblems(413),
        400: problemResponse('Not a CloudEvent of this API (a field is missing or wrong), the phone number is not valid, or the JSON is malformed'),
        401: problemResponse('CAMARA_SINK_TOKEN is not set, or the bearer token is not the sink access token'),
        503: storeUnavailable,
      },
    },
  }, async (request, reply) => {
    const event = request.body
    await app.reachabilityEvents.handle({
      id: event.id, source: event.source, type: event.type, subscriptionId: event.data.subscriptionId, phoneNumber: event.data.device?.phoneNumber, time: event.time,
    })
    return reply.code(204).send(null)
  })
}

export default camaraWebhookRoutes
