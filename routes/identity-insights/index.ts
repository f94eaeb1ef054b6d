import { randomUUID } from 'node:crypto'
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod'
import { z } from 'zod'
import { jsonResponse, transformingBodyExamples } from '../schemas/docs.js'
import { pickProblems, problemResponse } from '../schemas/problem.js'
import { PhoneNumber } from '../schemas/reachability.js'

// A Vonage-compatible gateway: Vonage's own request and answer shapes, served through reachroute's cache.

const InsightsRequest = z.strictObject({
  phone_number: PhoneNumber,
  purpose: z.string().min(1).max(100).optional().meta({
    description: 'Vonage purpose of the lookup; defaults to VONAGE_INSIGHTS_PURPOSE',
    examples: ['FraudPreventionAndDetection'],
  }),
  insights: z.record(z.string(), z.looseObject({})).superRefine((insights, ctx) => {
    const others = Object.keys(insights).filter(name => name !== 'reachability')
    if (others.length > 0) {
      ctx.addIssue({ code: 'custom', message: `only the "reachability" insight is served here, not ${others.map(o => `"${o}"`).join(', ')}` })
    } else if (!('reachability' in insights)) {
      ctx.addIssue({ code: 'custom', message: 'ask for the "reachability" insight: {"reachability": {}}' })
    }
  }).meta({ required: ['reachability'], maxProperties: 1, description: 'The insights asked for: only {"reachability": {}} is served', examples: [{ reachability: {} }] }),
}).meta(transformingBodyExamples({
  reachability: {
    summary: 'The reachability insight, as in Vonage\'s documented curl example',
    value: { phone_number: '+990123400', purpose: 'FraudPreventionAndDetection', insights: { reachability: {} } },
  },
}))

const InsightsResponse = z.object({
  request_id: z.string().meta({ description: 'A UUID naming this request', examples: ['c2cc7a65-9b10-493f-9c0a-1c86751a91c4'] }),
  insights: z.object({
    reachability: z.object({
      latest_status_at: z.string().optional().meta({
        description: 'When the network last updated the device\'s connectivity status; present only when the status is OK or PARTIAL_SUCCESS and it is known',
        examples: ['2024-02-20T10:41:38.657Z'],
      }),
      is_reachable: z.boolean().optional().meta({
        description: 'True when the device is attached to the mobile network; present only when the status is OK or PARTIAL_SUCCESS',
        examples: [true],
      }),
      connectivity: z.array(z.string()).optional().meta({ description: 'What the device is connected for (DATA and/or SMS); present only when is_reachable is true', examples: [['DATA', 'SMS']] }),
      status: z.object({
        code: z.string().meta({
          description: 'Insight status code, as Vonage gives it: OK, PARTIAL_SUCCESS, NO_COVERAGE, NOT_FOUND, INVALID_NUMBER_FORMAT, SUPPLIER_ERROR, INTERNAL_ERROR, …',
          examples: ['OK'],
        }),
        message: z.string().meta({ description: 'The status in words', examples: ['Success'] }),
      }).meta({ description: 'The outcome of this insight: a code other than OK still answers HTTP 200, with only the status' }),
    }).meta({ description: 'The reachability insight' }),
  }).meta({ description: 'The insights asked for: only reachability is served here' }),
}).meta({ id: 'VonageInsightsResponse', description: 'Exactly the answer shape of Vonage Identity Insights' })

const identityInsightsRoutes: FastifyPluginAsyncZod = async (app) => {
  app.addHook('onRequest', app.requireScope('reachability:read'))
  const schema = (path: string) => ({
    tags: ['vonage-compatible'],
    operationId: path === 'v1' ? 'identityInsightsV1' : 'identityInsightsV01',
    summary: `Vonage Identity Insights (${path}), reachability insight only`,
    description: 'Takes the Vonage request body and answers the Vonage response shape, through reachroute\'s cache and upstream: ' +
      'Vonage\'s documented curl example works with only the host (and token) changed.',
    security: [{ bearerAuth: [] }],
    body: InsightsRequest,
    response: {
      200: jsonResponse('The reachability insight, in Vonage\'s answer shape', InsightsResponse),
      ...pickProblems(401, 403, 413),
      400: problemResponse('The phone number is not valid, an insight other than reachability was asked for (named in detail), ' +
        'a field is missing or wrong, the JSON is malformed, or Vonage called the request bad (HTTP 400) under the purpose given'),
      503: problemResponse('The upstream gave no usable answer and no stale cached entry was at hand, or the store is unavailable; retry after Retry-After seconds'),
    },
  })

  const handler = async (request: { body: z.output<typeof InsightsRequest> }) => {
    const { purpose } = request.body
    const r = await app.reachability.lookup(request.body.phone_number, purpose ? { purpose } : {})
    const known = r.status.code === 'OK' || r.status.code === 'PARTIAL_SUCCESS'
    return {
      request_id: randomUUID(),
      insights: {
        reachability: {
          ...(r.latest_status_at && known ? { latest_status_at: r.latest_status_at } : {}),
          ...(known ? { is_reachable: r.is_reachable } : {}),
          ...(known && r.is_reachable ? { connectivity: r.connectivity } : {}),
          status: r.status,
        },
      },
    }
  }
  // One number, a purpose and {"reachability": {}}: Vonage's own example is under 200 bytes.
  const bodyLimit = 8 * 1024
  app.post('/identity-insights/v1/requests', { bodyLimit, schema: schema('v1') }, handler)
  app.post('/v0.1/identity-insights', { bodyLimit, schema: schema('v0.1') }, handler)
}

export default identityInsightsRoutes
