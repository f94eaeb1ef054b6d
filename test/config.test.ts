import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { buildApp } from '../src/app.js'
import { ConfigError, loadConfig } from '../src/config.js'
import { verifyHmacSignature } from '../src/http/signature.js'
import { built, ROOT } from './helpers/build.js'
import { freePort } from './helpers/net.js'
import { dropPrefix, REDIS_URL, redisAvailable, uniquePrefix } from './helpers/redis.js'
import { withoutTapLoaders } from './helpers/spawn.js'
import { waitFor } from './helpers/wait.js'

t.test('loadConfig', async t => {
  t.test('defaults: port 3000, the sandbox upstream, no Redis', async t => {
    const config = loadConfig({})
    t.equal(config.port, 3000)
    t.equal(config.host, '0.0.0.0')
    t.equal(config.env, 'development')
    t.equal(config.requestTimeoutMs, 120_000, 'a request may take two minutes to arrive')
    t.equal(config.reachability.provider, 'sandbox')
    t.equal(config.redis.url, undefined)
    t.equal(config.vonage.baseUrl, 'https://api-eu.vonage.com')
    t.equal(config.vonage.purpose, 'FraudPreventionAndDetection')
    t.match(config.reachability.ttl, { reachableSeconds: 300, unreachableSeconds: 60, invalidSeconds: 86400 })
    t.equal(config.reachability.maxStaleSeconds, 3600)
    t.match(config.auth, { jwksUrl: undefined, publicKey: undefined, hs256Secret: undefined })
  })

  t.test('without REDIS_URL the app keeps its state in memory', async t => {
    const app = await buildApp({ config: loadConfig({ LOG_LEVEL: 'silent' }), logger: false })
    t.teardown(() => app.close())
    await app.ready()
    t.equal(app.store.kind, 'memory')
  })

  t.test('security settings: docs open, no HSTS, per-minute limits per route group (0 turns one off)', async t => {
    const config = loadConfig({})
    t.equal(config.docsAuth, 'none')
    t.equal(config.hstsMaxAgeSeconds, 0)
    t.same(config.rateLimit, { notifications: 3000, reachability: 6000, ops: 300, default: 600 })
    const set = loadConfig({ DOCS_AUTH: 'ops', HSTS_MAX_AGE_SECONDS: '31536000', RATE_LIMIT_NOTIFICATIONS_PER_MINUTE: '0', RATE_LIMIT_OPS_PER_MINUTE: '10' })
    t.equal(set.docsAuth, 'ops')
    t.equal(set.hstsMaxAgeSeconds, 31536000)
    t.match(set.rateLimit, { notifications: 0, ops: 10 })
  })

  t.test('provider send rates: 30 SMS and 500 push a second by default, fractions allowed, 0 turns one off', async t => {
    t.match(loadConfig({}).channels, { smsRps: 30, pushRps: 500 })
    t.equal(loadConfig({ SMS_FROM: 'Acme Shop' }).channels.smsFrom, 'Acme Shop', 'an alphanumeric sender of 9 characters')
    t.doesNotThrow(() => loadConfig({ SMS_FROM: '447700900123' }), 'a number without "+"')
    t.match(loadConfig({ SMS_RPS: '0.5', PUSH_RPS: '0' }).channels, { smsRps: 0.5, pushRps: 0 })
  })

  t.test('callback hosts: anywhere by default; CALLBACK_ALLOWED_HOSTS is a comma-separated list, written as URLs write hosts', async t => {
    t.same(loadConfig({}).callbackAllowedHosts, [])
    t.same(loadConfig({ CALLBACK_ALLOWED_HOSTS: ' Hooks.Example.com , *.example.ORG,, [0::1] ' }).callbackAllowedHosts,
      ['hooks.example.com', '*.example.org', '[::1]'])
  })

  t.test('CAMARA authenticates with a static token or with OAuth2 client credentials', async t => {
    const base = { REACHABILITY_PROVIDER: 'camara', CAMARA_BASE_URL: 'https://op.example/device-reachability-status/v1' }
    t.match(loadConfig({ ...base, CAMARA_ACCESS_TOKEN: 'token' }).camara, { accessToken: 'token', clientCredentials: undefined })
    const oauth = { CAMARA_TOKEN_URL: 'https://op.example/oauth2/token', CAMARA_CLIENT_ID: 'rr-client', CAMARA_CLIENT_SECRET: 's3cret' }
    t.same(loadConfig({ ...base, ...oauth }).camara.clientCredentials,
      { tokenUrl: 'https://op.example/oauth2/token', clientId: 'rr-client', clientSecret: 's3cret', scope: undefined })
    t.match(loadConfig({ ...base, ...oauth, CAMARA_SCOPE: 'dpv:FraudPreventionAndDetection device-reachability-status:read' }).camara,
      { accessToken: undefined, clientCredentials: { scope: 'dpv:FraudPreventionAndDetection device-reachability-status:read' } })
  })

  t.test('an empty variable counts as unset; a number may have spaces around it and a fraction where one is taken', async t => {
    t.equal(loadConfig({ PORT: '', REDIS_URL: '' }).port, 3000)
    t.equal(loadConfig({ PORT: ' 3001 ' }).port, 3001)
    t.equal(loadConfig({ SMS_RPS: '0.5' }).channels.smsRps, 0.5)
  })

  const refused: [string, Record<string, string>, string, RegExp?][] = [
    ['PORT=abc', { PORT: 'abc' }, 'PORT'],
    ['PORT out of range', { PORT: '70000' }, 'PORT'],
    ['REDIS_URL=http://x', { REDIS_URL: 'http://x' }, 'REDIS_URL'],
    ['REACHABILITY_PROVIDER=foo', { REACHABILITY_PROVIDER: 'foo' }, 'REACHABILITY_PROVIDER'],
    ['DOCS_AUTH=basic', { DOCS_AUTH: 'basic' }, 'DOCS_AUTH'],
    ['a negative rate limit', { RATE_LIMIT_REACHABILITY_PER_MINUTE: '-1' }, 'RATE_LIMIT_REACHABILITY_PER_MINUTE'],
    ['a fractional rate limit', { RATE_LIMIT_DEFAULT_PER_MINUTE: '1.5' }, 'RATE_LIMIT_DEFAULT_PER_MINUTE'],
    ['a negative SMS_RPS', { SMS_RPS: '-1' }, 'SMS_RPS'],
    ['PUSH_RPS=fast', { PUSH_RPS: 'fast' }, 'PUSH_RPS'],
    ['an SMS_FROM Vonage refuses (12 characters)', { SMS_FROM: 'Acme Company' }, 'SMS_FROM', /1 to 11 letters/],
    ['an SMS_FROM number with "+"', { SMS_FROM: '+447700900123' }, 'SMS_FROM'],
    ['REQUEST_TIMEOUT_MS=0 (no timeout at all)', { REQUEST_TIMEOUT_MS: '0' }, 'REQUEST_TIMEOUT_MS'],
    ['HSTS_MAX_AGE_SECONDS=forever', { HSTS_MAX_AGE_SECONDS: 'forever' }, 'HSTS_MAX_AGE_SECONDS'],
    ['a URL in CALLBACK_ALLOWED_HOSTS', { CALLBACK_ALLOWED_HOSTS: 'hooks.example.com,https://other.example.com' }, 'CALLBACK_ALLOWED_HOSTS', /no scheme, port or path/],
    ['a port in CALLBACK_ALLOWED_HOSTS', { CALLBACK_ALLOWED_HOSTS: 'hooks.example.com:8443' }, 'CALLBACK_ALLOWED_HOSTS', /"hooks\.example\.com:8443": /],
    ['a CALLBACK_ALLOWED_HOSTS of commas only (it would allow any host)', { CALLBACK_ALLOWED_HOSTS: ' , ' }, 'CALLBACK_ALLOWED_HOSTS', /no host given/],
    ['vonage without VONAGE_APPLICATION_ID',
      { REACHABILITY_PROVIDER: 'vonage', VONAGE_PRIVATE_KEY: '-----BEGIN PRIVATE KEY-----' }, 'VONAGE_APPLICATION_ID'],
    ['vonage without a private key', { REACHABILITY_PROVIDER: 'vonage', VONAGE_APPLICATION_ID: 'app-id' }, 'VONAGE_PRIVATE_KEY'],
    ['camara without CAMARA_BASE_URL', { REACHABILITY_PROVIDER: 'camara', CAMARA_ACCESS_TOKEN: 'token' }, 'CAMARA_BASE_URL'],
    ['camara without a token or client credentials', { REACHABILITY_PROVIDER: 'camara', CAMARA_BASE_URL: 'https://op.example/v1' },
      'CAMARA_ACCESS_TOKEN', /unless CAMARA_TOKEN_URL, CAMARA_CLIENT_ID, CAMARA_CLIENT_SECRET are set/],
    ['camara with a token and client credentials both',
      { REACHABILITY_PROVIDER: 'camara', CAMARA_BASE_URL: 'https://op.example/v1', CAMARA_ACCESS_TOKEN: 'token', CAMARA_CLIENT_ID: 'rr-client' },
      'CAMARA_ACCESS_TOKEN', /not both/],
    ['camara client credentials without a secret',
      { REACHABILITY_PROVIDER: 'camara', CAMARA_BASE_URL: 'https://op.example/v1', CAMARA_TOKEN_URL: 'https://op.example/token', CAMARA_CLIENT_ID: 'rr-client' },
      'CAMARA_CLIENT_SECRET', /required with CAMARA_TOKEN_URL and CAMARA_CLIENT_ID/],
    ['camara client credentials without a token URL',
      { REACHABILITY_PROVIDER: 'camara', CAMARA_BASE_URL: 'https://op.example/v1', CAMARA_CLIENT_ID: 'rr-client', CAMARA_CLIENT_SECRET: 's3cret' },
      'CAMARA_TOKEN_URL', /required with CAMARA_CLIENT_ID and CAMARA_CLIENT_SECRET/],
    ['a CAMARA_TOKEN_URL that is not a URL',
      { REACHABILITY_PROVIDER: 'camara', CAMARA_BASE_URL: 'https://op.example/v1', CAMARA_TOKEN_URL: 'op.example/token', CAMARA_CLIENT_ID: 'c', CAMARA_CLIENT_SECRET: 's' },
      'CAMARA_TOKEN_URL'],
    ['CAMARA_SCOPE with a static token', { REACHABILITY_PROVIDER: 'camara', CAMARA_BASE_URL: 'https://op.example/v1', CAMARA_ACCESS_TOKEN: 'token', CAMARA_SCOPE: 'x' },
      'CAMARA_SCOPE', /only used with OAuth2 client credentials/],
    ['two auth sources',
      { AUTH_HS256_SECRET: 'x'.repeat(32), AUTH_PUBLIC_KEY: '-----BEGIN PUBLIC KEY-----' }, 'AUTH_PUBLIC_KEY', /AUTH_HS256_SECRET/],
    ['NODE_ENV=production without auth', { NODE_ENV: 'production' }, 'NODE_ENV=production', /AUTH_JWKS_URL, AUTH_PUBLIC_KEY or AUTH_HS256_SECRET/],
    ['a short AUTH_HS256_SECRET', { AUTH_HS256_SECRET: 'short' }, 'AUTH_HS256_SECRET'],
    ['a PORT of spaces (a number would read it as 0)', { PORT: ' ' }, 'PORT', /only whitespace: leave it empty \(unset\) or give a value/],
    ['a rate limit of a tab (0 would turn it off)', { RATE_LIMIT_REACHABILITY_PER_MINUTE: '\t' }, 'RATE_LIMIT_REACHABILITY_PER_MINUTE', /only whitespace/],
    ['a cache TTL of spaces (0 would turn caching off)', { REACHABILITY_TTL_REACHABLE_SECONDS: '  ' }, 'REACHABILITY_TTL_REACHABLE_SECONDS', /only whitespace/],
    ['an AUTH_HS256_SECRET of 32 spaces', { AUTH_HS256_SECRET: ' '.repeat(32) }, 'AUTH_HS256_SECRET', /only whitespace/],
    ['an SMS_FROM of a space', { SMS_FROM: ' ' }, 'SMS_FROM', /only whitespace/],
    ['a hexadecimal PORT', { PORT: '0x1F90' }, 'PORT', /decimal digits/],
    ['a PORT with an exponent', { PORT: '1e3' }, 'PORT', /decimal digits/],
    ['a REDIS_URL without a host', { REDIS_URL: 'redis://' }, 'REDIS_URL', /with a host/],
    ['VONAGE_PRIVATE_KEY_PATH unreadable',
      { REACHABILITY_PROVIDER: 'vonage', VONAGE_APPLICATION_ID: 'app-id', VONAGE_PRIVATE_KEY_PATH: '/nonexistent/private.key' }, 'VONAGE_PRIVATE_KEY_PATH', /cannot be read/],
  ]
  for (const [name, env, variable, more] of refused) {
    t.test(`refuses ${name}, naming ${variable}`, async t => {
      t.throws(() => loadConfig(env), ConfigError)
      try {
        loadConfig(env)
      } catch (err) {
        t.type(err, ConfigError)
        t.match((err as ConfigError).message, variable)
        if (more) t.match((err as ConfigError).message, more)
      }
    })
  }

  t.test('every problem is listed, one per variable', async t => {
    try {
      loadConfig({ PORT: 'abc', REACHABILITY_PROVIDER: 'foo' })
      t.fail('should have thrown')
    } catch (err) {
      t.match((err as ConfigError).problems, [/^PORT: /, /^REACHABILITY_PROVIDER: /])
    }
  })
})

// The built server, started as `npm start` starts it.

/** Only what the server needs: the developer's variables stay out (and tap's loaders, see withoutTapLoaders). */
function serverEnv (vars: Record<string, string>): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH, ...vars }
}

/** Starts a built script (dist/, built by npm test's pretest script), e.g. `src/worker.js`. */
function startServer (vars: Record<string, string>, script = 'src/server.js') {
  const [command, args] = withoutTapLoaders(process.execPath, [built(script)])
  const child = spawn(command, args, { cwd: ROOT, env: serverEnv(vars), stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', chunk => { stdout += chunk })
  child.stderr.setEncoding('utf8').on('data', chunk => { stderr += chunk })
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>
  return { child, exited, output: () => ({ stdout, stderr }) }
}

async function within<T> (ms: number, what: string, promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms) })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}

// Each subtest starts processes of its own on ports of their own: side by side, they mostly wait.
t.test('the built server', { jobs: 4 }, async t => {
  t.test('a bad variable stops the start (API and worker), naming it', async t => {
    for (const [script, name] of [['src/server.js', 'reachroute'], ['src/worker.js', 'reachroute worker']] as const) {
      const { exited, output } = startServer({ PORT: 'abc' }, script)
      const [code] = await within(15_000, 'exit', exited)
      t.equal(code, 1, script)
      t.match(output().stderr, new RegExp(`^${name} cannot start: .*\\n.*PORT: `), script)
    }
  })

  t.test('a Vonage private key that cannot sign stops the start in one line naming it, no stack trace', async t => {
    const { exited, output } = startServer({ PORT: '0', HOST: '127.0.0.1', REACHABILITY_PROVIDER: 'vonage', VONAGE_APPLICATION_ID: 'app', VONAGE_PRIVATE_KEY: 'not a key' })
    const [code] = await within(15_000, 'exit', exited)
    t.equal(code, 1)
    t.match(output().stderr, /^reachroute cannot start: invalid configuration:\n {2}VONAGE_PRIVATE_KEY: cannot sign the application JWT: [^\n]+\n$/)
  })

  t.test('a worker without Redis refuses to start, saying why', async t => {
    const { exited, output } = startServer({ PORT: '0', HOST: '127.0.0.1' }, 'src/worker.js')
    const [code] = await within(15_000, 'exit', exited)
    t.equal(code, 1)
    t.match(output().stderr, /^reachroute worker cannot start: neither REDIS_URL nor REDIS_CLUSTER_NODES is set/)
  })

  t.test('a Redis that does not answer stops the start (API and worker) with a line saying where and why, no stack trace', async t => {
    const port = await freePort()
    for (const [script, name] of [['src/server.js', 'reachroute'], ['src/worker.js', 'reachroute worker']] as const) {
      const { exited, output } = startServer({ PORT: '0', HOST: '127.0.0.1', REDIS_URL: `redis://user:a-password@127.0.0.1:${port}` }, script)
      const [code] = await within(15_000, 'exit', exited)
      t.equal(code, 1, script)
      t.match(output().stderr, new RegExp(`^${name} cannot start: Redis at 127\\.0\\.0\\.1:${port} did not answer: .*ECONNREFUSED`), script)
      t.notMatch(output().stderr, /a-password|\n\s+at /, `${script}: no password, no stack`)
    }
  })

  t.test('a listener that cannot open (port in use, HOST no address here) stops the start with one line, no stack trace', async t => {
    const taken = createServer().listen(0, '127.0.0.1')
    await once(taken, 'listening')
    t.teardown(() => { taken.close() })
    const busy = String((taken.address() as AddressInfo).port)
    const prefix = uniquePrefix()
    const cases: [string, string, Record<string, string>, RegExp][] = [
      ['src/server.js', 'reachroute', { PORT: busy, HOST: '127.0.0.1' },
        new RegExp(`^reachroute cannot start: cannot listen on 127\\.0\\.0\\.1:${busy} \\(HOST, PORT\\): the port is already in use \\(EADDRINUSE\\)\\n$`)],
      ['src/server.js', 'reachroute', { PORT: '0', HOST: '256.1.1.1' },
        /^reachroute cannot start: cannot listen on 256\.1\.1\.1:0 \(HOST, PORT\): HOST is neither an address of this machine nor a name that resolves \(ENOTFOUND\)\n$/],
      ['src/server.js', 'reachroute', { PORT: '0', HOST: '192.0.2.1' },
        /^reachroute cannot start: cannot listen on 192\.0\.2\.1:0 \(HOST, PORT\): the address is not one of this machine's \(EADDRNOTAVAIL\)\n$/],
      ['src/server.js', 'reachroute', { PORT: '0', HOST: '127.0.0.1', METRICS_PORT: busy },
        new RegExp(`^reachroute cannot start: cannot listen on 127\\.0\\.0\\.1:${busy} \\(HOST, METRICS_PORT\\): the port is already in use \\(EADDRINUSE\\)\\n$`)],
    ]
    // The worker needs Redis to get as far as its metrics port.
    if (await redisAvailable()) {
      t.teardown(() => dropPrefix(prefix))
      cases.push(['src/worker.js', 'reachroute worker', { HOST: '127.0.0.1', METRICS_PORT: busy, REDIS_URL, REDIS_KEY_PREFIX: prefix },
        new RegExp(`^reachroute worker cannot start: cannot listen on 127\\.0\\.0\\.1:${busy} \\(HOST, METRICS_PORT\\): the port is already in use \\(EADDRINUSE\\)\\n$`)])
    }
    for (const [script, name, vars, line] of cases) {
      const what = `${name}, ${JSON.stringify(vars)}`
      const { exited, output } = startServer({ LOG_LEVEL: 'warn', ...vars }, script)
      const [code] = await within(20_000, 'exit', exited)
      t.equal(code, 1, what)
      t.match(output().stderr, line, what)
      t.notMatch(output().stdout, /"level":50|\n\s+at /, `${what}: no error log, no stack`)
    }
  })

  t.test('NODE_ENV=production without an AUTH_* variable refuses to start', async t => {
    const { exited, output } = startServer({ NODE_ENV: 'production', PORT: '0', HOST: '127.0.0.1' })
    const [code] = await within(15_000, 'exit', exited)
    t.not(code, 0)
    t.match(output().stderr, /NODE_ENV=production needs one of AUTH_JWKS_URL, AUTH_PUBLIC_KEY or AUTH_HS256_SECRET/)
  })

  t.test('with the defaults it prints a working token, and a second lookup comes from the cache', async t => {
    const server = startServer({ PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'warn' })
    t.teardown(() => { if (server.child.exitCode === null) server.child.kill('SIGKILL') })

    const banner = await within(15_000, 'the token banner', new Promise<RegExpExecArray>((resolve, reject) => {
      const look = () => {
        const found = /curl -H "Authorization: Bearer \$TOKEN" (http:\/\/127\.0\.0\.1:\d+)\//.exec(server.output().stdout)
        if (found && /export TOKEN=\S+/.test(server.output().stdout)) resolve(found)
      }
      server.child.stdout.on('data', look)
      server.exited.then(() => reject(new Error(`the server exited: ${server.output().stderr}`)), reject)
    }))
    const base = banner[1]!
    const token = /export TOKEN=(\S+)/.exec(server.output().stdout)![1]!
    t.match(server.output().stdout, /store: memory, upstream: sandbox/)

    const lookup = async () => {
      const res = await fetch(`${base}/v1/reachability/+990123411`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(5000) })
      t.equal(res.status, 200)
      return await res.json() as { connectivity: string[], source: string }
    }
    t.match(await lookup(), { connectivity: ['SMS'], source: 'upstream' })
    t.match(await lookup(), { connectivity: ['SMS'], source: 'cache' })
    const noToken = await fetch(`${base}/v1/reachability/+990123411`, { signal: AbortSignal.timeout(5000) })
    t.equal(noToken.status, 401)

    // Status callbacks are on, signed with the random secret the banner prints.
    const callbackSecret = /signed with a random CALLBACK_SIGNING_SECRET for this process: (\S+)/.exec(server.output().stdout)?.[1]
    t.ok(callbackSecret, 'the banner prints the callback signing secret')
    const posts: { body: string, signature: string | undefined }[] = []
    const receiver = createServer((req, res) => {
      let body = ''
      req.on('data', (chunk: Buffer) => { body += chunk.toString() })
      req.on('end', () => {
        posts.push({ body, signature: req.headers['x-reachroute-signature'] as string | undefined })
        res.end()
      })
    })
    await new Promise<void>(resolve => receiver.listen(0, '127.0.0.1', resolve))
    t.teardown(() => { receiver.closeAllConnections(); receiver.close() })
    const accepted = await fetch(`${base}/v1/notifications`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ to: '+990123411', message: { sms: { text: 'hi' } }, callback_url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/status` }),
      signal: AbortSignal.timeout(5000),
    })
    t.equal(accepted.status, 202)
    await waitFor(() => posts.length > 0 ? true : undefined, 10_000, 'the status callback')
    t.ok(verifyHmacSignature(posts[0]!.body, callbackSecret!, posts[0]!.signature), 'the callback checks out with the printed secret')
    t.match(JSON.parse(posts[0]!.body), { status: 'sent', channel: 'sms' })

    server.child.kill('SIGTERM')
    const [code] = await within(15_000, 'exit after SIGTERM', server.exited)
    t.equal(code, 0, 'closes cleanly on SIGTERM')
  })

  t.test('with the defaults and WORKERS=off no callback secret is made: a callback_url is a 422, not a callback no worker can sign', async t => {
    // The workers run in another process (`npm run worker`), which could never know a secret made here.
    const server = startServer({ PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'warn', WORKERS: 'off' })
    t.teardown(() => { if (server.child.exitCode === null) server.child.kill('SIGKILL') })
    const banner = await within(15_000, 'the token banner', new Promise<RegExpExecArray>((resolve, reject) => {
      const look = () => {
        const found = /export TOKEN=(\S+)\n\s+curl -H "Authorization: Bearer \$TOKEN" (http:\/\/127\.0\.0\.1:\d+)\/.*\n[\s\S]*API docs:/.exec(server.output().stdout)
        if (found) resolve(found)
      }
      server.child.stdout.on('data', look)
      server.exited.then(() => reject(new Error(`the server exited: ${server.output().stderr}`)), reject)
    }))
    const [, token, base] = banner
    t.notMatch(server.output().stdout, /CALLBACK_SIGNING_SECRET/, 'no callback secret is printed')
    const res = await fetch(`${base}/v1/notifications`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ to: '+990123411', message: { sms: { text: 'hi' } }, callback_url: 'http://127.0.0.1:9/status' }),
      signal: AbortSignal.timeout(5000),
    })
    t.equal(res.status, 422)
    t.match(await res.json(), { type: 'https://reachroute.dev/problems/unprocessable', detail: /CALLBACK_SIGNING_SECRET/ })

    server.child.kill('SIGTERM')
    const [code] = await within(15_000, 'exit after SIGTERM', server.exited)
    t.equal(code, 0, 'closes cleanly on SIGTERM')
  })
})
