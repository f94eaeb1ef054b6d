import t from 'tap'
import { CallbackPolicy, parseAllowedHost } from '../../src/notifications/callback-policy.js'
import { NotificationService } from '../../src/notifications/service.js'
import type { NotificationRequest } from '../../src/notifications/types.js'
import { ReachabilityService } from '../../src/reachability/service.js'
import { SandboxUpstream } from '../../src/reachability/upstreams/sandbox.js'
import { MemoryStore } from '../../src/store/memory/memory-store.js'

t.test('parseAllowedHost takes bare hosts and *. wildcards, written as the URL parser writes them', async t => {
  const cases: [string, string | undefined][] = [
    ['hooks.example.com', 'hooks.example.com'],
    ['Hooks.Example.COM', 'hooks.example.com'],
    ['hooks.example.com.', 'hooks.example.com'],
    ['*.example.org', '*.example.org'],
    ['bücher.example', 'xn--bcher-kva.example'],
    ['10.0.0.7', '10.0.0.7'],
    ['0x7f.1', '127.0.0.1'],
    ['[::1]', '[::1]'],
    ['[0:0::1]', '[::1]'],
    ['https://hooks.example.com', undefined],
    ['hooks.example.com:8443', undefined],
    ['hooks.example.com/status', undefined],
    ['user@hooks.example.com', undefined],
    ['*', undefined],
    ['*.', undefined],
    ['a.*.example.com', undefined],
    ['**.example.com', undefined],
    ['::1', undefined],
    ['hooks example.com', undefined],
    ['a..example.com', undefined],
    ['*.10.0.0.7', undefined],
    ['*.1', undefined],
    ['*.[::1]', undefined],
    ['', undefined],
  ]
  for (const [pattern, wanted] of cases) t.equal(parseAllowedHost(pattern), wanted, JSON.stringify(pattern))
})

t.test('CallbackPolicy', async t => {
  t.test('without a signing secret there are no callbacks', async t => {
    for (const allowedHosts of [[], ['hooks.example.com']]) {
      t.equal(new CallbackPolicy({ signed: false, allowedHosts }).refusal('https://hooks.example.com/x'),
        'status callbacks are off: the service has no CALLBACK_SIGNING_SECRET to sign them with')
    }
  })

  t.test('with no hosts listed any URL may be called back', async t => {
    const hosts = new CallbackPolicy({ signed: true })
    for (const url of ['https://anything.example/x', 'http://127.0.0.1:9/cb', 'http://[::1]/']) t.equal(hosts.refusal(url), undefined, url)
  })

  t.test('exact hosts and wildcards; any port, path and scheme', async t => {
    const hosts = new CallbackPolicy({ signed: true, allowedHosts: ['hooks.example.com', '*.example.org', '127.0.0.1', '[::1]'] })
    const allowed = [
      'https://hooks.example.com/status', 'http://HOOKS.example.com:8080/x?y=1', 'https://hooks.example.com./status',
      'https://a.example.org/', 'https://deep.a.example.org/', 'http://127.0.0.1:3000/cb', 'http://0x7f.0.0.1/cb', 'http://[::1]:9/cb',
    ]
    for (const url of allowed) t.equal(hosts.refusal(url), undefined, url)
    const refused = [
      'https://example.com/', 'https://evil-hooks.example.com/', 'https://hooks.example.com.evil.net/', 'https://example.org/',
      'https://badexample.org/', 'http://.example.org/', 'http://%2eexample.org/', 'http://127.0.0.2/', 'http://169.254.169.254/latest/meta-data', 'http://[::2]/', 'http://localhost/',
    ]
    for (const url of refused) t.match(hosts.refusal(url), /^callback_url host \S+ is not (one that callbacks may go to \(CALLBACK_ALLOWED_HOSTS\)|a host name)$/, url)
  })

  t.test('a string that is not a URL is refused, not thrown', async t => {
    t.equal(new CallbackPolicy({ signed: true, allowedHosts: ['hooks.example.com'] }).refusal('later'), 'callback_url is not a URL')
  })
})

t.test('a replay answers its first answer even after the callback settings changed (a rolling deploy, a secret removed)', async t => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  const reachability = new ReachabilityService({
    store, upstream: new SandboxUpstream({ comebackSeconds: 20 }), policy: { reachableSeconds: 60, unreachableSeconds: 60, invalidSeconds: 60 }, maxStaleSeconds: 60, deadlineMs: 2000,
  })
  const service = (callbackPolicy: CallbackPolicy) =>
    new NotificationService({ store, reachability, retentionSeconds: 3600, idempotencyTtlSeconds: 3600, firstRecheckSeconds: 3600, callbackPolicy })
  const request: NotificationRequest = {
    to: '+990123411', message: { sms: { text: 'hi' } }, callback_url: 'https://hooks.example.com/status',
    routing: { prefer: 'push', channels: ['push', 'sms'], on_unreachable: 'queue', on_unknown: 'sms', ttl_seconds: 3600 },
  }
  const before = service(new CallbackPolicy({ signed: true }))
  const first = await before.accept('svc', request, 'key-1')
  t.equal(first.replayed, false)

  const after = service(new CallbackPolicy({ signed: false }))
  const again = await after.accept('svc', request, 'key-1')
  t.same(again, { answer: first.answer, replayed: true }, 'the stored notification\'s answer, not a 422 for what was accepted')
  await t.rejects(after.accept('svc', request, 'key-2'), { status: 422, message: /status callbacks are off/ }, 'a new key is refused')
  const freed = await after.accept('svc', { ...request, callback_url: undefined }, 'key-2')
  t.equal(freed.replayed, false, 'the refused request left its key free')
})
