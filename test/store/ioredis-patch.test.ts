import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { Redis } from 'ioredis'
import t from 'tap'

// patches/ioredis+6.0.0.patch (applied by npm's postinstall, see patches/README.md): ioredis defined a new
// `length` getter on every Pipeline. With auto-pipelining the store makes a pipeline for each tick's commands,
// and that getter made young-generation GCs keep every pipeline (its commands, their arguments and replies)
// alive, so all of it was promoted to the old generation: on the accept path, twice the scavenge pauses and
// a higher p99 (README, "Measured figures").

t.test('the patch is applied: a pipeline has no getter of its own and still counts its commands', async t => {
  const redis = new Redis({ lazyConnect: true })
  t.teardown(() => redis.disconnect())
  const pipeline = redis.pipeline()
  t.notOk(Object.hasOwn(pipeline, 'length'), 'length comes from the prototype')
  pipeline.get('a').set('b', '1')
  t.equal(pipeline.length, 2, 'length counts the queued commands')
  t.equal(redis.pipeline().length, 0, 'another pipeline has its own count')
})

// Measured in a process of its own, with young-generation GCs on demand (--expose-gc).
const PROBE = `
const { Redis } = require('ioredis')
const v8 = require('node:v8')
const redis = new Redis({ lazyConnect: true })
const oldSpace = () => v8.getHeapSpaceStatistics().find(s => s.space_name === 'old_space').space_used_size
for (let i = 0; i < 2000; i++) redis.pipeline().get('warm')
gc(); gc()
const before = oldSpace()
for (let round = 0; round < 20; round++) {
  for (let i = 0; i < 1000; i++) redis.pipeline().get('key:' + i)
  gc({ type: 'minor' })
}
gc({ type: 'minor' }); gc({ type: 'minor' })
process.stdout.write(String(oldSpace() - before))
`

t.test('pipelines nobody holds die young: minor GCs promote none of them to the old generation', async t => {
  const { stdout } = await promisify(execFile)(process.execPath, ['--expose-gc', '-e', PROBE], { cwd: process.cwd() })
  const grewKb = Number(stdout) / 1024
  // 20,000 dropped pipelines of one command each: unpatched, the old generation grew by about 30 MB
  // (every pipeline promoted); patched, by about 50 KB.
  t.ok(grewKb < 3 * 1024, `the old generation grew by ${Math.round(grewKb)} KB (under 3 MB)`)
})
