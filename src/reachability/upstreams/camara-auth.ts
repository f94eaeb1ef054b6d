import { ClientCredentialsTokenProvider } from '../../auth/client-credentials.js'
import { type AccessTokenProvider, StaticAccessToken } from '../../auth/oauth-token.js'
import { type Config, ConfigError } from '../../config.js'

// How the CAMARA clients (the reachability upstream, the subscriptions client) get their bearer token: a static
// CAMARA_ACCESS_TOKEN, or OAuth2 client credentials exchanged at CAMARA_TOKEN_URL for tokens renewed before they expire.

/**
 * The lifetime assumed for a token answered without expires_in: short, so a token whose real lifetime is
 * unknown is renewed often (a token refused before then is replaced at once: see sendWithToken).
 */
const ASSUMED_EXPIRES_IN_SECONDS = 300
/**
 * A refusal of our client credentials is the answer for this long without asking the token URL again: lookups
 * would otherwise each make a token request, at the traffic's rate. Fixing the credentials means a restart anyway.
 */
export const CAMARA_REFUSAL_KEPT_MS = 30_000

export interface TokenLog {
  error: (obj: object, msg: string) => void
  warn: (obj: object, msg: string) => void
}

export function camaraAccessTokens (config: Config, log?: TokenLog): AccessTokenProvider {
  const { accessToken, clientCredentials } = config.camara
  if (clientCredentials) {
    const { tokenUrl } = clientCredentials
    return new ClientCredentialsTokenProvider({
      ...clientCredentials,
      timeoutMs: config.reachability.timeoutMs,
      assumedExpiresInSeconds: ASSUMED_EXPIRES_IN_SECONDS,
      refusalKeptMs: CAMARA_REFUSAL_KEPT_MS,
      onError: err => err.refused
        ? log?.error({ err, tokenUrl }, 'the CAMARA token URL refused our client credentials (CAMARA_CLIENT_ID, CAMARA_CLIENT_SECRET, CAMARA_SCOPE)')
        : log?.warn({ err, tokenUrl }, 'the CAMARA token URL gave no access token for now; the next request asks again'),
    })
  }
  // loadConfig already demands one of them for this provider; a hand-built Config may not.
  if (!accessToken) {
    throw new ConfigError(['CAMARA_ACCESS_TOKEN, or CAMARA_TOKEN_URL, CAMARA_CLIENT_ID and CAMARA_CLIENT_SECRET, are required when REACHABILITY_PROVIDER=camara'])
  }
  return new StaticAccessToken(accessToken)
}
