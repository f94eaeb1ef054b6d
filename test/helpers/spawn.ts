/**
 * The command line that starts `command` as production would: without the tap runner's loaders.
 *
 * The runner loads @tapjs/processinfo into each test file's process, and that adds itself to the NODE_OPTIONS of
 * every process a test starts, whatever `env` it is given (a spawn hook, for coverage and `tap --changed` of child
 * processes). In each Node process it runs a loader thread and records the files loaded: loading the built app
 * (`dist/src/app.js`) took 1.6 s instead of 0.8 s with it, and 1 s more CPU. With coverage off (`npm test`) nothing reads what it
 * records, so the processes the tests start go through `env` (coreutils), which sets NODE_OPTIONS to the one in
 * `env`, or to none, over the one added, then execs the command: the same process id, signals reach it.
 * With coverage on (`npm run coverage`) the command is left as it is, so the processes count for coverage.
 */
export function withoutTapLoaders (command: string, args: readonly string[], env: NodeJS.ProcessEnv = {}): [string, string[]] {
  if (process.env.TAP_DISABLE_COVERAGE !== '1') return [command, [...args]]
  return ['env', [`NODE_OPTIONS=${env.NODE_OPTIONS ?? ''}`, command, ...args]]
}
