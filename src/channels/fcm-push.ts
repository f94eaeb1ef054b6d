import { z } from 'zod'
import { FcmAccessTokenProvider, FcmTokenError, type ServiceAccount } from '../auth/fcm-token.js'
import { ConfigError } from '../config.js'
import { type HttpAnswer, HttpClient, isRetryableStatus, retryAfterSeconds } from '../http/retry.js'
import type { DeliveryOutcome, PushChannel, PushMessage } from './channel.js'

// Push through FCM HTTP v1 (docs/upstream-apis.md section 5). One attempt per call.

/** FCM refuses messages whose payload (notification and data) is larger. */
export const FCM_PAYLOAD_LIMIT_BYTES = 4096
/** The data key carrying reachroute's notification id, so a repeated message is recognisable. */
export const NOTIFICATION_ID_DATA_KEY = 'reachroute_id'

export interface FcmPushChannelOptions {
  serviceAccount: ServiceAccount
  /** Defaults to the service account's project_id. */
  projectId?: string | undefined
  /** e.g. https://fcm.googleapis.com */
  baseUrl: string
  /** e.g. https://oauth2.googleapis.com/token */
  tokenUrl: string
  /** Budget of one request, to FCM or to the token URL. */
  timeoutMs: number
  now?: () => number
}

const fcmErrorAnswer = z.object({
  error: z.object({
    code: z.number().optional(),
    message: z.string().optional(),
    status: z.string().optional(),
    details: z.array(z.looseObject({
      '@type': z.string().optional(),
      errorCode: z.string().optional(),
      fieldViolations: z.array(z.looseObject({ field: z.string().optional() })).optional(),
    })).optional(),
  }),
})

type FcmError = z.infer<typeof fcmErrorAnswer>['error']

export class FcmPushChannel implements PushChannel {
  readonly provider = 'fcm'
  private readonly http: HttpClient
  private readonly tokens: FcmAccessTokenProvider
  private readonly path: string

  constructor (options: FcmPushChannelOptions) {
    const projectId = options.projectId ?? options.serviceAccount.project_id
    if (!projectId) throw new ConfigError(['FCM_PROJECT_ID: required when the service account has no project_id'])
    this.path = `/v1/projects/${encodeURIComponent(projectId)}/messages:send`
    this.http = new HttpClient(options.baseUrl, { timeoutMs: options.timeoutMs, retries: 0, baseMs: 0, maxMs: 0 })
    this.tokens = new FcmAccessTokenProvider({
      serviceAccount: options.serviceAccount,
      tokenUrl: options.tokenUrl,
      timeoutMs: options.timeoutMs,
      ...(options.now ? { now: options.now } : {}),
    })
  }

  async sendPush (message: PushMessage): Promise<DeliveryOutcome> {
    const payload = {
      notification: { title: message.title, body: message.body },
      data: { ...message.data, [NOTIFICATION_ID_DATA_KEY]: message.notificationId },
    }
    const size = Buffer.byteLength(JSON.stringify(payload))
    if (size > FCM_PAYLOAD_LIMIT_BYTES) {
      return { kind: 'too_large', provider: this.provider, reason: `the payload is ${size} bytes, over FCM's limit of ${FCM_PAYLOAD_LIMIT_BYTES}` }
    }

    const body = JSON.stringify({
      message: { token: message.token, ...payload, android: { priority: 'HIGH', ttl: `${Math.max(0, Math.floor(message.ttlSeconds))}s` } },
    })
    // Our access token refused (revoked, expired early) sent nothing: sent once more at once with a fresh one, so one
    // revoked token costs no attempt, backoff or circuit-breaker failure.
    for (let tries = 1; ; tries++) {
      let accessToken: string
      try {
        accessToken = await this.tokens.token()
      } catch (err) {
        if (err instanceof FcmTokenError && !err.transient) return this.failed(`no access token: ${err.message}`)
        return this.retry(`no access token: ${(err as Error).message}`, err instanceof FcmTokenError ? err.retryAfterSeconds : undefined)
      }
      let answer: HttpAnswer
      try {
        answer = await this.http.send({
          method: 'POST',
          path: this.path,
          headers: { authorization: `Bearer ${accessToken}`, 'content-type': 'application/json; charset=utf-8', accept: 'application/json' },
          body,
        })
      } catch (err) {
        return this.retry(`no answer (${(err as Error).message})`)
      }
      if (tries === 1 && refusesAccessToken(answer)) {
        this.tokens.invalidate(accessToken)
        continue
      }
      return this.outcome(answer, accessToken)
    }
  }

  async close (): Promise<void> {
    await Promise.all([this.http.close(), this.tokens.close()])
  }

  private outcome ({ statusCode, headers, body }: HttpAnswer, accessToken: string): DeliveryOutcome {
    const json = readJson(body)
    if (statusCode >= 200 && statusCode < 300) {
      const name = (json as { name?: unknown } | undefined)?.name
      return { kind: 'sent', provider: this.provider, providerMessageId: typeof name === 'string' ? name : undefined }
    }
    const parsed = fcmErrorAnswer.safeParse(json)
    const error = parsed.success ? parsed.data.error : undefined
    const errorCode = error?.details?.find(d => d.errorCode)?.errorCode
    const code = errorCode ?? error?.status
    const reason = `${code ?? `HTTP ${statusCode}`}: ${error?.message ?? `HTTP ${statusCode}`}`

    // FCM's own 401 says our access token is no good (revoked, expired early). THIRD_PARTY_AUTH_ERROR
    // is also a 401, but about the APNs or web push credentials in the Firebase project: no new token mends that.
    if (statusCode === 401 && errorCode !== 'THIRD_PARTY_AUTH_ERROR') {
      this.tokens.invalidate(accessToken)
      return this.retry(`the access token was refused (${reason}); a new one is fetched for the next attempt`)
    }
    switch (code) {
      case 'UNREGISTERED':
        return { kind: 'token_invalid', provider: this.provider, reason }
      case 'INVALID_ARGUMENT':
        // The token is dead when FCM says so: a violation named on message.token, or (no field named) a message about
        // the token or FCM's generic "Request contains an invalid argument." (what it says of many a malformed token).
        // A message naming something else ("Invalid data payload key: from") is our message's fault: no failover.
        return aboutTheToken(error)
          ? { kind: 'token_invalid', provider: this.provider, reason }
          : this.failed(reason)
      case 'QUOTA_EXCEEDED':
      case 'UNAVAILABLE':
      case 'INTERNAL':
        return this.retry(reason, retryAfterSeconds(headers))
    }
    if (isRetryableStatus(statusCode)) return this.retry(reason, retryAfterSeconds(headers))
    return this.failed(reason)
  }

  private failed (reason: string): DeliveryOutcome {
    return { kind: 'failed', provider: this.provider, reason }
  }

  private retry (reason: string, retryAfter?: number): DeliveryOutcome {
    return { kind: 'retry', provider: this.provider, reason, retryAfterSeconds: retryAfter }
  }
}

function aboutTheToken (error: FcmError | undefined): boolean {
  const fields = (error?.details ?? []).flatMap(d => d.fieldViolations ?? []).map(v => v.field).filter(f => f !== undefined)
  if (fields.length > 0) return fields.every(field => field === 'message.token')
  return /token|contains an invalid argument/i.test(error?.message ?? '')
}

function readJson (body: string): unknown {
  try {
    return JSON.parse(body)
  } catch {
    return undefined
  }
}

/** FCM's own 401: our access token is no good. THIRD_PARTY_AUTH_ERROR (APNs or web push credentials) is not about it. */
function refusesAccessToken ({ statusCode, body }: HttpAnswer): boolean {
  if (statusCode !== 401) return false
  const parsed = fcmErrorAnswer.safeParse(readJson(body))
  return !(parsed.success && parsed.data.error.details?.some(d => d.errorCode === 'THIRD_PARTY_AUTH_ERROR'))
}
