import { z } from 'zod'

export const ProblemSchema = z.looseObject({
  type: z.string().meta({ description: 'A URI naming the kind of problem', examples: ['https://reachroute.dev/problems/validation-error'] }),
  title: z.string().meta({ description: 'Short summary of the kind of problem', examples: ['Request is not valid'] }),
  status: z.number().int().meta({ description: 'The HTTP status code', examples: [400] }),
  detail: z.string().optional().meta({ description: 'What went wrong with this request', examples: ['body.phone_numbers: Too small: expected array to have >=1 items'] }),
  instance: z.string().optional().meta({ description: 'The request path', examples: ['/v1/reachability/batch'] }),
  request_id: z.string().optional().meta({ description: 'The request id, as in the X-Request-Id answer header and the logs', examples: ['0b9f6f4e-7c61-4c1d-9f55-3a2e8d1c7b42'] }),
  notification_id: z.string().optional().meta({
    description: 'For outcome-unknown: the id the notification has if it was stored (GET /v1/notifications/{id} tells, once the store answers)',
    examples: ['ntf_07_3f2a9c0d4b8e4f6a9b1c2d3e4f5a6b7c'],
  }),
  recipients_rejected: z.number().int().optional().meta({
    description: 'For a campaign none of whose recipients is valid (a 422): how many were refused', examples: [3],
  }),
  rejected: z.array(z.object({
    line: z.number().int().meta({ description: 'The line (NDJSON, the campaign being line 1) or the position in recipients (JSON, from 1)', examples: [1] }),
    reason: z.string().meta({ description: 'Why it was refused', examples: ['to: "bad" is not a valid phone number: an E.164 number has a "+" and 2 to 15 digits'] }),
  })).optional().meta({ description: 'For a campaign none of whose recipients is valid (a 422): the first 100 refused, with why' }),
  required_scope: z.string().optional().meta({ description: 'For a 403: the scope the operation needs', examples: ['reachability:read'] }),
  errors: z.array(z.object({
    path: z.string().meta({
      description: 'Where the wrong value is: the request part (body, querystring, params, headers), then the field path, dot separated (an array item by its index); ' +
        'a key that is not a plain name (one holding a dot, a slash, a space or a quote, one of digits only, an empty one, a cut one) in brackets as a JSON string: body.metadata["a.b"]',
      examples: ['body.phone_numbers.0'],
    }),
    message: z.string().meta({ description: 'What is wrong with it', examples: ['Invalid input: expected string, received number'] }),
  }).meta({ description: 'One wrong field' })).optional().meta({ description: 'For validation errors: each field that is wrong' }),
}).meta({ id: 'Problem', description: 'An RFC 9457 problem document' })

/** A documented error answer; a route gives its own description where the general one below would say too much or too little. */
export const problemResponse = (description: string) => ({
  description,
  content: { 'application/problem+json': { schema: ProblemSchema } },
})

/** Documented error answers; each route picks the ones it can give. */
export const problems = {
  400: problemResponse('Bad request: a field is missing or wrong, the JSON is malformed, or the phone number is not valid'),
  401: problemResponse('No bearer token, or the token was refused (signature, expiry, issuer, audience)'),
  403: problemResponse('The token lacks the scope this operation needs'),
  404: problemResponse('No such resource'),
  406: problemResponse('The Accept header allows none of the media types this operation answers with'),
  409: problemResponse('A request with the same Idempotency-Key is still in flight; retry after Retry-After seconds'),
  413: problemResponse('The body is larger than this route accepts'),
  422: problemResponse('The request is well formed but cannot be processed'),
  429: problemResponse('Too many requests; retry after Retry-After seconds'),
  503: problemResponse('The store or the reachability upstream is unavailable; retry after Retry-After seconds'),
} as const

/** The 503 of a route that needs the store but not the reachability upstream. */
export const storeUnavailable = problemResponse('The store is unavailable; retry after Retry-After seconds')

export function pickProblems<K extends keyof typeof problems> (...codes: K[]): Pick<typeof problems, K> {
  return Object.fromEntries(codes.map(c => [c, problems[c]])) as Pick<typeof problems, K>
}
