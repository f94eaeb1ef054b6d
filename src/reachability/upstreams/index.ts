import type { AccessTokenProvider } from '../../auth/oauth-token.js'
import { type Config, ConfigError } from '../../config.js'
import { CamaraUpstream } from './camara.js'
import { SandboxUpstream } from './sandbox.js'
import type { ReachabilityUpstream } from './upstream.js'
import { VonageUpstream } from './vonage.js'

/**
 * The upstream that config.reachability.provider names, built from plain options. A CAMARA one takes its access
 * tokens from `camaraTokens` (camaraAccessTokens()): shared with the subscriptions client, so the caller owns them.
 */
export function createUpstream (config: Config, camaraTokens: AccessTokenProvider | null): ReachabilityUpstream {
  const { provider, timeoutMs, retries, retryBaseMs, retryMaxMs, sandboxComebackSeconds } = config.reachability
  const http = { timeoutMs, retries, retryBaseMs, retryMaxMs }
  switch (provider) {
    case 'sandbox':
      return new SandboxUpstream({ comebackSeconds: sandboxComebackSeconds })
    case 'vonage': {
      const { baseUrl, insightsPath, applicationId, privateKey, purpose, jwtTtlSeconds } = config.vonage
      // loadConfig already demands these for this provider; a hand-built Config may not.
      if (!applicationId || !privateKey) {
        throw new ConfigError(['VONAGE_APPLICATION_ID and VONAGE_PRIVATE_KEY are required when REACHABILITY_PROVIDER=vonage'])
      }
      return new VonageUpstream({ baseUrl, path: insightsPath, applicationId, privateKey, purpose, jwtTtlSeconds, ...http })
    }
    case 'camara': {
      const { baseUrl } = config.camara
      if (!baseUrl) throw new ConfigError(['CAMARA_BASE_URL is required when REACHABILITY_PROVIDER=camara'])
      if (!camaraTokens) throw new TypeError('the CAMARA upstream needs the access tokens camaraAccessTokens() gives')
      return new CamaraUpstream({ baseUrl, tokens: camaraTokens, ...http })
    }
  }
}
