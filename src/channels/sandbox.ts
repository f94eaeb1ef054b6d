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

export interface SandboxSms extends SmsMessage {
  messageId: string
  at: string
}

export interface SandboxPush extends PushMessage {
  messageId: string
  at: string
}

/** Push tokens starting with this are dead, to show a failover to SMS. */
export const SANDBOX_INVALID_TOKEN_PREFIX = 'invalid'

class DeliveryLog<T> {
  private readonly items: T[] = []
  constructor (private readonly keep: number) {}

  add (item: T): void {
    this.items.push(item)
    if (this.items.length > this.keep) this.items.splice(0, this.items.length - this.keep)
  }

  list (): T[] {
    return [...this.items]
  }
}

export class SandboxSmsChannel implements SmsChannel {
  readonly provider = 'sandbox'
  private readonly log: ChannelLog
  private readonly now: () => number
  private readonly kept: DeliveryLog<SandboxSms>

  constructor (options: SandboxOptions) {
    this.log = options.log
    this.now = options.now ?? Date.now
    this.kept = new DeliveryLog(options.keep ?? 1000)
  }

  async sendSms (message: SmsMessage): Promise<DeliveryOutcome> {
    const messageId = `sandbox-${randomUUID()}`
    this.kept.add({ ...message, messageId, at: new Date(this.now()).toISOString() })
    this.log({ channel: 'sms', provider: this.provider, notificationId: message.notificationId, to: maskPhoneNumber(message.to), messageId },
      'sandbox: SMS delivered')
    return { kind: 'sent', provider: this.provider, providerMessageId: messageId }
  }

  /** The latest deliveries, oldest first. */
  deliveries (): SandboxSms[] {
    return this.kept.list()
  }

  async close (): Promise<void> {}
}

export class SandboxPushChannel implements PushChannel {
  readonly provider = 'sandbox'
  private readonly log: ChannelLog
  private readonly now: () => number
  private readonly kept: DeliveryLog<SandboxPush>

  constructor (options: SandboxOptions) {
    this.log = options.log
    this.now = options.now ?? Date.now
    this.kept = new DeliveryLog(options.keep ?? 1000)
  }

  async sendPush (message: PushMessage): Promise<DeliveryOutcome> {
    if (message.token.startsWith(SANDBOX_INVALID_TOKEN_PREFIX)) {
      this.log({ channel: 'push', provider: this.provider, notificationId: message.notificationId }, 'sandbox: push token is dead')
      return { kind: 'token_invalid', provider: this.provider, reason: 'UNREGISTERED (sandbox)' }
    }
    const messageId = `sandbox-${randomUUID()}`
    this.kept.add({ ...message, messageId, at: new Date(this.now()).toISOString() })
    this.log({ channel: 'push', provider: this.provider, notificationId: message.notificationId, messageId }, 'sandbox: push delivered')
    return { kind: 'sent', provider: this.provider, providerMessageId: messageId }
  }

  /** The latest deliveries, oldest first. */
  deliveries (): SandboxPush[] {
    return this.kept.list()
  }

  async close (): Promise<void> {}
}
