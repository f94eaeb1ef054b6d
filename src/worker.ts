import closeWithGrace from 'close-with-grace'
import { buildWorker } from './app.js'
import { loadConfig } from './config.js'
import { listening, startStep } from './startup.js'

// `npm run worker`: the delivery workers as a process of their own (run the API with WORKERS=off).

const config = await startStep('reachroute worker', loadConfig)
if (!config.redis.url && !config.redis.clusterNodes) {
  process.stderr.write('reachroute worker cannot start: neither REDIS_URL nor REDIS_CLUSTER_NODES is set; a separate worker needs the shared Redis store (the embedded store lives inside the API process)\n')
  process.exit(1)
}
const worker = await startStep('reachroute worker', () => buildWorker({ config }))
closeWithGrace({ delay: 30_000 }, async ({ signal, err }) => {
  if (err) worker.log.error({ err }, 'closing after an error')
  else worker.log.info({ signal }, 'closing: finishing the jobs in hand')
  await worker.close()
})
await worker.ready()
const { host, metrics } = config
if (metrics.port !== undefined) {
  const port = metrics.port
  worker.log.info(`metrics on ${await startStep('reachroute worker', () => listening(host, port, 'METRICS_PORT', () => worker.metrics.listen(port, host)), () => worker.close())}`)
}
worker.log.info('reachroute worker running')
