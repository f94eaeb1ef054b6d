import type { FastifyBaseLogger, FastifyServerOptions } from 'fastify'
import { maskPhoneNumber } from './domain/phone.js'

// What the logs may hold: phone numbers only masked (+44*******456), and never a token, secret,
// message text or push token. Every line of a request carries its id (reqId) through Fastify's child logger.

type LoggerOptions = Exclude<FastifyServerOptions['logger'], boolean | undefined>

/** A "+" (or %2B) and at least 6 digits, separators allowed between them: how numbers look in E.164 and as typed. */
const PLUS_NUMBER = /(?:\+|%2[Bb])\d(?:[\d ().-]|%20)*\d/g
/** In URLs also a bare run of at least 6 digits not glued to a word before it (ids like ntf_07_ab12… are left alone). */
const URL_NUMBER = /(?:\+|%2[Bb])\d(?:[\d ().-]|%20)*\d|(?<![A-Za-z0-9_])\d(?:[\d ().-]|%20)*\d/g

function maskMatch (match: string): string {
  const digits = match.replace(/%2[Bb]|%20/g, ' ').replace(/\D/g, '')
  if (digits.length < 6) return match
  return maskPhoneNumber(/^(?:\+|%2[Bb])/.test(match) ? `+${digits}` : digits)
}

/** Masks every "+"-prefixed phone number in a text (messages, error texts). */
export function maskPhoneNumbers (text: string): string {
  return text.replace(PLUS_NUMBER, maskMatch)
}

/** Percent-encoded characters a number can be written with: digits, "+", space, "(", ")", "-", "." (and "%" itself). */
const NUMBER_ESCAPE = /%(2[0589BbDdEe]|3\d)/g

/**
 * Masks phone numbers in a request URL: path segments like /v1/reachability/+447911123456 and query values. The
 * characters a number is written with are decoded first (up to three times over), so +44%2D7911… or %2B%34%34… are
 * masked as the number the route reads.
 */
export function maskUrl (url: string): string {
  let decoded = url
  for (let i = 0; i < 3 && decoded.includes('%'); i++) {
    decoded = decoded.replace(NUMBER_ESCAPE, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)))
  }
  return decoded.replace(URL_NUMBER, maskMatch)
}

/** Fastify's request serializer, with the URL masked. */
function serializeRequest (request: { method: string, url: string, headers?: Record<string, unknown>, host?: string, ip?: string, socket?: { remotePort?: number } }) {
  return {
    method: request.method,
    url: maskUrl(request.url),
    host: request.host,
    remoteAddress: request.ip,
    remotePort: request.socket?.remotePort,
  }
}

interface SerializedError {
  type: string
  message: string
  stack: string
  [key: string]: unknown
}

/** An error's type, message, stack, plain fields (code, status…) and causes, their texts masked; never its objects (headers, bodies). */
export function serializeError (err: Error, depth = 0): SerializedError {
  const out: SerializedError = { type: err.name, message: maskPhoneNumbers(err.message), stack: maskPhoneNumbers(err.stack ?? '') }
  for (const [key, value] of Object.entries(err)) {
    if (key in out || key === 'cause') continue
    if (typeof value === 'string') out[key] = maskPhoneNumbers(value)
    else if (typeof value === 'number' || typeof value === 'boolean') out[key] = value
  }
  if (err.cause instanceof Error && depth < 3) out.cause = serializeError(err.cause, depth + 1)
  else if (typeof err.cause === 'string') out.cause = maskPhoneNumbers(err.cause)
  return out
}

/** What a log call put under `err`: usually an Error, but not always. */
function serializeAnyError (err: unknown): SerializedError {
  return err instanceof Error ? serializeError(err) : { type: typeof err, message: maskPhoneNumbers(String(err)), stack: '' }
}

/** Paths pino replaces with "[redacted]", wherever a log call puts them. */
export const REDACTED_PATHS = [
  'req.headers.authorization', 'req.headers.cookie', 'req.headers["x-api-key"]', 'req.body',
  'headers.authorization', 'headers.cookie', '*.headers.authorization', 'authorization', '*.authorization',
  'token', '*.token', 'push_token', '*.push_token', 'pushToken', '*.pushToken',
  'accessToken', '*.accessToken', 'access_token', '*.access_token',
  'secret', '*.secret', 'clientSecret', '*.clientSecret', 'password', '*.password', 'privateKey', '*.privateKey',
  'body', 'text', '*.text', 'message.sms', 'message.push', '*.message.sms', '*.message.push',
]

/** The logger options of the service: `given` (a test's stream, level) on top of the masking and redaction, which always apply. */
export function loggerOptions (level: string, given?: FastifyServerOptions['logger']): FastifyServerOptions['logger'] {
  if (given === false) return false
  const custom: LoggerOptions = typeof given === 'object' ? given : {}
  return {
    level,
    ...custom,
    serializers: { req: serializeRequest, err: serializeAnyError, ...custom.serializers },
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
    formatters: {
      ...custom.formatters,
      log: fields => {
        const masked: Record<string, unknown> = {}
        for (const [key, value] of Object.entries(fields)) masked[key] = typeof value === 'string' ? maskPhoneNumbers(value) : value
        return custom.formatters?.log ? custom.formatters.log(masked) : masked
      },
    },
    hooks: {
      logMethod (args, method) {
        // log.error(err) takes its message from the error: give the masked one.
        const [first] = args
        if (first instanceof Error && args.length === 1) return method.call(this, { err: first }, maskPhoneNumbers(first.message))
        method.apply(this, args.map(arg => typeof arg === 'string' ? maskPhoneNumbers(arg) : arg) as Parameters<typeof method>)
      },
    },
  }
}

type ChildLoggerFactoryArgs = Parameters<NonNullable<FastifyServerOptions['childLoggerFactory']>>
type Bindings = ChildLoggerFactoryArgs[1]
type ChildLoggerOptions = ChildLoggerFactoryArgs[2]
type LevelMethod = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace'

/**
 * A request's logger whose pino child is made on its first enabled log call. Making a child serializes its
 * bindings through the redaction (the wildcard paths apply to every value): a per-request cost that a
 * request logging nothing at the configured level need not pay.
 */
class LazyChildLogger {
  private made: FastifyBaseLogger | undefined

  constructor (private readonly parent: FastifyBaseLogger & { isLevelEnabled?: (level: string) => boolean }, private readonly bindings: Bindings, private readonly options: ChildLoggerOptions) {}

  private get logger (): FastifyBaseLogger {
    return (this.made ??= this.parent.child(this.bindings, this.options))
  }

  get level (): string {
    return this.made?.level ?? this.parent.level
  }

  set level (level: string) {
    this.logger.level = level
  }

  isLevelEnabled (level: string): boolean {
    if (this.made) return (this.made as { isLevelEnabled?: (l: string) => boolean }).isLevelEnabled?.(level) ?? true
    return this.parent.isLevelEnabled?.(level) ?? true
  }

  child (bindings: Bindings, options?: ChildLoggerOptions): FastifyBaseLogger {
    return this.logger.child(bindings, options)
  }

  fatal (...args: unknown[]): void { this.log('fatal', args) }
  error (...args: unknown[]): void { this.log('error', args) }
  warn (...args: unknown[]): void { this.log('warn', args) }
  info (...args: unknown[]): void { this.log('info', args) }
  debug (...args: unknown[]): void { this.log('debug', args) }
  trace (...args: unknown[]): void { this.log('trace', args) }
  silent (): void {}

  private log (level: LevelMethod, args: unknown[]): void {
    if (!this.isLevelEnabled(level)) return
    (this.logger[level] as (...a: unknown[]) => void)(...args)
  }
}

/** Fastify's childLoggerFactory: each request's logger, its child made only when something is logged (a route's own log level makes it at once). */
export function requestLogger (logger: FastifyBaseLogger, bindings: Bindings, options: ChildLoggerOptions): FastifyBaseLogger {
  if (options.level !== undefined) return logger.child(bindings, options)
  return new LazyChildLogger(logger, bindings, options) as unknown as FastifyBaseLogger
}

