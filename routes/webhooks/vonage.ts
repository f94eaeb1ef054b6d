import type { FastifyRequest } from 'fastify'
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { UnauthorizedError } from '../../src/domain/errors.js'
import { parseJsonBody } from '../../src/http/json-body.js'
import { verifyVonageSignature } from '../../src/http/signature.js'
import { recordCampaignFinal } from '../../src/metrics/campaigns.js'
import { recordNotificationFinal } from '../../src/metrics/notifications.js'
import { applyReceipt } from '../../src/notifications/service.js'
import { pickProblems, problemResponse } from '../schemas/problem.js'

declare module 'fastify' {
  interface FastifyRequest {
    rawBody?: string
  }
}

/** A text of a receipt's error: a string, or a number (an error code) taken as its text. */
const LenientText = z.union([z.string(), z.number()]).optional()

/** The error of a receipt in words: its title, else its detail, a number taken as its text. */
function errorText (error: { title?: string | number | undefined, detail?: string | number | undefined } | undefined): string | undefined {
  const text = error?.title ?? error?.detail
  return text === undefined ? undefined : String(text)
}

const MessageStatus = z.looseObject({
  message_uuid: z.string().min(1).max(100).meta({ description: 'Vonage\'s id of the message', examples: ['aaaaaaaa-bbbb-4ccc-8ddd-0123456789ab'] }),
  to: z.string().max(50).optional().meta({ description: 'The recipient\'s number, as Vonage writes it (no "+")', examples: ['990123400'] }),
  from: z.string().max(50).optional().meta({ description: 'The sender the SMS was sent from (SMS_FROM)', examples: ['reachroute'] }),
  timestamp: z.string().max(50).meta({ description: 'When the status changed (ISO 8601)', examples: ['2026-11-25T10:42:07.000Z'] }),
  status: z.string().min(1).max(50).meta({ description: 'submitted, delivered, rejected or undeliverable', examples: ['delivered'] }),
  channel: z.string().max(20).optional().meta({ description: 'The Vonage Messages channel', examples: ['sms'] }),
  client_ref: z.string().max(100).optional().meta({ description: 'The reachroute notification id', examples: ['ntf_07_3f2a9c0d4b8e4f6a9b1c2d3e4f5a6b7c'] }),
  // Read leniently: Vonage does not send a 400 again, so a receipt refused for the shape of its error would be lost
  // (some carry the error's code as a number in title). A number is taken as its text.
  error: z.looseObject({
    type: z.string().optional().meta({ description: 'A URI naming the kind of error', examples: ['https://developer.vonage.com/en/api-errors/messages#1320'] }),
    title: LenientText.meta({ description: 'Short summary of the error (a number, such as an error code, is taken as its text)', examples: ['Message failed'] }),
    detail: LenientText.meta({ description: 'The error in words', examples: ['The number is not reachable'] }),
  }).optional().meta({ description: 'Why the message was rejected or undeliverable; only with those statuses' }),
}).meta({
  description: 'A Vonage Messages status update',
  examples: [{
    message_uuid: 'aaaaaaaa-bbbb-4ccc-8ddd-0123456789ab',
    to: '990123400',
    from: 'reachroute',
    timestamp: '2026-11-25T10:42:07.000Z',
    status: 'delivered',
    channel: 'sms',
    client_ref: 'ntf_07_3f2a9c0d4b8e4f6a9b1c2d3e4f5a6b7c',
  }],
})

/** Vonage Messages status webhooks: verified, then applied to the notification they name. */
const vonageWebhookRoutes: FastifyPluginAsyncZod = async (app) => {
  // The signature covers the exact bytes received: keep them beside the parsed body.
  app.removeContentTypeParser('application/json')
  app.addContentTypeParser('application/json', { parseAs: 'string' }, async (request: FastifyRequest, body: string): Promise<unknown> => {
    request.rawBody = body
    try {
      return parseJsonBody(body)
    } catch (err) {
      // A forged body that is not even JSON is refused for its signature too: 401, not 400.
      await verifySignature(request)
      throw err
    }
  })

  // Any other Content-Type is read too, only to check its signature: a forged request is a 401 whatever it sends,
  // a signed one that is not JSON a 415.
  app.addContentTypeParser('*', { parseAs: 'string' }, async (request: FastifyRequest, body: string): Promise<unknown> => {
    request.rawBody = body
    await verifySignature(request)
    throw Object.assign(new Error(`Unsupported Media Type: ${request.headers['content-type'] ?? '(none)'}`), { statusCode: 415, code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE' })
  })

  /** 401 unless the Authorization JWT is Vonage's, over exactly the bytes received (none for a bodyless request). */
  async function verifySignature (request: FastifyRequest): Promise<void> {
    const ok = await verifyVonageSignature(request.headers.authorization, request.rawBody ?? '', app.config.channels.vonageSignatureSecret!)
    if (!ok) throw new UnauthorizedError('the webhook signature or its payload hash does not check out')
  }

  app.post('/messages', {
    bodyLimit: 16 * 1024,
    onRequest: async (request) => {
      if (!app.config.channels.vonageSignatureSecret) throw new UnauthorizedError('VONAGE_SIGNATURE_SECRET is not set: status webhooks cannot be verified, so none is accepted')
      if (!request.headers.authorization) throw new UnauthorizedError('a signed webhook needs "Authorization: Bearer <JWT>"')
    },
    // Before the body is validated: a forged request learns nothing of the schema from field errors.
    preValidation: verifySignature,
    schema: {
      tags: ['webhooks'],
      operationId: 'vonageMessageStatus',
      summary: 'Vonage Messages status webhook',
      description: 'Moves a sent SMS to delivered or failed. Signed by Vonage with an HS256 JWT (VONAGE_SIGNATURE_SECRET) whose payload_hash ' +
        'is the SHA-256 of the body; a bad signature is 401 and changes nothing. Repeats are harmless. Set the Vonage application\'s status URL here.',
      security: [{ vonageSignature: [] }],
      body: MessageStatus,
      response: {
        204: z.null().meta({ description: 'Taken (or already known)' }),
        ...pickProblems(413),
        400: problemResponse('Not a status update (a field is missing or wrong), or the JSON is malformed'),
        401: problemResponse('VONAGE_SIGNATURE_SECRET is not set, there is no Authorization header, or the signature or its payload hash does not check out'),
        503: problemResponse('The store is unavailable; Vonage retries the webhook later'),
      },
    },
  }, async (request, reply) => {
    const body = request.body
    if (body.client_ref) {
      await applyReceipt(app.store, {
        clientRef: body.client_ref,
        status: body.status,
        providerMessageId: body.message_uuid,
        error: errorText(body.error),
        at: body.timestamp,
      }, { onFinal: recordNotificationFinal, onCampaignFinal: recordCampaignFinal })
    }
    return reply.code(204).send(null)
  })
}

export default vonageWebhookRoutes
