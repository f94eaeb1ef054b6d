import t, { type Test } from 'tap'
import { ConfigError, loadConfig } from '../../../src/config.js'
import { CamaraUpstream } from '../../../src/reachability/upstreams/camara.js'
import { camaraAccessTokens, type TokenLog } from '../../../src/reachability/upstreams/camara-auth.js'
import { createUpstream } from '../../../src/reachability/upstreams/index.js'
import { SandboxUpstream } from '../../../src/reachability/upstreams/sandbox.js'
import { VonageUpstream } from '../../../src/reachability/upstreams/vonage.js'
import { startFakeCamara } from '../../fakes/camara.js'
import { startFakeOAuth } from '../../fakes/oauth.js'
import { generateApplicationKeys } from '../../fakes/vonage.js'

t.test('the provider named in the config is the one built', async t => {
  const { privateKey } = await generateApplicationKeys()
  const cases = [
    [{}, SandboxUpstream],
    [{ REACHABILITY_PROVIDER: 'vonage', VONAGE_APPLICATION_ID: 'app-1', VONAGE_PRIVATE_KEY: privateKey }, VonageUpstream],
    [{ REACHABILITY_PROVIDER: 'camara', CAMARA_BASE_URL: 'https://op.example/device-reachability-status/v1', CAMARA_ACCESS_TOKEN: 'x' }, CamaraUpstream],
    [{
      REACHABILITY_PROVIDER: 'camara', CAMARA_BASE_URL: 'https://op.example/device-reachability-status/v1',
      CAMARA_TOKEN_URL: 'https://op.example/token', CAMARA_CLIENT_ID: 'rr-client', CAMARA_CLIENT_SECRET: 's3cret',
    }, CamaraUpstream],
  ] as const
  for (const [env, kind] of cases) {
    const config = loadConfig(env)
    const tokens = config.reachability.provider === 'camara' ? camaraAccessTokens(config) : null
    const upstream = createUpstream(config, tokens)
    t.type(upstream, kind)
    await upstream.close()
    await tokens?.close()
  }
})

t.test('a hand-built config without the provider\'s credentials is refused', async t => {
  const config = loadConfig({})
  t.throws(() => createUpstream({ ...config, reachability: { ...config.reachability, provider: 'vonage' } }, null), ConfigError)
  const camara = { ...config, reachability: { ...config.reachability, provider: 'camara' as const } }
  t.throws(() => createUpstream(camara, null), ConfigError)
  t.throws(() => camaraAccessTokens(camara), ConfigError)
})

/** The CAMARA upstream as the reachability plugin builds it: its tokens closed after it. */
function camaraUpstream (t: Test, env: Record<string, string>, log: TokenLog) {
  const config = loadConfig(env)
  const tokens = camaraAccessTokens(config, log)
  const upstream = createUpstream(config, tokens)
  t.teardown(async () => { await upstream.close(); await tokens.close() })
  return upstream
}

t.test('CAMARA client credentials: a token URL refusing them is logged as an error naming it, once per token request; the refusal stands 30 s', async t => {
  const oauth = await startFakeOAuth({ clientId: 'rr-client', clientSecret: 'the-secret' })
  const camara = await startFakeCamara({ oauth })
  const logged: { level: string, obj: object, msg: string }[] = []
  const log = {
    error: (obj: object, msg: string) => { logged.push({ level: 'error', obj, msg }) },
    warn: (obj: object, msg: string) => { logged.push({ level: 'warn', obj, msg }) },
  }
  t.teardown(async () => { await camara.close(); await oauth.close() })
  const upstream = camaraUpstream(t, {
    REACHABILITY_PROVIDER: 'camara', CAMARA_BASE_URL: camara.reachabilityUrl,
    CAMARA_TOKEN_URL: oauth.tokenUrl, CAMARA_CLIENT_ID: 'rr-client', CAMARA_CLIENT_SECRET: 'a-wrong-secret',
  }, log)
  await Promise.all([upstream.check('+990123400'), upstream.check('+990123411')])
  t.match(logged, [{ level: 'error', obj: { tokenUrl: oauth.tokenUrl, err: { message: /invalid_client: Client authentication failed/ } }, msg: /refused our client credentials/ }])
  t.equal(logged.length, 1)
  t.notMatch(JSON.stringify(logged), /a-wrong-secret/, 'the secret is not logged')

  const asked = oauth.requests.length
  t.match(await upstream.check('+990123400'), { status: { code: 'UNAUTHORIZED', message: /invalid_client/ } }, 'the refusal stands for a while')
  t.equal(oauth.requests.length, asked, 'without a new token request')
  t.equal(logged.length, 1, 'nor a new log line')

  // A token URL that fails (not a refusal) is a warning, and no answer.
  const right = camaraUpstream(t, {
    REACHABILITY_PROVIDER: 'camara', CAMARA_BASE_URL: camara.reachabilityUrl,
    CAMARA_TOKEN_URL: oauth.tokenUrl, CAMARA_CLIENT_ID: 'rr-client', CAMARA_CLIENT_SECRET: 'the-secret',
  }, log)
  oauth.script.next({ status: 503, json: { error: 'temporarily_unavailable' } })
  await t.rejects(right.check('+990123400'), { name: 'UpstreamFailure' })
  t.match(logged[1], { level: 'warn', obj: { tokenUrl: oauth.tokenUrl }, msg: /gave no access token/ })
})
