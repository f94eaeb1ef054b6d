// Typed failures of the domain. plugins/errors.ts maps each to an RFC 9457 problem, in one place.
import { quoted } from './unicode.js'

export interface ProblemExtras {
  [key: string]: unknown
}

export abstract class AppError extends Error {
  abstract readonly status: number
  abstract readonly slug: string
  abstract readonly title: string
  /** Headers the answer carries, e.g. Retry-After. */
  headers: Record<string, string> = {}
  extras: ProblemExtras = {}

  constructor (detail: string, options?: { cause?: unknown }) {
    super(detail, options)
    this.name = new.target.name
  }
}

export interface FieldError {
  path: string
  message: string
}

export class ValidationError extends AppError {
  readonly status = 400
  readonly slug = 'validation-error'
  readonly title = 'Request is not valid'
  constructor (detail: string, readonly errors: FieldError[] = []) {
    super(detail)
    this.extras = { errors }
  }
}

export class InvalidPhoneNumberError extends AppError {
  readonly status = 400
  readonly slug = 'invalid-phone-number'
  readonly title = 'Phone number is not valid'
  constructor (readonly input: string, reason: string) {
    // The input as given, up to a number's length and a little more: a batch item may be any string.
    super(`${quoted(input.length > 40 ? `${input.slice(0, 40)}…` : input)} is not a valid phone number: ${reason}`)
  }
}

export class UnauthorizedError extends AppError {
  readonly status = 401
  readonly slug = 'unauthorized'
  readonly title = 'Authentication required'
  override headers = { 'www-authenticate': 'Bearer realm="reachroute"' }
}

export class ForbiddenError extends AppError {
  readonly status = 403
  readonly slug = 'forbidden'
  readonly title = 'Missing scope'
  constructor (readonly scope: string) {
    super(`this operation needs the scope "${scope}"`)
    this.extras = { required_scope: scope }
  }
}

export class NotFoundError extends AppError {
  readonly status = 404
  readonly slug = 'not-found'
  readonly title = 'Not found'
}

/** The path exists but does not take this method; Allow lists the methods it takes. */
export class MethodNotAllowedError extends AppError {
  readonly status = 405
  readonly slug = 'method-not-allowed'
  readonly title = 'Method not allowed'
  constructor (detail: string, allowed: readonly string[]) {
    super(detail)
    this.headers = { allow: allowed.join(', ') }
  }
}

/** The Accept header allows none of the media types the operation answers with. */
export class NotAcceptableError extends AppError {
  readonly status = 406
  readonly slug = 'not-acceptable'
  readonly title = 'Not acceptable'
}

export class ConflictError extends AppError {
  readonly status = 409
  readonly slug = 'conflict'
  readonly title = 'Conflict'
  constructor (detail: string, retryAfterSeconds?: number) {
    super(detail)
    if (retryAfterSeconds !== undefined) this.headers = { 'retry-after': String(retryAfterSeconds) }
  }
}

export class UnprocessableError extends AppError {
  readonly status = 422
  readonly slug = 'unprocessable'
  readonly title = 'Request cannot be processed'
}

/**
 * A campaign none of whose recipients can be taken (each refused: not valid): it would send nothing. Names how many
 * were refused and the first of them with their line (or position) and reason, as the 202 of a campaign taken does.
 */
export class NoRecipientTakenError extends UnprocessableError {
  constructor (rejected: { line: number, reason: string }[], refused: number) {
    const first = rejected.slice(0, 3).map(r => `line ${r.line}: ${r.reason}`).join('; ')
    super(`no recipient can be taken: all ${refused} were refused (${first}${refused > 3 ? '; …' : ''}); \`rejected\` lists the first ${rejected.length}`)
    this.extras = { recipients_rejected: refused, rejected }
  }
}

export class UnsupportedMediaTypeError extends AppError {
  readonly status = 415
  readonly slug = 'unsupported-media-type'
  readonly title = 'Unsupported media type'
}

/** An outside system we need gave no answer: a 503 saying when to try again. */
abstract class OutsideUnavailableError extends AppError {
  readonly status = 503
  constructor (detail: string, retryAfterSeconds = 5, options?: { cause?: unknown }) {
    super(detail, options)
    this.headers = { 'retry-after': String(retryAfterSeconds) }
  }
}

/** The reachability upstream gave no usable answer (timeout, network, 5xx after retries). */
export class UpstreamUnavailableError extends OutsideUnavailableError {
  readonly slug = 'upstream-unavailable'
  readonly title = 'Reachability upstream unavailable'
}

/** The key set that inbound tokens are checked against (AUTH_JWKS_URL) could not be had: our outage, not a bad token. */
export class AuthUnavailableError extends OutsideUnavailableError {
  readonly slug = 'auth-unavailable'
  readonly title = 'Token signing keys unavailable'
}

/** A Redis node's address in a text: host:port, IPv4:port or [IPv6]:port. */
const NODE_ADDRESS = /(?:\[[0-9A-Fa-f:.]+\]|\b\d{1,3}(?:\.\d{1,3}){3}|\b[A-Za-z][A-Za-z0-9-]*(?:\.[A-Za-z0-9-]+)*):\d{1,5}\b/g

export class StoreUnavailableError extends AppError {
  readonly status = 503
  readonly slug: string = 'store-unavailable'
  readonly title: string = 'Store unavailable'
  /** The detail as it came, Redis node addresses included: for the logs and the start's one line, never for a caller. */
  readonly logDetail: string
  constructor (detail: string, options?: { cause?: unknown }) {
    // A caller (even /readyz's, without a token) learns that a node does not answer, not where the nodes are.
    super(detail.replace(NODE_ADDRESS, 'a Redis node'), options)
    this.logDetail = detail
    this.headers = { 'retry-after': '2' }
  }
}

/**
 * The store stopped answering while a notification was being stored, and had not come back to say whether it
 * was: it may have been accepted (and then it will be delivered). The caller can read it by its id, or send the
 * request again with the same Idempotency-Key.
 */
export class OutcomeUnknownError extends StoreUnavailableError {
  override readonly slug = 'outcome-unknown'
  override readonly title = 'Outcome unknown'
  constructor (readonly notificationId: string, cause: Error) {
    super(`${cause instanceof StoreUnavailableError ? cause.logDetail : cause.message}; notification ${notificationId} may or may not have been stored. Read GET /v1/notifications/${notificationId} ` +
      'once the store answers (a 404 means it was not), or send the request again with the same Idempotency-Key (without one, sending it again may notify twice)', { cause })
    this.extras = { notification_id: notificationId }
  }
}

/** The process is shutting down: a request that reaches it now is refused before any work, so the caller retries elsewhere. */
export class ShuttingDownError extends AppError {
  readonly status = 503
  readonly slug = 'shutting-down'
  readonly title = 'Shutting down'
  constructor () {
    super('this instance is shutting down and takes no new requests; retry (another instance will answer)')
    this.headers = { 'retry-after': '1', connection: 'close' }
  }
}

/** A background worker of this process has stopped turning: readiness fails so the orchestrator can replace the process. */
export class WorkersStuckError extends AppError {
  readonly status = 503
  readonly slug = 'workers-stuck'
  readonly title = 'Workers stuck'
  constructor (detail: string) {
    super(detail)
    this.headers = { 'retry-after': '5' }
  }
}
