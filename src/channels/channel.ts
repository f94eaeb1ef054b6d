// The ports to the delivery providers. An adapter makes ONE attempt and says what came of it;
// retries, backoff and failover are the delivery worker's business, so no worker blocks on a slow provider.

export type ChannelName = 'push' | 'sms'

export interface SmsMessage {
  /** reachroute's notification id: sent to the provider (Vonage client_ref) so a repeat is recognisable. */
  notificationId: string
  to: string
  text: string
  ttlSeconds: number
}

export interface PushMessage {
  notificationId: string
  token: string
  title: string
  body: string
  data?: Record<string, string> | undefined
  ttlSeconds: number
}

export type DeliveryOutcome =
  /** The provider took the message. */
  | { kind: 'sent', provider: string, providerMessageId?: string | undefined }
  /** Network error, timeout, 429 or 5xx: worth another attempt later. */
  | { kind: 'retry', provider: string, reason: string, retryAfterSeconds?: number | undefined }
  /** The provider refused the message for good (4xx). */
  | { kind: 'failed', provider: string, reason: string }
  /** The push token is dead or invalid (FCM UNREGISTERED / INVALID_ARGUMENT): fail over to SMS if allowed. */
  | { kind: 'token_invalid', provider: string, reason: string }
  /** The push provider cannot carry this message (FCM: a payload over 4096 bytes): fail over to SMS if allowed. */
  | { kind: 'too_large', provider: string, reason: string }
  /** No call was made: the provider's circuit is open (blockedMs until a probe may go). Not an attempt. */
  | { kind: 'blocked', provider: string, reason: string, blockedMs: number }

export interface SmsChannel {
  readonly provider: string
  sendSms (message: SmsMessage): Promise<DeliveryOutcome>
  /**
   * How long until a call may be made (a circuit breaker's open time left); 0 or absent: now. Asked before a call
   * only: a positive answer, the call held back, counts as one the circuit turned away.
   */
  blockedForMs?: () => number
  /** How long the provider has been failing (since its circuit opened, through failed probes); 0 or absent: it is not. */
  failingForMs?: () => number
  close (): Promise<void>
}

export interface PushChannel {
  readonly provider: string
  sendPush (message: PushMessage): Promise<DeliveryOutcome>
  /**
   * How long until a call may be made (a circuit breaker's open time left); 0 or absent: now. Asked before a call
   * only: a positive answer, the call held back, counts as one the circuit turned away.
   */
  blockedForMs?: () => number
  /** How long the provider has been failing (since its circuit opened, through failed probes); 0 or absent: it is not. */
  failingForMs?: () => number
  close (): Promise<void>
}

export interface Channels {
  sms: SmsChannel
  push: PushChannel
}
