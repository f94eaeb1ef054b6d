import { OAuthTokenProvider, type OAuthTokenProviderOptions, type TokenRequest } from './oauth-token.js'

// The OAuth2 client credentials grant (RFC 6749 section 4.4), as CAMARA operators and aggregators issue their
// access tokens: the client authenticates with HTTP Basic and asks for a token of its own, for its scope.

export interface ClientCredentialsOptions extends OAuthTokenProviderOptions {
  clientId: string
  clientSecret: string
  /** Space-separated scopes to ask for; unset, the token URL grants its default. */
  scope?: string | undefined
}

export class ClientCredentialsTokenProvider extends OAuthTokenProvider {
  private readonly authorization: string

  constructor (private readonly options: ClientCredentialsOptions) {
    super(options)
    // RFC 6749 section 2.3.1: id and secret are each form-urlencoded before they are joined for HTTP Basic.
    const basic = Buffer.from(`${formEncode(options.clientId)}:${formEncode(options.clientSecret)}`).toString('base64')
    this.authorization = `Basic ${basic}`
  }

  protected grant (): Promise<TokenRequest> {
    const form: Record<string, string> = { grant_type: 'client_credentials' }
    if (this.options.scope) form.scope = this.options.scope
    return Promise.resolve({ form, headers: { authorization: this.authorization } })
  }
}

/** application/x-www-form-urlencoded, as a form field's value is encoded (a space is "+"). */
function formEncode (value: string): string {
  return new URLSearchParams({ v: value }).toString().slice(2)
}
