import type { z } from 'zod'

/**
 * A JSON answer with its own description in the spec (instead of @fastify/swagger's "Default Response"), in the OpenAPI
 * response-object form fastify-type-provider-zod documents. Fastify still serializes (and checks) the answer with the zod
 * schema: it picks the schema by the reply's media type, application/json for every object a handler returns.
 */
export function jsonResponse<T extends z.ZodType> (description: string, schema: T) {
  return { description, content: { 'application/json': { schema } } }
}

/**
 * Metadata carrying the examples of a request body whose schema transforms (a PhoneNumber field normalizes the number).
 * zod leaves `examples` out of the input side of a transforming schema, but keeps other keywords: @fastify/swagger moves
 * `x-examples` (named OpenAPI Example objects) to the body's media type. `examples` stays for zod's own rendering.
 * Only for transforming bodies: on any other, zod keeps `examples` and the media type would carry both forms.
 */
export function transformingBodyExamples<T> (named: Record<string, { summary: string, value: T }>) {
  return { examples: Object.values(named).map(e => e.value), 'x-examples': named }
}
