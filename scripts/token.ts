import { parseArgs } from 'node:util'
import { pathToFileURL } from 'node:url'
import { ALL_SCOPES, InboundAuth } from '../src/auth/inbound.js'
import { SCOPES } from '../src/auth/scopes.js'
import { ConfigError, loadConfig } from '../src/config.js'

// Prints a bearer token signed with AUTH_HS256_SECRET, the way the server verifies it
// (AUTH_ISSUER and AUTH_AUDIENCE are honoured too).
//
//   AUTH_HS256_SECRET=... npm run token -- reachability:read notifications:write --sub shop --ttl 3600
//   docker compose exec api node dist/scripts/token.js reachability:read
//
// With no scope named, the token carries every scope.

const USAGE = `usage: token.js [scope ...] [--sub <subject>] [--ttl <seconds>]
  scopes: ${SCOPES.join(', ')} (default: all of them)
  reads AUTH_HS256_SECRET (required), AUTH_ISSUER and AUTH_AUDIENCE from the environment`

export async function mintToken (argv: string[], env: Record<string, string | undefined>): Promise<string> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      sub: { type: 'string', default: 'cli' },
      ttl: { type: 'string', default: '3600' },
    },
  })
  const unknown = positionals.filter(scope => !(SCOPES as readonly string[]).includes(scope))
  if (unknown.length > 0) throw new UsageError(`unknown scope ${unknown.join(', ')}`)
  const ttlSeconds = Number(values.ttl)
  if (!Number.isInteger(ttlSeconds) || ttlSeconds < 1) throw new UsageError(`--ttl must be a whole number of seconds, not "${values.ttl}"`)
  if (!values.sub) throw new UsageError('--sub must not be empty')

  const { auth } = loadConfig(env)
  if (!auth.hs256Secret) throw new UsageError('AUTH_HS256_SECRET is not set: tokens can only be minted for an HS256 secret')
  const issuer = await InboundAuth.create({ hs256Secret: auth.hs256Secret, jwksTimeoutMs: auth.jwksTimeoutMs, jwksCooldownMs: auth.jwksCooldownMs })
  return issuer.issue({
    sub: values.sub,
    scope: positionals.length > 0 ? positionals.join(' ') : ALL_SCOPES,
    ttlSeconds,
    issuer: auth.issuer,
    audience: auth.audience,
  })
}

class UsageError extends Error {}

async function main (): Promise<number> {
  try {
    process.stdout.write(await mintToken(process.argv.slice(2), process.env) + '\n')
    return 0
  } catch (err) {
    if (err instanceof UsageError || err instanceof ConfigError || (err instanceof TypeError && 'code' in err && String(err.code).startsWith('ERR_PARSE_ARGS'))) {
      process.stderr.write(`token: ${err.message}\n${USAGE}\n`)
      return 2
    }
    throw err
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await main()
}
