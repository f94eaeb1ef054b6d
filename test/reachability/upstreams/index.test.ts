import t from 'tap'
import { ConfigError, loadConfig } from '../../../src/config.js'
import { CamaraUpstream } from '../../../src/reachability/upstreams/camara.js'
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
    const upstream = createUpstream(loadConfig(env))
    t.type(upstream, kind)
    await upstream.close()
  }
})

t.test('a hand-built config without the provider\'s credentials is refused', async t => {
  const config = loadConfig({})
  t.throws(() => createUpstream({ ...config, reachability: { ...config.reachability, provider: 'vonage' } }), ConfigError)
  t.throws(() => createUpstream({ ...config, reachability: { ...config.reachability, provider: 'camara' } }), ConfigError)
})

t.test('CAMARA client credentials: a token URL refusing them is logged as an error naming it, once per token request', async t => {
  const oauth = await startFakeOAuth({ clientId: 'rr-client', clientSecret: 'the-secret' })
  const camara = await startFakeCamara({ oauth })
  const logged: { level: string, obj: object, msg: string }[] = []
  const log = {
    error: (obj: object, msg: string) => { logged.push({ level: 'error', obj, msg }) },
    warn: (obj: object, msg: string) => { logged.push({ level: 'warn', obj, msg }) },
  }
  const upstream = createUpstream(loadConfig({
    REACHABILITY_PROVIDER: 'camara', CAMARA_BASE_URL: camara.reachabilityUrl,
    CAMARA_TOKEN_URL: oauth.tokenUrl, CAMARA_CLIENT_ID: 'rr-client', CAMARA_CLIENT_SECRET: 'a-wrong-secret',
  }), log)
  t.teardown(async () => { await upstream.close(); await camara.close(); await oauth.close() })
  await Promise.all([upstream.check('+990123400'), upstream.check('+990123411')])
  t.match(logged, [{ level: 'error', obj: { tokenUrl: oauth.tokenUrl, err: { message: /invalid_client: Client authentication failed/ } }, msg: /refused our client credentials/ }])
  t.equal(logged.length, 1)
  t.notMatch(JSON.stringify(logged), /a-wrong-secret/, 'the secret is not logged')

  oauth.script.next({ status: 503, json: { error: 'temporarily_unavailable' } })
  await t.rejects(upstream.check('+990123400'), { name: 'UpstreamFailure' })
  t.match(logged[1], { level: 'warn', obj: { tokenUrl: oauth.tokenUrl }, msg: /gave no access token/ })
})
