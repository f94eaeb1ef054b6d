import type { FastifySerializerCompiler } from 'fastify/types/schema.js'
import fastJson from 'fast-json-stringify'
import { z } from 'zod'

type Serialize = (data: unknown) => string

/** Compiled once per schema for the whole process: many routes share a schema (Problem, above all), and a test file builds many apps. */
const compiled = new WeakMap<z.ZodType, Serialize>()

/**
 * Answers are serialized by fast-json-stringify, compiled once per schema from the zod schema's JSON
 * Schema: what the schema does not name is left out, as with zod, without a zod pass per answer on the
 * hot path. Handlers are typed against the same schemas, so the shapes are checked at compile time.
 * The compiled function is pure, so every route and app answering with one schema shares it.
 */
export const serializerCompiler: FastifySerializerCompiler<z.ZodType> = ({ schema }) => {
  let serialize = compiled.get(schema)
  if (!serialize) {
    const jsonSchema = z.toJSONSchema(schema, { io: 'output', target: 'draft-7', unrepresentable: 'any' })
    serialize = fastJson(jsonSchema as Parameters<typeof fastJson>[0]) as Serialize
    compiled.set(schema, serialize)
  }
  return serialize
}
