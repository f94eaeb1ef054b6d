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

// Measured in a process of its own, with young-generation GCs on demand (--expose-gc) and without coverage (which
// compiles and keeps more of its own). What the old generation gains during each of those GCs is what they promoted
// (a full GC V8 starts by itself in between frees old garbage, so the old generation's size alone would hide it).
// The same rounds run first to warm up, so the code is compiled before measuring.
const PROBE = `
const { Redis } = require('ioredis')
const v8 = require('node:v8')
const redis = new Redis({ lazyConnect: true })
const oldSpace = () => v8.getHeapSpaceStatistics().find(s => s.space_name === 'old_space').space_used_size
let promoted = 0
const minorGc = () => {
  const before = oldSpace()
  gc({ type: 'minor' })
  promoted += oldSpace() - before
}
const rounds = n => {
  for (let round = 0; round < n; round++) {
    for (let i = 0; i < 2000; i++) redis.pipeline().get('key:' + i)
    minorGc()
  }
  minorGc()
  minorGc()
}
rounds(5)
promoted = 0
rounds(50)
process.stdout.write(String(promoted))
`

t.test('pipelines nobody holds die young: minor GCs promote none of them to the old generation', async t => {
  const env = { ...process.env, NODE_V8_COVERAGE: undefined }
  const { stdout } = await promisify(execFile)(process.execPath, ['--expose-gc', '-e', PROBE], { cwd: process.cwd(), env })
  const promotedMb = Number(stdout) / 1024 / 1024
  // 100,000 dropped pipelines of one command each: unpatched, the minor GCs promote about 150 MB (every pipeline);
  // patched, well under 1 MB.
  t.ok(promotedMb < 15, `minor GCs promoted ${promotedMb.toFixed(1)} MB (under 15 MB)`)
})
