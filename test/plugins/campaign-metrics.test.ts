import t from 'tap'
import { buildTestApp } from '../helpers/app.js'
import { waitFor } from '../helpers/wait.js'

t.test('campaign progress shows in /metrics', async t => {
  const { app, bearer } = await buildTestApp({ WORKERS: 'on', WORKER_IDLE_POLL_MS: '20', METRICS_AUTH: 'none' })
  t.teardown(() => app.close())
  const authorization = await bearer()
  const scrape = async () => (await app.inject({ url: '/metrics' })).body
  const value = (text: string, line: RegExp) => Number(line.exec(text)?.[1] ?? 0)
  const before = await scrape()
  const recipientsBefore = value(before, /^reachroute_campaign_recipients_total (\d+)/m)
  const sentBefore = value(before, /^reachroute_campaign_notifications_final_total\{status="sent"\} (\d+)/m)
  const failedBefore = value(before, /^reachroute_campaign_notifications_final_total\{status="failed"\} (\d+)/m)

  const res = await app.inject({
    method: 'POST', url: '/v1/campaigns', headers: { authorization },
    payload: { name: 'metrics', message: { sms: { text: 'hello' } }, recipients: [{ to: '+990123400' }, { to: '+990123411' }, { to: '+990123422' }, { to: '+990123401' }] },
  })
  t.equal(res.statusCode, 202)
  await waitFor(async () => {
    const text = await scrape()
    const sent = value(text, /^reachroute_campaign_notifications_final_total\{status="sent"\} (\d+)/m) - sentBefore
    const handled = value(text, /^reachroute_campaign_recipients_total (\d+)/m) - recipientsBefore
    return sent >= 2 && handled >= 4 ? true : undefined
  }, 10_000, 'two campaign notifications sent and four recipients handled')
  const after = await scrape()
  t.equal(value(after, /^reachroute_campaign_recipients_total (\d+)/m) - recipientsBefore, 4, 'every recipient counted')
  t.equal(value(after, /^reachroute_campaign_notifications_final_total\{status="failed"\} (\d+)/m) - failedBefore, 1,
    'the notification failed at accept (an invalid number) is counted final too')
  t.match(after, /# HELP reachroute_campaign_notifications_final_total/)
})
