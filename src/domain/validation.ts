import type { z } from 'zod'
import { type FieldError, ValidationError } from './errors.js'
import { quoted, visible } from './unicode.js'

// How a request that zod refused is named back to the caller: where each fault is, and what is wrong with it, in
// zod's words. Every body, query and header checked by zod is reported through here: the routes' validator and the
// campaign bodies the campaign routes read themselves.

/** The longest key or value of the caller's echoed whole; a longer one is cut to its first 40 characters. */
const MAX_ECHOED = 60

function cut (text: string): string {
  return text.length <= MAX_ECHOED ? text : `${text.slice(0, 40)}…`
}

/** The longest message: zod's may list many options. */
const MAX_MESSAGE = 200

/** A key written bare in a path: a name of letters, digits, `_` and `-` that does not start with a digit or `-`. */
const PLAIN_KEY = /^[\p{L}_][\p{L}\p{N}_-]*$/u

/**
 * Where a fault is: `body.routing.ttl_seconds`, `body.recipients.3.to` (an array's item by its index). A key that is
 * not a plain name, or that is cut, is written in brackets as a JSON string, so no key can be read as two:
 * `body.metadata["a.b"]`, `body.metadata[""]`, `body.metadata["7"]`, `body.metadata["kkkk…"]`; what cannot be seen
 * in it (a control, a lone surrogate, a bidi mark) as `\uXXXX`.
 */
export function fieldPath (root: string, path: readonly PropertyKey[]): string {
  let at = root
  for (const segment of path) {
    const key = typeof segment === 'symbol' ? segment.toString() : String(segment)
    if (typeof segment === 'number' || (key.length <= MAX_ECHOED && PLAIN_KEY.test(key))) at += at === '' ? key : `.${key}`
    else at += `[${quoted(cut(key))}]`
  }
  return at
}

/** Quoted values in zod's message ('Invalid option: expected one of "push"|"sms"') cut and made visible alike. */
function shortenQuoted (message: string): string {
  return message.replace(/"([^"]*)"/g, (whole, inner: string) => inner.length <= MAX_ECHOED ? whole : `"${visible(cut(inner))}"`)
}

/**
 * What is wrong, in zod's words. A map's bad key is zod's invalid_key issue, whose own message says only "Invalid
 * key in record": what is wrong with the key is in its inner issues ("Too big: expected string to have <=64 characters").
 */
function issueMessage (issue: z.core.$ZodIssue): string {
  if (issue.code === 'unrecognized_keys' && issue.keys.length > 0) {
    // zod's own message quotes the keys whole (one holding a quote would escape shortenQuoted).
    return `Unrecognized key${issue.keys.length > 1 ? 's' : ''}: ${issue.keys.map(key => quoted(cut(key))).join(', ')}`
  }
  const inner = issue.code === 'invalid_key' ? issue.issues.map(i => i.message) : []
  const message = shortenQuoted(inner.length > 0 ? inner.join('; ') : issue.message)
  return message.length <= MAX_MESSAGE ? message : `${message.slice(0, MAX_MESSAGE)}…`
}

/** Each fault zod found, its path under `root` ('' for one relative to the value checked). */
export function fieldErrors (root: string, error: z.ZodError): FieldError[] {
  return error.issues.map(issue => ({ path: fieldPath(root, issue.path), message: issueMessage(issue) }))
}

/** The faults as one line: `path: what is wrong; …`. */
export function describe (errors: readonly FieldError[]): string {
  return errors.map(e => e.path === '' ? e.message : `${e.path}: ${e.message}`).join('; ')
}

/** The 400 for a value zod refused, `root` naming where it came from (`body`, `querystring`, `body.line.1`). */
export function invalidRequest (root: string, error: z.ZodError, detail?: string): ValidationError {
  const errors = fieldErrors(root, error)
  return new ValidationError(detail === undefined ? describe(errors) : `${detail}: ${describe(fieldErrors('', error))}`, errors)
}
