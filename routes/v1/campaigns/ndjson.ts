import { StringDecoder } from 'node:string_decoder'
import type { Readable } from 'node:stream'
import { ValidationError } from '../../../src/domain/errors.js'

/** Longer than any valid line (a recipient with 50 vars of 1,000 characters is about 55 KB). */
export const MAX_LINE_LENGTH = 1024 * 1024

/**
 * The lines of an NDJSON body, read as they are asked for: nothing is read ahead beyond the stream's own
 * buffer, and no line outlives the chunk it came in (only a line cut between two chunks is carried over).
 * Unlike node:readline there is no queue of lines waiting for the reader: while a batch of recipients is
 * being written, the rest of the body waits in the socket.
 */
export async function * ndjsonLines (stream: Readable): AsyncGenerator<string> {
  const decoder = new StringDecoder('utf8')
  let carry = ''
  let line = 0
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    const text = carry + decoder.write(chunk)
    let from = 0
    for (let end = text.indexOf('\n', from); end !== -1; end = text.indexOf('\n', from)) {
      line++
      const to = end > from && text.charCodeAt(end - 1) === 13 ? end - 1 : end
      // Whole lines too: whether a long line arrives in one chunk or across several must not matter.
      if (to - from > MAX_LINE_LENGTH) throw tooLong(line)
      yield text.slice(from, to)
      from = end + 1
    }
    carry = text.slice(from)
    if (carry.length > MAX_LINE_LENGTH) throw tooLong(line + 1)
  }
  carry += decoder.end()
  if (carry !== '') yield carry.endsWith('\r') ? carry.slice(0, -1) : carry
}

function tooLong (line: number): ValidationError {
  return new ValidationError(`line ${line} is longer than ${MAX_LINE_LENGTH} characters`, [{ path: `body.line.${line}`, message: 'too long' }])
}
