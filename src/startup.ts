import { ConfigError } from './config.js'
import { StoreUnavailableError } from './domain/errors.js'

/**
 * Runs a start step of a process (`who`: how its lines name it). A refusal it can explain (a bad configuration,
 * the store not answering) ends the process with one line on stderr and exit code 1, not a stack trace.
 */
export async function startStep<T> (who: string, step: () => T | Promise<T>): Promise<T> {
  try {
    return await step()
  } catch (err) {
    if (!(err instanceof ConfigError) && !(err instanceof StoreUnavailableError)) throw err
    process.stderr.write(`${who} cannot start: ${err.message}\n`)
    process.exit(1)
  }
}
