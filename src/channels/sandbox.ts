import { randomUUID } from 'node:crypto'
import { maskPhoneNumber } from '../domain/phone.js'
import type { DeliveryOutcome, PushChannel, PushMessage, SmsChannel, SmsMessage } from './channel.js'

// Channels that send nothing: every message counts as sent, is logged (masked, without its
// content) and kept in a short in-process list for tests and demos.

/** A pino-style log call: (fields, message). */
export type ChannelLog = (obj: Record<string, unknown>, msg: string) => void

export interface SandboxOptions {
  log: ChannelLog
  /** How many deliveries are kept, the oldest dropped first; 1000 by default. */
  keep?: number
  now?: () => number
}

/** Push tokens starting with this are dead, to show a failover to SMS. */
export const SANDBOX_INVALID_TOKEN_PREFIX = 'invalid'

/** A message as the sandbox kept it. */
export type Delivered<M> = M & { messageId: string, at: string }

/** What both sandbox channels do: keep each message as delivered (the latest `keep`), log it without its content, answer sent. */
abstract class SandboxChannel<M extends SmsMessage | PushMessage> {
  readonly provider = 'sandbox'
  protected readonly log: ChannelLog
  private readonly now: () => number
  private readonly keep: number
  private readonly kept: Delivered<M>[] = []

  constructor (options: SandboxOptions) {
    this.log = options.log
    this.now = options.now ?? Date.now
    this.keep = options.keep ?? 1000
  }

  /** `fields`: what the log line may say of the message besides its ids (never its content). */
  protected deliver (message: M, channel: 'sms' | 'push', fields: Record<string, unknown> = {}): DeliveryOutcome {
    const messageId = `sandbox-${randomUUID()}`
    this.kept.push({ ...message, messageId, at: new Date(this.now()).toISOString() })
    if (this.kept.length > this.keep) this.kept.splice(0, this.kept.length - this.keep)
    this.log({ channel, provider: this.provider, notificationId: message.notificationId, ...fields, messageId },
      `sandbox: ${channel === 'sms' ? 'SMS' : 'push'} delivered`)
    return { kind: 'sent', provider: this.provider, providerMessageId: messageId }
  }

  /** The latest deliveries, oldest first. */
  deliveries (): Delivered<M>[] {
    return [...this.kept]
  }

  async close (): Promise<void> {}
}

export class SandboxSmsChannel extends SandboxChannel<SmsMessage> implements SmsChannel {
  async sendSms (message: SmsMessage): Promise<DeliveryOutcome> {
    return this.deliver(message, 'sms', { to: maskPhoneNumber(message.to) })
  }
}

export class SandboxPushChannel extends SandboxChannel<PushMessage> implements PushChannel {
  async sendPush (message: PushMessage): Promise<DeliveryOutcome> {
    if (message.token.startsWith(SANDBOX_INVALID_TOKEN_PREFIX)) {
      this.log({ channel: 'push', provider: this.provider, notificationId: message.notificationId }, 'sandbox: push token is dead')
      return { kind: 'token_invalid', provider: this.provider, reason: 'UNREGISTERED (sandbox)' }
    }
    return this.deliver(message, 'push')
  }
}
