import t, { type Test } from 'tap'
import { execFile, spawn } from 'node:child_process'
import { once } from 'node:events'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, dirname, isAbsolute, join, posix, relative, resolve, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { parse as parseYaml } from 'yaml'
import { envSchema, loadConfig } from '../src/config.js'
import { freePort } from './helpers/net.js'
import { dropPrefix, REDIS_URL, redisAvailable, uniquePrefix } from './helpers/redis.js'
import { withoutTapLoaders } from './helpers/spawn.js'
import { waitFor } from './helpers/wait.js'

// Docker cannot run here. This file checks what can be checked without it: docker-compose.yml and the
// Dockerfile parse, name files, commands and variables that exist, and the Dockerfile's stages, replayed in a
// temporary folder (one per stage, the build context filtered by .dockerignore), build an image folder whose
// server and worker start with the compose environment, answer the HEALTHCHECK command and deliver.

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')
// A full TypeScript build and an npm install: more than the suite's usual 120 s on a busy machine.
t.setTimeout(240_000)
const run = promisify(execFile)
const KNOWN_VARIABLES = new Set(Object.keys(envSchema.shape))

// ---------- docker-compose.yml ----------

interface ComposeService {
  image?: string
  build?: string | { context?: string, dockerfile?: string }
  command?: string | string[]
  environment?: Record<string, string | number | boolean | null> | string[]
  ports?: (string | number)[]
  depends_on?: string[] | Record<string, { condition?: string }>
  healthcheck?: { test?: string | string[], disable?: boolean }
  volumes?: string[]
}
interface Compose { services: Record<string, ComposeService>, volumes?: Record<string, unknown> }

/** Compose's interpolation of `${NAME}`, `${NAME:-default}`, `${NAME-default}`, `${NAME:?error}` and `$$`, with `vars` as the shell. */
function interpolate (text: string, vars: Record<string, string | undefined>): string {
  return text.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g,
    (whole, name: string | undefined, colon: string | undefined, op: string | undefined, word: string | undefined, bare: string | undefined) => {
      if (whole === '$$') return '$'
      const value = vars[(name ?? bare)!]
      const unset = colon ? !value : value === undefined
      if (op === '-' && unset) return word ?? ''
      if (op === '?' && unset) throw new Error(`compose needs ${name}: ${word}`)
      return value ?? ''
    })
}

function readCompose (): Compose {
  const text = readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8')
  return parseYaml(text, { merge: true }) as Compose
}

/** A service's environment as compose would pass it, with no variable set in the shell (the defaults apply). */
function serviceEnv (service: ComposeService, shell: Record<string, string | undefined> = {}): Record<string, string> {
  const raw = service.environment ?? {}
  const pairs: [string, string][] = Array.isArray(raw)
    ? raw.map(item => { const i = item.indexOf('='); return i < 0 ? [item, shell[item] ?? ''] : [item.slice(0, i), item.slice(i + 1)] })
    : Object.entries(raw).map(([k, v]) => [k, v === null ? shell[k] ?? '' : String(v)])
  return Object.fromEntries(pairs.map(([k, v]) => [k, interpolate(v, shell)]))
}

function dependsOnHealthy (service: ComposeService, on: string): boolean {
  const d = service.depends_on
  return !!d && !Array.isArray(d) && d[on]?.condition === 'service_healthy'
}

// ---------- Dockerfile ----------

interface Instruction { keyword: string, args: string, line: number }
interface Stage { name: string, image: string, instructions: Instruction[] }

/** The Dockerfile's instructions, continuation lines joined and comments dropped, grouped by FROM. */
function readDockerfile (): { args: Record<string, string>, stages: Stage[] } {
  const lines = readFileSync(join(ROOT, 'Dockerfile'), 'utf8').split('\n')
  const instructions: Instruction[] = []
  let current: Instruction | undefined
  lines.forEach((raw, i) => {
    const line = raw.trim()
    if (line.startsWith('#') || (line === '' && !current)) return
    const continued = line.endsWith('\\')
    const text = continued ? line.slice(0, -1).trim() : line
    if (current) current.args += (current.args ? ' ' : '') + text
    else {
      const [keyword = '', ...rest] = text.split(/\s+/)
      current = { keyword: keyword.toUpperCase(), args: rest.join(' '), line: i + 1 }
    }
    if (!continued) {
      instructions.push(current)
      current = undefined
    }
  })
  const args: Record<string, string> = {}
  const stages: Stage[] = []
  for (const ins of instructions) {
    if (ins.keyword === 'FROM') {
      const [image = '', as, name] = ins.args.split(/\s+/)
      stages.push({ name: as?.toUpperCase() === 'AS' && name ? name : String(stages.length), image: image.replace(/\$\{?(\w+)\}?/g, (_, n: string) => args[n] ?? ''), instructions: [] })
    } else if (stages.length === 0) {
      if (ins.keyword === 'ARG') {
        const [name = '', value = ''] = ins.args.split('=')
        args[name] = value
      }
    } else {
      stages.at(-1)!.instructions.push(ins)
    }
  }
  return { args, stages }
}

/** Splits `--flag=value ... rest` into its flags and the rest. */
function flags (args: string): { flags: Record<string, string>, rest: string } {
  const found: Record<string, string> = {}
  let rest = args
  for (;;) {
    const m = /^--([a-z-]+)(?:=(\S*))?\s*/.exec(rest)
    if (!m) return { flags: found, rest }
    found[m[1]!] = m[2] ?? 'true'
    rest = rest.slice(m[0].length)
  }
}

/** Exec form (a JSON array) or shell form, as Docker reads it. */
function commandOf (args: string): string[] {
  return args.trim().startsWith('[') ? JSON.parse(args) as string[] : ['/bin/sh', '-c', args]
}

function copySources (ins: Instruction): { from: string | undefined, sources: string[], dest: string } {
  const { flags: f, rest } = flags(ins.args)
  const parts = rest.trim().startsWith('[') ? JSON.parse(rest) as string[] : rest.split(/\s+/)
  return { from: f.from, sources: parts.slice(0, -1), dest: parts.at(-1)! }
}

/** Whether .dockerignore leaves `path` (relative to the context, posix) out of the build context. */
function makeIgnore (): (path: string) => boolean {
  const file = join(ROOT, '.dockerignore')
  const rules = (existsSync(file) ? readFileSync(file, 'utf8') : '').split('\n').map(l => l.trim()).filter(l => l && !l.startsWith('#'))
    .map(l => {
      const negate = l.startsWith('!')
      const pattern = posix.normalize((negate ? l.slice(1) : l).replace(/^\/+/, ''))
      const source = pattern.split(/(\*\*\/|\*\*|\*|\?)/).map(p =>
        p === '**/' ? '(?:.*/)?' : p === '**' ? '.*' : p === '*' ? '[^/]*' : p === '?' ? '[^/]' : p.replace(/[.+^${}()|[\]\\]/g, '\\$&')).join('')
      return { negate, re: new RegExp(`^${source}$`) }
    })
  return path => {
    const parts = path.split('/')
    const prefixes = parts.map((_, i) => parts.slice(0, i + 1).join('/'))
    let ignored = false
    for (const rule of rules) if (prefixes.some(p => rule.re.test(p))) ignored = !rule.negate
    return ignored
  }
}

const compose = readCompose()
const dockerfile = readDockerfile()
const finalStage = dockerfile.stages.at(-1)!
const isIgnored = makeIgnore()

function stageInstructions (stage: Stage, keyword: string): Instruction[] {
  return stage.instructions.filter(i => i.keyword === keyword)
}
function healthcheckCommand (): string[] {
  const [hc] = stageInstructions(finalStage, 'HEALTHCHECK')
  const { rest } = flags(hc?.args ?? '')
  const m = /^CMD\s+(.*)$/.exec(rest)
  if (!m) throw new Error(`no HEALTHCHECK CMD in the final stage: ${hc?.args}`)
  return commandOf(m[1]!)
}
/** Every RUN command of a stage, split at `&&`. */
function runCommands (stage: Stage): string[] {
  return stageInstructions(stage, 'RUN').flatMap(i => i.args.split('&&').map(c => c.trim().replace(/\s+/g, ' ')))
}
function imageEnv (stage: Stage): Record<string, string> {
  const env: Record<string, string> = {}
  for (const ins of stageInstructions(stage, 'ENV')) {
    for (const m of ins.args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("[^"]*"|\S*)/g)) env[m[1]!] = m[2]!.replace(/^"|"$/g, '')
  }
  return env
}

t.test('docker-compose.yml', async t => {
  const { services } = compose
  t.same(Object.keys(services).sort(), ['api', 'redis', 'worker'], 'redis, api and worker, nothing else')
  const { redis, api, worker } = services as Record<'redis' | 'api' | 'worker', ComposeService>

  t.test('redis 7, durable, with a health check', async t => {
    t.match(redis.image, /^redis:7(\b|$)/)
    const command = Array.isArray(redis.command) ? redis.command.join(' ') : redis.command ?? ''
    t.match(command, /--appendonly yes/, 'append-only file on')
    t.ok(redis.volumes?.some(v => v.endsWith(':/data')), 'its data in a volume')
    const volume = redis.volumes?.find(v => v.endsWith(':/data'))?.split(':')[0]
    t.ok(volume && compose.volumes && volume in compose.volumes, 'the named volume is declared')
    t.match(JSON.stringify(redis.healthcheck?.test), /redis-cli.*ping/)
  })

  t.test('the api: this Dockerfile, WORKERS=off, port 3000, waits for a healthy redis, health-checked', async t => {
    t.ok(api.build === '.' || (typeof api.build === 'object' && (api.build.context ?? '.') === '.'), 'built from the repository root')
    t.notOk(api.command, 'runs the image CMD')
    t.equal(serviceEnv(api).WORKERS, 'off')
    t.ok(api.ports?.some(p => /(^|:)3000$/.test(String(p))), 'publishes 3000')
    t.ok(dependsOnHealthy(api, 'redis'))
    t.same(api.healthcheck?.test, ['CMD', ...healthcheckCommand()], 'the same check as the image HEALTHCHECK')
  })

  t.test('the worker: the same image, the worker command, no HTTP health check', async t => {
    t.equal(worker.image, api.image, 'one image for both')
    t.same(worker.build, api.build)
    t.same(worker.command, ['node', 'dist/src/worker.js'])
    t.ok(dependsOnHealthy(worker, 'redis'))
    t.equal(worker.healthcheck?.disable, true, 'the image /healthz check is off: the worker listens on nothing')
  })

  t.test('every variable set is one src/config.ts knows', async t => {
    for (const name of ['api', 'worker'] as const) {
      const unknown = Object.keys(serviceEnv(services[name]!)).filter(k => !KNOWN_VARIABLES.has(k))
      t.same(unknown, [], `${name}: no variable src/config.ts ignores`)
    }
  })

  t.test('loadConfig accepts both environments as compose passes them, with no shell variable set', async t => {
    const apiConfig = loadConfig(serviceEnv(api))
    t.equal(apiConfig.env, 'production')
    t.equal(apiConfig.workers.enabled, false)
    t.equal(apiConfig.redis.url, 'redis://redis:6379')
    t.equal(apiConfig.port, 3000)
    t.ok(apiConfig.auth.hs256Secret, 'an AUTH_HS256_SECRET placeholder, or production would refuse to start')
    t.equal(apiConfig.reachability.provider, 'sandbox')
    t.equal(apiConfig.channels.smsProvider, 'sandbox')
    t.equal(apiConfig.channels.pushProvider, 'sandbox')

    const workerConfig = loadConfig(serviceEnv(worker))
    t.equal(workerConfig.redis.url, apiConfig.redis.url, 'the worker needs the shared Redis')
    for (const key of ['redis', 'shards', 'auth', 'reachability', 'channels', 'callbackSigningSecret', 'delivery', 'fallback'] as const) {
      t.same(workerConfig[key], apiConfig[key], `api and worker agree on ${key}`)
    }
  })

  t.test('the secret comes from the shell when set', async t => {
    const secret = 'a-secret-from-the-shell-of-at-least-32-characters'
    t.equal(serviceEnv(api, { AUTH_HS256_SECRET: secret }).AUTH_HS256_SECRET, secret)
    t.equal(serviceEnv(worker, { AUTH_HS256_SECRET: secret }).AUTH_HS256_SECRET, secret)
  })
})

t.test('Dockerfile', async t => {
  const { stages } = dockerfile
  const byName = new Map(stages.map(s => [s.name, s]))

  t.test('multi-stage on a slim Node 20', async t => {
    t.ok(stages.length >= 2, 'at least a build and a runtime stage')
    for (const stage of stages) t.match(stage.image, /^node:20[.\d]*-\w+-slim$/, `stage ${stage.name}: ${stage.image}`)
  })

  t.test('the build stage installs every dependency with npm ci, then npm run build', async t => {
    const build = stages.find(s => runCommands(s).includes('npm run build'))
    t.ok(build, 'a stage runs npm run build')
    if (!build) return
    const commands = runCommands(build)
    const ci = commands.findIndex(c => /^npm ci\b/.test(c) && !/--omit=dev/.test(c))
    t.ok(ci >= 0 && ci < commands.indexOf('npm run build'), 'npm ci (with the dev dependencies) before npm run build')
  })

  t.test('the runtime: production dependencies only, dist/, non-root, tini, health check, the server', async t => {
    const copies = stageInstructions(finalStage, 'COPY').map(copySources)
    const modules = copies.find(c => c.sources.some(s => /node_modules\/?$/.test(s)))
    t.ok(modules?.from, 'node_modules come from another stage')
    const modulesStage = modules?.from ? byName.get(modules.from) : undefined
    t.ok(modulesStage && runCommands(modulesStage).some(c => /^npm ci\b.*--omit=dev/.test(c)), 'that stage ran npm ci --omit=dev')
    t.notOk(runCommands(finalStage).some(c => /^npm (ci|install|i)\b/.test(c)), 'no npm install in the runtime stage itself')
    t.ok(copies.some(c => c.from && c.sources.some(s => /\/dist\/?$/.test(s))), 'dist/ from the build stage')

    const [user] = stageInstructions(finalStage, 'USER')
    t.ok(user, 'a USER')
    t.notMatch(user?.args ?? 'root', /^(root|0)(:|$)/, 'not root')
    t.ok(runCommands(finalStage).some(c => /apt-get install .*\btini\b/.test(c)), 'the Debian tini package')
    t.same(commandOf(stageInstructions(finalStage, 'ENTRYPOINT')[0]?.args ?? '[]'), ['/usr/bin/tini', '--'], 'tini is PID 1')
    t.same(commandOf(stageInstructions(finalStage, 'CMD')[0]?.args ?? '[]'), ['node', 'dist/src/server.js'])
    t.match(stageInstructions(finalStage, 'EXPOSE')[0]?.args, /^3000\b/)
    t.equal(imageEnv(finalStage).NODE_ENV, 'production')
    for (const name of Object.keys(imageEnv(finalStage))) {
      if (name !== 'NODE_OPTIONS') t.ok(KNOWN_VARIABLES.has(name), `ENV ${name} is a variable src/config.ts knows`)
    }
    const healthcheck = healthcheckCommand()
    t.equal(healthcheck[0], 'node', 'the health check runs node itself: no curl in the image')
    t.match(healthcheck.join(' '), /\/healthz/)
  })

  t.test('every file COPYd from the context exists and is not left out by .dockerignore', async t => {
    for (const stage of stages) {
      for (const copy of stageInstructions(stage, 'COPY').map(copySources)) {
        if (copy.from) {
          t.ok(byName.has(copy.from), `COPY --from=${copy.from} names a stage`)
          continue
        }
        for (const source of copy.sources) {
          t.ok(existsSync(join(ROOT, source)), `${source} exists`)
          t.notOk(isIgnored(posix.normalize(source)), `${source} is in the build context`)
        }
      }
    }
    for (const left of ['node_modules', 'dist', '.git', '.env', 'test/config.test.ts']) t.ok(isIgnored(left), `${left} stays out of the context`)
  })
})

// ---------- the stages, replayed outside Docker ----------

/** A folder per stage stands for its file system; the context is the repository filtered by .dockerignore. */
async function replay (into: string, t: Test): Promise<string> {
  const roots = new Map<string, string>()
  let last = ''
  for (const stage of dockerfile.stages) {
    const root = join(into, stage.name)
    mkdirSync(root, { recursive: true })
    roots.set(stage.name, root)
    let cwd = root
    const inStage = (path: string) => isAbsolute(path) ? join(root, path) : join(cwd, path)
    for (const ins of stage.instructions) {
      if (ins.keyword === 'WORKDIR') {
        cwd = inStage(ins.args)
        mkdirSync(cwd, { recursive: true })
      } else if (ins.keyword === 'COPY') {
        const { from, sources, dest } = copySources(ins)
        const target = inStage(dest)
        const intoDir = dest.endsWith('/') || sources.length > 1
        for (const source of sources) {
          const src = from ? join(roots.get(from)!, source) : join(ROOT, source)
          const to = intoDir ? join(target, basename(source)) : target
          cpSync(src, to, {
            recursive: true,
            verbatimSymlinks: true,
            filter: from ? undefined : (path: string) => !isIgnored(relative(ROOT, path).split(sep).join('/')),
          })
        }
      } else if (ins.keyword === 'RUN') {
        for (const command of ins.args.split('&&').map(c => c.trim().replace(/\s+/g, ' '))) {
          const words = command.split(' ')
          if (/^npm ci\b/.test(command) && command.includes('--omit=dev')) {
            // The real thing, from npm's cache when it can: these node_modules are the ones the runtime gets.
            await run(...withoutTapLoaders('npm', [...words.slice(1), '--prefer-offline']), { cwd, env: { PATH: process.env.PATH, HOME: process.env.HOME } })
          } else if (/^npm ci\b/.test(command)) {
            // Every dependency of the same lockfile: the repository's own install stands in (saves a minute).
            symlinkSync(join(ROOT, 'node_modules'), join(cwd, 'node_modules'), 'dir')
          } else if (command === 'npm run build') {
            await run(...withoutTapLoaders('npm', ['run', 'build']), { cwd, env: { PATH: process.env.PATH, HOME: process.env.HOME } })
          } else if (words[0] === 'rm' && words.slice(1).every(w => w.startsWith('-') || !isAbsolute(w))) {
            for (const path of words.slice(1).filter(w => !w.startsWith('-'))) rmSync(join(cwd, path), { recursive: true, force: true })
          } else if (/^(apt-get (update|install)|rm -rf \/var\/lib\/apt\/lists|npm cache clean)\b/.test(command)) {
            t.comment(`not replayed (system packages and caches): ${command}`)
          } else {
            throw new Error(`Dockerfile line ${ins.line}: the replay does not know "${command}"; teach test/deploy.test.ts`)
          }
        }
      }
    }
    last = cwd
  }
  return last
}


// Also when tap ends this process early (its timeout): no server or worker left running, no image folder left behind.
// tap's timeout ends a test process with SIGALRM: 'exit' alone would not run then.
const atExit: (() => void)[] = []
const cleanUp = () => {
  for (const clean of atExit.splice(0).reverse()) {
    try { clean() } catch { /* best effort */ }
  }
}
process.once('exit', cleanUp)
for (const signal of ['SIGALRM', 'SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
  process.once(signal, () => {
    cleanUp()
    process.kill(process.pid, signal)
  })
}

function start (command: string[], cwd: string, env: Record<string, string>) {
  const child = spawn(...withoutTapLoaders(command[0]!, command.slice(1), env), { cwd, env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  atExit.push(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', chunk => { stdout += chunk })
  child.stderr.setEncoding('utf8').on('data', chunk => { stderr += chunk })
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>
  return { child, exited, output: () => `${stdout}${stderr}` }
}

/** Runs a command as the HEALTHCHECK does: its exit code is the verdict. */
async function probe (command: string[], env: Record<string, string>): Promise<number> {
  const { exited } = start(command, ROOT, env)
  const [code] = await exited
  return code ?? 1
}

const haveRedis = await redisAvailable()
t.test('the Dockerfile stages work outside Docker, with the compose environment', { skip: !haveRedis && `Redis does not answer at ${REDIS_URL}` }, async t => {
  const dir = mkdtempSync(join(tmpdir(), 'reachroute-image-'))
  atExit.push(() => rmSync(dir, { recursive: true, force: true }))
  const prefix = uniquePrefix()
  t.teardown(async () => {
    rmSync(dir, { recursive: true, force: true })
    await dropPrefix(prefix)
  })
  const app = await replay(dir, t)

  const entrypoint = commandOf(stageInstructions(finalStage, 'ENTRYPOINT')[0]?.args ?? '[]')
  t.same(entrypoint, ['/usr/bin/tini', '--'], 'tini stays out of the replay: the commands run under it are started directly')
  const serverCommand = commandOf(stageInstructions(finalStage, 'CMD')[0]!.args)
  const workerCommand = compose.services.worker!.command as string[]
  for (const command of [serverCommand, workerCommand]) t.ok(existsSync(join(app, command[1]!)), `${command.join(' ')}: the file is in the image`)
  t.notOk(existsSync(join(app, 'node_modules', 'typescript')), 'no dev dependency in the runtime node_modules')
  t.notOk(existsSync(join(app, 'src')), 'no TypeScript source in the runtime')

  const port = await freePort()
  const here = { REDIS_URL, REDIS_KEY_PREFIX: prefix, HOST: '127.0.0.1', PORT: String(port), HOME: process.env.HOME ?? '/tmp' }
  const image = imageEnv(finalStage)
  const apiEnv = { ...image, ...serviceEnv(compose.services.api!), ...here }
  const workerEnv = { ...image, ...serviceEnv(compose.services.worker!), ...here }
  const base = `http://127.0.0.1:${port}`

  const server = start(serverCommand, app, apiEnv)
  t.teardown(() => { if (server.child.exitCode === null) server.child.kill('SIGKILL') })
  const healthcheck = healthcheckCommand()
  const healthEnv = { PORT: String(port) }

  await waitFor(async () => {
    if (server.child.exitCode !== null) throw new Error(`the server exited: ${server.output()}`)
    return await probe(healthcheck, healthEnv) === 0 ? true : undefined
  }, 20_000, 'the HEALTHCHECK command to pass')
  t.pass('the HEALTHCHECK command passes against the running server')
  t.equal(await probe(healthcheck.map(a => a.replace('/healthz', '/readyz')), healthEnv), 0, 'the same command on /readyz passes (Redis answers)')
  t.equal(await probe(healthcheck, { PORT: String(await freePort()) }), 1, 'and fails where nothing listens')
  t.match(server.output(), /"msg":"Server listening at http:\/\/127\.0\.0\.1:\d+"/, 'production logs: JSON lines')
  t.notMatch(server.output(), /export TOKEN=/, 'no dev token: AUTH_HS256_SECRET is set')

  // The token the compose file tells you to mint, with the image's own script.
  const minted = await run(...withoutTapLoaders(process.execPath, ['dist/scripts/token.js', 'reachability:read', 'notifications:write', 'notifications:read'], apiEnv), { cwd: app, env: { PATH: process.env.PATH, ...apiEnv } })
  const auth = { authorization: `Bearer ${minted.stdout.trim()}` }
  const lookup = await fetch(`${base}/v1/reachability/+990123411`, { headers: auth, signal: AbortSignal.timeout(5000) })
  t.equal(lookup.status, 200, 'a token minted by dist/scripts/token.js is accepted')
  t.match(await lookup.json(), { phone_number: '+990123411', is_reachable: true, connectivity: ['SMS'] }, 'the sandbox upstream answers')

  // The API (WORKERS=off) accepts; only the worker service can deliver.
  const accepted = await fetch(`${base}/v1/notifications`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({ to: '+990123411', message: { sms: { text: 'deploy test' } } }),
    signal: AbortSignal.timeout(5000),
  })
  t.equal(accepted.status, 202, 'a notification is accepted')
  const { id } = await accepted.json() as { id: string }
  const statusOf = async () => {
    const res = await fetch(`${base}/v1/notifications/${id}`, { headers: auth, signal: AbortSignal.timeout(5000) })
    return (await res.json() as { status: string }).status
  }
  await new Promise(resolve => setTimeout(resolve, 500))
  t.equal(await statusOf(), 'queued', 'nothing delivers it while no worker runs')

  const worker = start(workerCommand, app, workerEnv)
  t.teardown(() => { if (worker.child.exitCode === null) worker.child.kill('SIGKILL') })
  await waitFor(() => {
    if (worker.child.exitCode !== null) throw new Error(`the worker exited: ${worker.output()}`)
    return worker.output().includes('reachroute worker running') ? true : undefined
  }, 20_000, 'the worker to start')
  await waitFor(async () => await statusOf() === 'sent' ? true : undefined, 15_000, 'the worker to send the notification')
  t.pass('the worker delivered what the API accepted')
  await new Promise(resolve => setTimeout(resolve, 1000))
  t.equal(worker.child.exitCode, null, 'the worker stays up')

  worker.child.kill('SIGTERM')
  const [workerCode] = await worker.exited
  t.equal(workerCode, 0, 'the worker exits 0 on SIGTERM')
  server.child.kill('SIGTERM')
  const [serverCode] = await server.exited
  t.equal(serverCode, 0, 'the server exits 0 on SIGTERM')
})
