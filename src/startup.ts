import { setTimeout as sleep } from 'node:timers/promises'
import { ConfigError } from './config.js'
import { StoreUnavailableError } from './domain/errors.js'

/** Why a listener could not open, in words, by the system's error code. */
const LISTEN_REASONS: Record<string, string> = {
  EADDRINUSE: 'the port is already in use',
  EACCES: 'permission denied (a port below 1024 needs privileges)',
  EADDRNOTAVAIL: 'the address is not one of this machine\'s',
  ENOTFOUND: 'HOST is neither an address of this machine nor a name that resolves',
  EAI_NONAME: 'HOST is neither an address of this machine nor a name that resolves',
  EAI_AGAIN: 'HOST could not be resolved now (the name server did not answer)',
}

/** A port of this process could not be opened: taken, not allowed, or on an address that is not this machine's. */
export class ListenError extends Error {
  constructor (host: string, port: number, variable: string, cause: NodeJS.ErrnoException) {
    super(`cannot listen on ${host}:${port} (HOST, ${variable}): ${LISTEN_REASONS[cause.code ?? ''] ?? cause.message} (${cause.code})`, { cause })
    this.name = 'ListenError'
  }
}

/**
 * Opens a listener (`variable`: the setting that names its port), turning the system's refusal (a failed bind or
 * listen, or a HOST that does not resolve) into a ListenError that startStep reports in one line.
 */
export async function listening<T> (host: string, port: number, variable: string, listen: () => Promise<T>): Promise<T> {
  try {
    return await listen()
  } catch (err) {
    const { code, syscall } = err as NodeJS.ErrnoException
    if (typeof code === 'string' && (syscall === 'listen' || syscall === 'bind' || syscall === 'getaddrinfo')) {
      throw new ListenError(host, port, variable, err as NodeJS.ErrnoException)
    }
    throw err
  }
}

/**
 * Runs a start step of a process (`who`: how its lines name it). A refusal it can explain (a bad configuration,
 * the store not answering, a port that cannot be opened) ends the process with one line on stderr and exit code 1,
 * not a stack trace. `undo` stops what earlier steps started (the app and its workers), for at most 10 s.
 */
export async function startStep<T> (who: string, step: () => T | Promise<T>, undo?: () => Promise<unknown>): Promise<T> {
  try {
    return await step()
  } catch (err) {
    if (!(err instanceof ConfigError) && !(err instanceof StoreUnavailableError) && !(err instanceof ListenError)) throw err
    process.stderr.write(`${who} cannot start: ${err instanceof StoreUnavailableError ? err.logDetail : err.message}\n`)
    if (undo) await Promise.race([undo().catch(() => {}), sleep(10_000)])
    process.exit(1)
  }
}
