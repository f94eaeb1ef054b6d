import t from 'tap'
import { CallbackPolicy, parseAllowedHost } from '../../src/notifications/callback-policy.js'

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
      'https://badexample.org/', 'http://127.0.0.2/', 'http://169.254.169.254/latest/meta-data', 'http://[::2]/', 'http://localhost/',
    ]
    for (const url of refused) t.match(hosts.refusal(url), /callback_url host .* is not one that callbacks may go to \(CALLBACK_ALLOWED_HOSTS\)/, url)
  })

  t.test('a string that is not a URL is refused, not thrown', async t => {
    t.equal(new CallbackPolicy({ signed: true, allowedHosts: ['hooks.example.com'] }).refusal('later'), 'callback_url is not a URL')
  })
})
