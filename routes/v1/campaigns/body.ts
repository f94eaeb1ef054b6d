import { createHash } from 'node:crypto'
import { pipeline, type Readable, Transform } from 'node:stream'
import type { CampaignHeader as Header, Recipient as RecipientInput, RecipientLine } from '../../../src/campaigns/service.js'
import { ValidationError } from '../../../src/domain/errors.js'
import { describe, fieldErrors, invalidRequest } from '../../../src/domain/validation.js'
import { FORBIDDEN_KEY, parseJson } from '../../../src/http/json-body.js'
import { CampaignBody, CampaignHeader, MAX_NDJSON_RECIPIENTS, Recipient } from '../../schemas/campaign.js'
import { ndjsonLines } from './ndjson.js'

// The two bodies of POST /v1/campaigns (JSON, or NDJSON read as a stream) turned into the campaign, its
// recipients (each checked alone: a bad one is refused with its line and reason, the campaign goes on) and
// the hash an Idempotency-Key is checked against: of the body's bytes as they came, so however deep a bad
// recipient's JSON is nested, hashing it takes no recursion.

export interface CampaignInput {
  header: Header
  recipients: AsyncIterable<RecipientLine> | Iterable<RecipientLine>
  /** The hash of the whole body: what is left of it unread is read first (and not checked). */
  requestHash: () => Promise<string>
}

/** The body passed on as it is read, its bytes hashed on the way: `digest()` once it has been read to its end. */
export function hashedBody (payload: Readable): { body: Readable, digest: () => string } {
  const hash = createHash('sha256')
  let digest: string | undefined
  const body = new Transform({
    transform (chunk: Buffer, _encoding, callback) {
      hash.update(chunk)
      callback(null, chunk)
    },
  })
  // A client that goes away mid-body fails the reader, never leaves it waiting.
  pipeline(payload, body, () => {})
  return { body, digest: () => (digest ??= hash.digest('hex')) }
}

function checkRecipient (line: number, value: unknown): RecipientLine {
  const parsed = Recipient.safeParse(value)
  return parsed.success ? { line, recipient: parsed.data as RecipientInput } : { line, reason: describe(fieldErrors('', parsed.error)) }
}

/** A JSON body (read whole, `digest` the hash of its bytes): `{name, message, routing, recipients}`; a campaign that is not valid is a 400. */
export function readJson (body: unknown, digest: () => string): CampaignInput {
  const parsed = CampaignBody.safeParse(body)
  if (!parsed.success) throw invalidRequest('body', parsed.error, 'the campaign is not valid')
  const { recipients: list, ...rest } = parsed.data
  return { header: rest as Header, recipients: list.map((value, i) => checkRecipient(i + 1, value)), requestHash: async () => digest() }
}

/** Reads an NDJSON body (`digest` the hash of its bytes read so far) line by line: the first line is the campaign, then one recipient per line. */
export async function readNdjson (stream: Readable, digest: () => string): Promise<CampaignInput> {
  const lines = ndjsonLines(stream)
  const first = await lines.next()
  if (first.done || first.value.trim() === '') {
    throw new ValidationError('the first line must be the campaign {name, message, routing}', [{ path: 'body.line.1', message: 'missing' }])
  }
  const json = parseJson(first.value)
  if (!json.ok && json.forbidden) throw new ValidationError(`the first line: ${FORBIDDEN_KEY}`, [{ path: 'body.line.1', message: FORBIDDEN_KEY }])
  if (!json.ok) throw new ValidationError('the first line is not JSON: it must be the campaign {name, message, routing}', [{ path: 'body.line.1', message: 'not JSON' }])
  const header = CampaignHeader.safeParse(json.value)
  if (!header.success) throw invalidRequest('body.line.1', header.error, 'the first line is not a valid campaign')
  async function * recipients (): AsyncIterable<RecipientLine> {
    let line = 1
    let count = 0
    for await (const text of { [Symbol.asyncIterator]: () => lines }) {
      line++
      if (text.trim() === '') continue
      if (++count > MAX_NDJSON_RECIPIENTS) {
        yield { line, reason: `more than ${MAX_NDJSON_RECIPIENTS} recipients` }
        continue
      }
      // As a JSON body's recipients are read: a "__proto__" key is refused, not silently dropped.
      const parsed = parseJson(text)
      yield parsed.ok ? checkRecipient(line, parsed.value) : { line, reason: parsed.forbidden ? FORBIDDEN_KEY : 'not JSON' }
    }
    // As a JSON body's recipients must hold one: a campaign of nobody is a mistake, refused (and left behind
    // cancelled, never run, as any upload that fails).
    if (count === 0) throw new ValidationError('no recipients: give at least one, a line each after the campaign', [{ path: 'body.line.2', message: 'missing' }])
  }
  const requestHash = async () => {
    let next: IteratorResult<string>
    do next = await lines.next()
    while (!next.done)
    return digest()
  }
  return { header: header.data as Header, requestHash, recipients: recipients() }
}
