import type { z } from 'zod'
import { invalidRequest } from '../domain/validation.js'

/**
 * The routes' validator (Fastify's validator compiler): a part of the request (`body`, `querystring`, `params`,
 * `headers`) checked by its zod schema, a refusal being the ValidationError that names each fault by its path.
 * fastify-type-provider-zod's own compiler joins a path's keys with "/", so a key holding one could not be told apart.
 */
export function validatorCompiler ({ schema, httpPart }: { schema: z.ZodType, httpPart?: string }) {
  return (data: unknown): { value: unknown } | { error: Error } => {
    const result = schema.safeParse(data)
    return result.success ? { value: result.data } : { error: invalidRequest(httpPart ?? 'body', result.error) }
  }
}
