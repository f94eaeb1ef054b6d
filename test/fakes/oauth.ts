import { randomUUID } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'
import { type Reply, Script, startFakeServer } from './scripted-server.js'

// A fake OAuth2 token endpoint for the client credentials grant (RFC 6749 section 4.4), as CAMARA operators and
// aggregators run one. It checks the grant type, the client's HTTP Basic credentials (each form-urlencoded before
// they were joined, section 2.3.1) and the scope, and issues tokens that expire on its clock: an API taking its
// tokens (the fake CAMARA) asks `accepts`.

export const TOKEN_PATH = '/oauth2/token'

export interface FakeOAuthOptions {
  clientId: string
  clientSecret: string
  /** The scope a request must ask for, exactly; unset, a request must ask for none. */
  scope?: string
  /** expires_in of issued tokens; 3600 by default. */
  expiresInSeconds?: number
  /** The clock tokens expire by; Date.now by default. */
  now?: () => number
}

export interface OAuthTokenRequest {
  headers: IncomingHttpHeaders
  form: URLSearchParams
  /** Why the fake refused the request, when it did. */
  rejected: string | undefined
  /** The access token issued, when one was. */
  issued: string | undefined
}

export interface FakeOAuth {
  /** Where the token requests go (CAMARA_TOKEN_URL). */
  tokenUrl: string
  requests: OAuthTokenRequest[]
  /** How many access tokens it has issued. */
  issued (): number
  /** Whether an API takes this token: issued here, not expired, not revoked. */
  accepts (token: string): boolean
  /** Later calls with this token are refused. */
  revoke (token: string): void
  /** Replies to the next token requests, whatever they hold (`script.next`). */
  script: Script
  close (): Promise<void>
}

export async function startFakeOAuth (options: FakeOAuthOptions): Promise<FakeOAuth> {
  const now = options.now ?? Date.now
  const expiresIn = options.expiresInSeconds ?? 3600
  const requests: OAuthTokenRequest[] = []
  const tokens = new Map<string, number>()
  const script = new Script()

  const server = await startFakeServer(received => {
    const request: OAuthTokenRequest = { headers: received.headers, form: new URLSearchParams(received.rawBody), rejected: undefined, issued: undefined }
    requests.push(request)
    const scripted = script.take('')
    if (scripted) {
      request.rejected = `scripted ${scripted.status}`
      return scripted
    }
    const refuse = (status: number, error: string, description: string): Reply => {
      request.rejected = `${error}: ${description}`
      const headers: Record<string, string> = status === 401 ? { 'www-authenticate': 'Basic realm="token"' } : {}
      return { status, headers: { 'cache-control': 'no-store', ...headers }, json: { error, error_description: description } }
    }
    if (received.method !== 'POST' || received.path !== TOKEN_PATH) return refuse(400, 'invalid_request', `${received.method} ${received.path}`)
    if (!String(received.headers['content-type']).startsWith('application/x-www-form-urlencoded')) return refuse(400, 'invalid_request', 'not form-encoded')
    const client = basicCredentials(received.headers.authorization)
    if (!client) return refuse(401, 'invalid_client', 'the client must authenticate with HTTP Basic')
    if (request.form.has('client_secret') || request.form.has('client_id')) return refuse(400, 'invalid_request', 'one way of authenticating the client, not two')
    if (client.id !== options.clientId || client.secret !== options.clientSecret) return refuse(401, 'invalid_client', 'Client authentication failed')
    if (request.form.get('grant_type') !== 'client_credentials') return refuse(400, 'unsupported_grant_type', `grant_type ${request.form.get('grant_type')}`)
    if (request.form.get('scope') !== (options.scope ?? null)) return refuse(400, 'invalid_scope', `scope ${request.form.get('scope')}`)
    const token = `camara-at-${randomUUID()}`
    tokens.set(token, now() + expiresIn * 1000)
    request.issued = token
    return {
      status: 200,
      headers: { 'cache-control': 'no-store' },
      json: { access_token: token, token_type: 'Bearer', expires_in: expiresIn, ...(options.scope ? { scope: options.scope } : {}) },
    }
  })

  return {
    tokenUrl: server.url + TOKEN_PATH,
    requests,
    issued: () => tokens.size,
    accepts: token => (tokens.get(token) ?? 0) > now(),
    revoke: token => { tokens.set(token, 0) },
    script,
    close: server.close,
  }
}

/** Client id and secret from `Basic base64(urlencoded(id):urlencoded(secret))`. */
function basicCredentials (authorization: string | undefined): { id: string, secret: string } | undefined {
  const match = /^Basic ([A-Za-z0-9+/=]+)$/.exec(authorization ?? '')
  if (!match) return undefined
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  if (colon < 0) return undefined
  const formDecode = (value: string) => decodeURIComponent(value.replaceAll('+', ' '))
  try {
    return { id: formDecode(decoded.slice(0, colon)), secret: formDecode(decoded.slice(colon + 1)) }
  } catch {
    return undefined
  }
}
