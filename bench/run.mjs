// npm run bench [-- name ...]: runs the named benchmarks (all by default), one after another.
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const all = ['notify', 'notify-layers', 'campaign', 'phone']
const chosen = process.argv.slice(2).length ? process.argv.slice(2) : all
let failed = 0
for (const name of chosen) {
  if (!all.includes(name)) {
    console.error(`no benchmark "${name}"; there are: ${all.join(', ')}`)
    process.exit(2)
  }
  console.log(`\n=== bench/${name}`)
  const run = spawnSync(process.execPath, [fileURLToPath(new URL(`./${name}.mjs`, import.meta.url))], { stdio: 'inherit' })
  if (run.status !== 0) failed++
}
process.exit(failed ? 1 : 0)
