import { Agent, request } from 'undici'
import { CallbackPolicy } from './callback-policy.js'
import { hmacSignature } from '../http/signature.js'
import { isRetryableStatus, isTransientError } from '../http/retry.js'

export const CALLBACK_SIGNATURE_HEADER = 'x-reachroute-signature'

export interface StatusCallback {
  id: string
  status: string
  channel: string
  client_ref: string | null
  metadata: Record<string, string> | null
  at: string
}

export type CallbackOutcome = { ok: true } | { ok: false, retry: boolean, reason: string }

/**
 * POSTs a final status to the caller's callback_url, signed with HMAC-SHA256 of the body. Without a secret, or to a
 * host CALLBACK_ALLOWED_HOSTS does not allow, it posts nothing and says why (accepted before the settings changed,
 * or by an API process set up otherwise).
 */
export class CallbackSender {
  private readonly agent: Agent
  private readonly policy: CallbackPolicy

  constructor (private readonly options: { secret: string | undefined, timeoutMs: number, allowedHosts?: readonly string[] }) {
    this.policy = new CallbackPolicy({ signed: options.secret !== undefined, allowedHosts: options.allowedHosts ?? [] })
    this.agent = new Agent({ headersTimeout: options.timeoutMs, bodyTimeout: options.timeoutMs, connectTimeout: options.timeoutMs, keepAliveTimeout: 10_000 })
  }

  async send (url: string, callback: StatusCallback): Promise<CallbackOutcome> {
    // Checked at accept too; here for a notification accepted before the settings changed.
    const refusal = this.policy.refusal(url)
    const { secret } = this.options
    // The policy refuses every URL when there is no secret: past this line there is one.
    if (refusal !== undefined || secret === undefined) return { ok: false, retry: false, reason: refusal ?? 'no CALLBACK_SIGNING_SECRET' }
    const body = JSON.stringify(callback)
    const headers: Record<string, string> = {
      'content-type': 'application/json', 'user-agent': 'reachroute', [CALLBACK_SIGNATURE_HEADER]: hmacSignature(body, secret),
    }
    try {
      const res = await request(url, { method: 'POST', body, headers, dispatcher: this.agent, signal: AbortSignal.timeout(this.options.timeoutMs) })
      await res.body.dump()
      if (res.statusCode >= 200 && res.statusCode < 300) return { ok: true }
      return { ok: false, retry: isRetryableStatus(res.statusCode) || res.statusCode === 408, reason: `callback answered HTTP ${res.statusCode}` }
    } catch (err) {
      const e = err as Error
      const transient = isTransientError(err) || e.name === 'TimeoutError' || e.name === 'AbortError'
      // Anything else (a refused connection included) may pass: the receiver gets its chances until attempts run out.
      return { ok: false, retry: true, reason: `callback failed: ${transient ? 'network error or timeout' : e.message}` }
    }
  }

  async close (): Promise<void> {
    await this.agent.close()
  }
}
