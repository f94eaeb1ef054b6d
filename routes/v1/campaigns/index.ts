import { Readable } from 'node:stream'
import type { SwaggerTransform } from '@fastify/swagger'
import type { FastifySchema, FastifySchemaCompiler } from 'fastify'
import { type FastifyPluginAsyncZod, jsonSchemaTransform } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { inUnits } from '../../../plugins/errors.js'
import { validatorCompiler } from '../../../src/http/validator.js'
import {
  CampaignAccepted, CampaignBody, CampaignDetailSchema, CampaignSchema, MAX_NDJSON_RECIPIENTS, Recipient,
} from '../../schemas/campaign.js'
import { jsonResponse } from '../../schemas/docs.js'
import { IdempotencyHeaders } from '../../schemas/notification.js'
import { pickProblems, problemResponse } from '../../schemas/problem.js'
import { queryInt } from '../../schemas/reachability.js'
import { hashedBody, readJson, readNdjson } from './body.js'
import { MAX_LINE_LENGTH } from './ndjson.js'

const security = [{ bearerAuth: [] }]
const NDJSON = 'application/x-ndjson'
/** A JSON body of 100,000 recipients; an NDJSON body is streamed and not held to this limit. */
const JSON_BODY_LIMIT = 64 * 1024 * 1024
/** A next_cursor as given out: the last campaign's creation time and id. */
const CURSOR_EXAMPLE = 'WyJ2MiIsMTc2NDE0MDAwMDAwMCwiY21wXzBjMWQyZTNmNDA1MTYyNzM4NDk1YTZiN2M4ZDllMGYxIl0'
const Id = z.object({ id: z.string().max(100).meta({ description: 'The campaign id', examples: ['cmp_0c1d2e3f405162738495a6b7c8d9e0f1'] }) })

/** The campaign's JSON body is checked here, not by the route's validator: a bad recipient is refused alone, the campaign goes on. */
const bodyAsIs: FastifySchemaCompiler<unknown> = (route) =>
  route.httpPart === 'body' ? (data: unknown) => ({ value: data }) : validatorCompiler(route as Parameters<typeof validatorCompiler>[0])

/** The NDJSON body as the spec shows it: lines of text, which the route reads itself (no schema of zod's). */
const NdjsonBody = {
  type: 'string',
  description: `NDJSON: a first line with the campaign {name, message, routing} (as in the JSON body, without recipients), then one ` +
    `recipient {to, push_token?, vars?} per line, up to ${MAX_NDJSON_RECIPIENTS.toLocaleString('en')}; read as a stream. A line that ` +
    'is not a valid recipient is refused with its line number (from 1, the campaign being line 1) and the campaign goes on.',
  examples: [[
    JSON.stringify({ name: 'Black Friday 2026', message: { sms: { text: 'Hi {{name}}, 30% off today' } }, routing: { on_unreachable: 'drop' } }),
    JSON.stringify({ to: '+990123400', push_token: 'fcm-registration-token-abc123', vars: { name: 'Ada' } }),
    JSON.stringify({ to: '+990123401', vars: { name: 'Grace' } }),
  ].join('\n') + '\n'],
}

/** What a recipient looks like: the route takes any item and refuses a bad one alone, but the spec shows a good one. */
const { $schema: _, ...RecipientJsonSchema } = z.toJSONSchema(Recipient, { io: 'input' })

/**
 * The spec of POST /v1/campaigns gives both its bodies: JSON (from the zod schema, as for any route, its recipients
 * described as the route reads each) and NDJSON.
 */
const jsonAndNdjsonBodies: SwaggerTransform = (document) => {
  const { schema, url } = jsonSchemaTransform(document as Parameters<typeof jsonSchemaTransform>[0])
  const { body, ...rest } = schema as FastifySchema & { body: { properties: { recipients: Record<string, unknown> } } }
  const json = { ...body, properties: { ...body.properties, recipients: { ...body.properties.recipients, items: RecipientJsonSchema } } }
  return { url, schema: { ...rest, body: { content: { 'application/json': { schema: json }, [NDJSON]: { schema: NdjsonBody } } } } }
}

/** Pause, resume and cancel take no body; one sent anyway is read under a small limit (its 400: plugins/swagger.ts). */
const actionBodyProblems = {
  413: problemResponse('A body larger than 1 KiB was sent (these routes take none)'),
  415: problemResponse('A body was sent with a Content-Type other than application/json (these routes take none)'),
}

/**
 * POST /v1/campaigns, in a plugin of its own: the NDJSON parser (which holds no body to any limit) serves it alone.
 * Any other campaign route refuses NDJSON with a 415, and keeps its body limit.
 */
const createCampaign: FastifyPluginAsyncZod = async (app) => {
  // The stream itself goes to the handler: a million recipients are read line by line, never held whole.
  app.addContentTypeParser(NDJSON, (_request, payload, done) => done(null, payload))

  /** Each create request's body hash, filled as its body is read. */
  const digests = new WeakMap<object, () => string>()

  app.post('/', {
    onRequest: app.requireScope('campaigns:write'),
    preParsing: async (request, _reply, payload) => {
      const { body, digest } = hashedBody(payload)
      digests.set(request, digest)
      return body
    },
    bodyLimit: JSON_BODY_LIMIT,
    validatorCompiler: bodyAsIs,
    config: { swaggerTransform: jsonAndNdjsonBodies },
    schema: {
      tags: ['campaigns'],
      operationId: 'createCampaign',
      summary: 'Send one message to many recipients, each routed by reachability',
      description: 'A JSON body with up to 100,000 recipients, or NDJSON (Content-Type: application/x-ndjson; a first line with ' +
        '{name, message, routing}, then one recipient per line) for up to 1,000,000, read as a stream. Each recipient becomes a ' +
        'notification in the background, in chunks, on lanes served after single notifications; a number listed twice is notified ' +
        'once. Placeholders {{name}} in the texts are filled from each recipient\'s vars (a missing one fails that recipient). ' +
        'Refused recipients are counted, and the first 100 given back with their line and reason. A campaign that is not valid ' +
        '(in NDJSON: its first line) is a 400 and nothing is created; one whose every recipient is refused is a 422.',
      security,
      headers: IdempotencyHeaders,
      body: CampaignBody,
      response: {
        202: jsonResponse('Read in and started: the campaign id and what was taken', CampaignAccepted),
        ...pickProblems(400, 401, 403, 503),
        413: problemResponse(`A JSON body larger than ${inUnits(JSON_BODY_LIMIT)} (an NDJSON body has no total limit; a line of it over ${inUnits(MAX_LINE_LENGTH)} is a 400 naming the line)`),
        415: problemResponse('The Content-Type is neither application/json nor application/x-ndjson'),
        409: problemResponse('A request with the same Idempotency-Key is still in flight; retry after Retry-After seconds'),
        422: problemResponse('No allowed channel can carry the message (SMS text, or push content, on a channel routing.channels allows), ' +
          'no recipient is valid (`recipients_rejected` counts them, `rejected` gives the first 100 with their line and reason), ' +
          'or the Idempotency-Key was used before with another request; nothing is created (NDJSON whose every recipient line is ' +
          'refused: the campaign read in is cancelled, never run, and not shown)'),
      },
    },
  }, async (request, reply) => {
    const owner = request.principal!.subject
    const key = request.headers['idempotency-key']
    const digest = digests.get(request)!
    const read = request.body instanceof Readable ? await readNdjson(request.body, digest) : readJson(request.body, digest)
    const { answer, replayed } = await app.campaigns.create(owner, read.header, read.recipients, key !== undefined ? { key, requestHash: read.requestHash } : undefined)
    if (replayed) reply.header('idempotent-replayed', 'true')
    return reply.code(202).send(answer)
  })
}

const campaignRoutes: FastifyPluginAsyncZod = async (app) => {
  await app.register(createCampaign)

  app.get('/', {
    onRequest: app.requireScope('campaigns:read'),
    schema: {
      tags: ['campaigns'],
      operationId: 'listCampaigns',
      summary: 'Campaigns, oldest first',
      description: 'Every campaign kept (NOTIFICATION_RETENTION_SECONDS after it was created) with its progress, a page at a time.',
      security,
      querystring: z.object({
        cursor: z.string().max(400).optional().meta({
          description: 'next_cursor of the previous page; none for the first page (opaque; it names the last campaign given, so campaigns ' +
            'that leave the list past their retention between pages skip none)',
          examples: [CURSOR_EXAMPLE],
        }),
        limit: queryInt({ min: 1, max: 100, fallback: 20, description: 'Items per page (1 to 100)' }),
      }),
      response: {
        200: jsonResponse('A page of campaigns', z.object({
          items: z.array(CampaignSchema).meta({ description: 'Campaigns, oldest first' }),
          next_cursor: z.string().nullable().meta({ description: 'Give it as cursor for the next page; null at the end', examples: [CURSOR_EXAMPLE] }),
        })),
        ...pickProblems(400, 401, 403, 503),
      },
    },
  }, async (request) => app.campaigns.list(request.query.cursor, request.query.limit))

  app.get('/:id', {
    onRequest: app.requireScope('campaigns:read'),
    schema: {
      tags: ['campaigns'],
      operationId: 'getCampaign',
      summary: 'A campaign\'s progress',
      description: 'Its status, its notifications by status and by channel, lookups from the cache and from the upstream, ' +
        'the rate over the last minute, the estimated time left, and why recipients failed (the first 100).',
      security,
      params: Id,
      response: { 200: jsonResponse('The campaign', CampaignDetailSchema), ...pickProblems(401, 403, 404, 503) },
    },
  }, async (request) => app.campaigns.get(request.params.id))

  const actions = [
    ['pause', 'Pause a running campaign', 'No more recipients are taken until it is resumed; notifications already made go on.', 'running'],
    ['resume', 'Resume a paused campaign', 'Recipients are taken again from where it stopped.', 'paused'],
    ['cancel', 'Cancel a campaign', 'No more recipients are taken, and its notifications not yet sent are dropped ("campaign cancelled").', 'accepted, running or paused'],
  ] as const
  for (const [action, summary, description, from] of actions) {
    app.post(`/:id/${action}`, {
      onRequest: app.requireScope('campaigns:write'),
      bodyLimit: 1024,
      schema: {
        tags: ['campaigns'],
        operationId: `${action}Campaign`,
        summary,
        description,
        security,
        params: Id,
        response: {
          200: jsonResponse('The campaign, in its new status', CampaignSchema),
          ...pickProblems(401, 403, 404, 503),
          ...actionBodyProblems,
          409: problemResponse(`The campaign's status does not allow it (only from ${from})`),
        },
      },
    }, async (request) => app.campaigns[action](request.params.id))
  }
}

export default campaignRoutes
