import { parseServiceAccount } from '../auth/fcm-token.js'
import { type Config, ConfigError } from '../config.js'
import type { Channels, PushChannel, SmsChannel } from './channel.js'
import { FcmPushChannel } from './fcm-push.js'
import { type ChannelLog, SandboxPushChannel, SandboxSmsChannel } from './sandbox.js'
import { VonageSmsChannel } from './vonage-sms.js'
import { WebhookPushChannel } from './webhook-push.js'

export type { ChannelLog } from './sandbox.js'

/** The adapters that config.channels.smsProvider and pushProvider name. */
export function createChannels (config: Config, log: ChannelLog): Channels {
  return { sms: createSmsChannel(config, log), push: createPushChannel(config, log) }
}

function createSmsChannel (config: Config, log: ChannelLog): SmsChannel {
  const { smsProvider, vonageMessagesBaseUrl, smsFrom, timeoutMs } = config.channels
  switch (smsProvider) {
    case 'sandbox':
      return new SandboxSmsChannel({ log })
    case 'vonage': {
      const { applicationId, privateKey, jwtTtlSeconds } = config.vonage
      // loadConfig already demands these for this provider; a hand-built Config may not.
      if (!applicationId || !privateKey) {
        throw new ConfigError(['VONAGE_APPLICATION_ID and VONAGE_PRIVATE_KEY are required when SMS_PROVIDER=vonage'])
      }
      return new VonageSmsChannel({ baseUrl: vonageMessagesBaseUrl, applicationId, privateKey, jwtTtlSeconds, from: smsFrom, timeoutMs })
    }
  }
}

function createPushChannel (config: Config, log: ChannelLog): PushChannel {
  const { pushProvider, timeoutMs } = config.channels
  switch (pushProvider) {
    case 'sandbox':
      return new SandboxPushChannel({ log })
    case 'fcm': {
      const { fcmServiceAccount, fcmProjectId, fcmBaseUrl, fcmTokenUrl } = config.channels
      if (!fcmServiceAccount) {
        throw new ConfigError(['FCM_SERVICE_ACCOUNT or FCM_SERVICE_ACCOUNT_PATH is required when PUSH_PROVIDER=fcm'])
      }
      return new FcmPushChannel({
        serviceAccount: parseServiceAccount(fcmServiceAccount),
        projectId: fcmProjectId,
        baseUrl: fcmBaseUrl,
        tokenUrl: fcmTokenUrl,
        timeoutMs,
      })
    }
    case 'webhook': {
      const { pushWebhookUrl, pushWebhookSecret } = config.channels
      if (!pushWebhookUrl || !pushWebhookSecret) {
        throw new ConfigError(['PUSH_WEBHOOK_URL and PUSH_WEBHOOK_SECRET are required when PUSH_PROVIDER=webhook'])
      }
      return new WebhookPushChannel({ url: pushWebhookUrl, secret: pushWebhookSecret, timeoutMs })
    }
  }
}
