import type { FastifySerializerCompiler } from 'fastify/types/schema.js'
import fastJson from 'fast-json-stringify'
import { z } from 'zod'

/**
 * Answers are serialized by fast-json-stringify, compiled once per route from the zod schema's JSON
 * Schema: what the schema does not name is left out, as with zod, without a zod pass per answer on the
 * hot path. Handlers are typed against the same schemas, so the shapes are checked at compile time.
 */
export const serializerCompiler: FastifySerializerCompiler<z.ZodType> = ({ schema }) => {
  const jsonSchema = z.toJSONSchema(schema, { io: 'output', target: 'draft-7', unrepresentable: 'any' })
  return fastJson(jsonSchema as Parameters<typeof fastJson>[0]) as (data: unknown) => string
}
