import { randomBytes } from 'node:crypto'
import closeWithGrace from 'close-with-grace'
import { buildApp } from './app.js'
import { ALL_SCOPES } from './auth/inbound.js'
import { loadConfig } from './config.js'
import { listening, startStep } from './startup.js'

let config = await startStep('reachroute', loadConfig)

// The embedded defaults (no AUTH_* variable, so never production): status callbacks are signed with a random
// secret made for this process, as the tokens are, and printed below for a receiver to check them with. Only when
// this process runs the workers: with WORKERS=off another process posts the callbacks, and it cannot know the secret.
const embedded = !config.auth.jwksUrl && !config.auth.publicKey && !config.auth.hs256Secret
const madeCallbackSecret = embedded && config.workers.enabled && config.callbackSigningSecret === undefined
  ? randomBytes(24).toString('base64url')
  : undefined
if (madeCallbackSecret) config = { ...config, callbackSigningSecret: madeCallbackSecret }

const app = await startStep('reachroute', () => buildApp({ config }))
closeWithGrace({ delay: 10_000 }, async ({ signal, err }) => {
  if (err) app.log.error({ err }, 'closing after an error')
  else app.log.info({ signal }, 'closing')
  await app.close()
})
const { host, port, metrics } = config
const address = await startStep('reachroute', () => listening(host, port, 'PORT', () => app.listen({ port, host })), () => app.close())
if (metrics.port !== undefined) {
  const metricsPort = metrics.port
  app.log.info(`metrics on ${await startStep('reachroute', () => listening(host, metricsPort, 'METRICS_PORT', () => app.metrics.listen(metricsPort, host)), () => app.close())}`)
}

const { auth } = config
if (embedded) {
  const token = await app.auth.issue({ sub: 'dev', scope: ALL_SCOPES, ttlSeconds: 30 * 86400, issuer: auth.issuer, audience: auth.audience })
  const base = address.replace('0.0.0.0', '127.0.0.1').replace('[::]', '127.0.0.1')
  process.stdout.write([
    '',
    `reachroute is listening on ${address} (store: ${app.store.kind}, upstream: ${config.reachability.provider})`,
    'No AUTH_* variable is set: a random HS256 secret was made for this process. A token with every scope, valid 30 days:',
    '',
    `  export TOKEN=${token}`,
    `  curl -H "Authorization: Bearer $TOKEN" ${base}/v1/reachability/+990123411`,
    '',
    ...(madeCallbackSecret ? [`Status callbacks (callback_url) are signed with a random CALLBACK_SIGNING_SECRET for this process: ${madeCallbackSecret}`, ''] : []),
    `API docs: ${base}/docs`,
    '',
  ].join('\n'))
}
