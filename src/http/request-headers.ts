import type { IncomingHttpHeaders } from 'node:http'
import { type AppError, UnsupportedMediaTypeError, ValidationError } from '../domain/errors.js'

/**
 * What is wrong with a request's headers before its body is read, if anything:
 * - a body in a Content-Encoding (gzip, ...): bodies are read as they are, so it would only be "not valid JSON";
 * - a body in a charset other than UTF-8: it would be read as UTF-8 all the same;
 * - an Idempotency-Key given twice: Node would join the two into one key, "a, b".
 */
export function headersProblem (headers: IncomingHttpHeaders, rawHeaders: readonly string[]): AppError | undefined {
  const encoding = headers['content-encoding']
  if (encoding !== undefined && !/^\s*identity\s*$/i.test(encoding) && hasBody(headers)) {
    const problem = new UnsupportedMediaTypeError(`Content-Encoding "${encoding.slice(0, 100)}" is not taken: send the body uncompressed`)
    // RFC 9110 15.5.16: a 415 for a content coding says which codings are taken.
    problem.headers = { 'accept-encoding': 'identity' }
    return problem
  }
  const type = headers['content-type']
  if (type !== undefined && type.includes('=') && hasBody(headers)) {
    const charset = /;\s*charset\s*=\s*"?([^";\s]*)/i.exec(type)?.[1]
    if (charset !== undefined && !/^utf-?8$/i.test(charset)) {
      return new UnsupportedMediaTypeError(`Content-Type charset "${charset.slice(0, 40)}" is not taken: bodies are UTF-8 (charset=utf-8, or no charset)`)
    }
  }
  if (headers['idempotency-key'] !== undefined) {
    let given = 0
    for (let i = 0; i < rawHeaders.length; i += 2) if (rawHeaders[i]!.toLowerCase() === 'idempotency-key') given++
    if (given > 1) {
      const message = `given ${given} times: send one key`
      return new ValidationError(`headers.idempotency-key: ${message}`, [{ path: 'headers.idempotency-key', message }])
    }
  }
  return undefined
}

function hasBody (headers: IncomingHttpHeaders): boolean {
  return headers['transfer-encoding'] !== undefined || (headers['content-length'] !== undefined && headers['content-length'] !== '0')
}
