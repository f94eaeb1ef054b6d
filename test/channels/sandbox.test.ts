import t from 'tap'
import { SandboxPushChannel, SandboxSmsChannel } from '../../src/channels/sandbox.js'

function recordingLog () {
  const lines: Array<{ obj: Record<string, unknown>, msg: string }> = []
  return { lines, log: (obj: Record<string, unknown>, msg: string) => { lines.push({ obj, msg }) } }
}

t.test('an SMS is logged with the number masked and without its text', async t => {
  const { lines, log } = recordingLog()
  const channel = new SandboxSmsChannel({ log, now: () => Date.parse('2026-11-25T10:00:00.000Z') })
  const outcome = await channel.sendSms({ notificationId: 'ntf_01', to: '+447700900123', text: 'secret code 123456', ttlSeconds: 60 })
  t.match(outcome, { kind: 'sent', provider: 'sandbox', providerMessageId: /^sandbox-[0-9a-f-]{36}$/ })
  t.equal(lines.length, 1)
  const logged = JSON.stringify(lines)
  t.match(logged, '+44*******123')
  t.notMatch(logged, '7700900')
  t.notMatch(logged, 'secret code')
  t.match(channel.deliveries(), [{ notificationId: 'ntf_01', to: '+447700900123', text: 'secret code 123456', at: '2026-11-25T10:00:00.000Z' }])
})

t.test('a push is logged without its token or content', async t => {
  const { lines, log } = recordingLog()
  const channel = new SandboxPushChannel({ log })
  const outcome = await channel.sendPush({ notificationId: 'ntf_02', token: 'device-token-xyz', title: 'Hello', body: 'private body', ttlSeconds: 60 })
  t.equal(outcome.kind, 'sent')
  const logged = JSON.stringify(lines)
  t.match(logged, 'ntf_02')
  for (const secret of ['device-token-xyz', 'Hello', 'private body']) t.notMatch(logged, secret)
  t.equal(channel.deliveries()[0]?.messageId, outcome.kind === 'sent' ? outcome.providerMessageId : undefined)
})

t.test('a push token starting with "invalid" is dead, and nothing is delivered', async t => {
  const { lines, log } = recordingLog()
  const channel = new SandboxPushChannel({ log })
  t.same(await channel.sendPush({ notificationId: 'ntf_03', token: 'invalid-abc', title: 'T', body: 'B', ttlSeconds: 60 }),
    { kind: 'token_invalid', provider: 'sandbox', reason: 'UNREGISTERED (sandbox)' })
  t.same(channel.deliveries(), [])
  t.notMatch(JSON.stringify(lines), 'invalid-abc')
})

t.test('only the latest deliveries are kept, oldest first', async t => {
  const channel = new SandboxSmsChannel({ log: () => {}, keep: 3 })
  for (let n = 1; n <= 5; n++) await channel.sendSms({ notificationId: `n${n}`, to: '+447700900123', text: 'x', ttlSeconds: 60 })
  t.same(channel.deliveries().map(d => d.notificationId), ['n3', 'n4', 'n5'])
  channel.deliveries().pop()
  t.equal(channel.deliveries().length, 3, 'the accessor hands out a copy')
})
