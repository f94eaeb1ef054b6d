import t from 'tap'
import { ConfigError, loadConfig } from '../../../src/config.js'
import { CamaraUpstream } from '../../../src/reachability/upstreams/camara.js'
import { createUpstream } from '../../../src/reachability/upstreams/index.js'
import { SandboxUpstream } from '../../../src/reachability/upstreams/sandbox.js'
import { VonageUpstream } from '../../../src/reachability/upstreams/vonage.js'
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
