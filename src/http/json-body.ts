import { isUtf8 } from 'node:buffer'
import { parse } from 'secure-json-parse'
import { ValidationError } from '../domain/errors.js'

/** A client error the error handler maps by its code, as it maps Fastify's own body errors. */
function bodyError (code: 'FST_ERR_CTP_EMPTY_JSON_BODY' | 'FST_ERR_CTP_INVALID_JSON_BODY', message: string): Error {
  return Object.assign(new Error(message), { code, statusCode: 400 })
}

/**
 * A JSON request body, parsed as Fastify's own parser does (secure-json-parse: a `__proto__` key, or a
 * `constructor` holding `prototype`, is refused), but saying what is wrong: where the JSON breaks, or which key
 * was refused (Fastify answers "not valid JSON" for both).
 */
export function parseJsonBody (text: string): unknown {
  if (text === '') throw bodyError('FST_ERR_CTP_EMPTY_JSON_BODY', 'the body is empty, but its Content-Type is application/json')
  const parsed = parseJson(text)
  if (parsed.ok) return parsed.value
  if (parsed.forbidden) {
    const detail = `${FORBIDDEN_KEY} anywhere in the body`
    throw new ValidationError(`body: ${detail}`, [{ path: 'body', message: detail }])
  }
  throw bodyError('FST_ERR_CTP_INVALID_JSON_BODY', `the body is not valid JSON: ${parsed.message}`)
}

export const FORBIDDEN_KEY = 'a "__proto__" key, or a "constructor" key holding "prototype", is refused'

/** JSON text parsed as request bodies are (secure-json-parse): its value, or why not (a forbidden key, or where it breaks). */
export function parseJson (text: string): { ok: true, value: unknown } | { ok: false, forbidden: boolean, message: string } {
  try {
    return { ok: true, value: parse(text, { protoAction: 'error', constructorAction: 'error' }) }
  } catch (err) {
    const message = (err as Error).message
    return { ok: false, forbidden: /forbidden prototype property/.test(message), message }
  }
}

/**
 * A request body's bytes as text. Bytes that are not UTF-8 are refused: decoded, each would become U+FFFD, and a
 * message would go out with question marks in place of what was meant. (A U+FFFD sent as such is taken.)
 */
export function utf8Body (body: Buffer): string {
  const text = body.toString('utf8')
  if (text.includes('\uFFFD') && !isUtf8(body)) {
    const message = 'not valid UTF-8: bodies are read as UTF-8'
    throw new ValidationError(`body: ${message}`, [{ path: 'body', message }])
  }
  return text
}
