import t from 'tap'
import { setTimeout as sleep } from 'node:timers/promises'
import { PollingLoop } from '../../src/queue/polling-loop.js'

class SlowTurns extends PollingLoop {
  turns = 0
  constructor () {
    super(60_000, () => {})
  }

  protected async tick (): Promise<boolean> {
    this.turns++
    await sleep(50)
    return false
  }
}

t.test('stop() during a turn ends the loop when the turn ends, without the poll sleep after it', async t => {
  const loop = new SlowTurns()
  loop.start()
  await sleep(10)
  const began = Date.now()
  await loop.stop()
  const took = Date.now() - began
  t.ok(took < 1000, `stopped in ${took} ms, not after the 60 s poll`)
  t.equal(loop.turns, 1)
  t.equal(loop.running, false)
})
