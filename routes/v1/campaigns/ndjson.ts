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
  // Bytes that are not UTF-8 are refused, not read as U+FFFD (a byte order mark at the start is dropped).
  const decoder = new TextDecoder('utf-8', { fatal: true })
  const decode = (chunk?: Buffer): string => {
    try {
      return decoder.decode(chunk, { stream: chunk !== undefined })
    } catch {
      // Lines are cut after decoding: the line at fault is the next one, or one after it in this chunk. A chunk that
      // decodes on its own broke a character the last one left open: the fault is at its start.
      const bad = chunk ? firstBadByte(chunk) : 0
      const at = line + 1 + (chunk && bad < chunk.length ? newlinesBefore(chunk, bad) : 0)
      throw new ValidationError(`line ${at} is not valid UTF-8: bodies are read as UTF-8`, [{ path: `body.line.${at}`, message: 'not valid UTF-8' }])
    }
  }
  let carry = ''
  let line = 0
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    const text = carry + decode(chunk)
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
  carry += decode()
  if (carry !== '') yield carry.endsWith('\r') ? carry.slice(0, -1) : carry
}

function tooLong (line: number): ValidationError {
  return new ValidationError(`line ${line} is longer than ${MAX_LINE_LENGTH} characters`, [{ path: `body.line.${line}`, message: 'too long' }])
}

/** Where the first byte that cannot be UTF-8 is in `chunk` (its length when there is none: the fault is at its end). */
function firstBadByte (chunk: Buffer): number {
  // A prefix decodes (a character cut at its end waits for the rest) until it reaches the bad byte: search for that.
  const decodes = (end: number): boolean => {
    try {
      new TextDecoder('utf-8', { fatal: true }).decode(chunk.subarray(0, end), { stream: true })
      return true
    } catch {
      return false
    }
  }
  let low = 0
  let high = chunk.length
  while (low < high) {
    const mid = (low + high + 1) >> 1
    if (decodes(mid)) low = mid
    else high = mid - 1
  }
  return low
}

function newlinesBefore (chunk: Buffer, end: number): number {
  let count = 0
  for (let i = chunk.indexOf(10); i !== -1 && i < end; i = chunk.indexOf(10, i + 1)) count++
  return count
}
