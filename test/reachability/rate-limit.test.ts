import t from 'tap'
import { UpstreamRateLimiter } from '../../src/reachability/rate-limit.js'
import { MemoryStore } from '../../src/store/memory/memory-store.js'

t.test('the upstream budget: a token at a time, and none for a caller that has stopped', async t => {
  const store = new MemoryStore()
  t.teardown(() => store.close())
  const limiter = new UpstreamRateLimiter(store, 10, 'upstream', 1)

  t.test('the first token comes at once; the next after a tenth of a second at 10 per second', async t => {
    await limiter.acquire()
    const startedAt = Date.now()
    await limiter.acquire()
    t.ok(Date.now() - startedAt >= 80, `waited ${Date.now() - startedAt} ms`)
  })

  t.test('an aborted signal is refused before a token is taken, even when one is free', async t => {
    await new Promise(resolve => setTimeout(resolve, 150)) // a token is free again
    const stopped = new AbortController()
    stopped.abort()
    await t.rejects(limiter.acquire(stopped.signal), { name: 'AbortError' })
    const startedAt = Date.now()
    await limiter.acquire()
    t.ok(Date.now() - startedAt < 50, 'the free token is still there for the next caller')
  })

  t.test('a signal aborted while waiting ends the wait', async t => {
    await limiter.acquire() // the bucket is empty now
    const stopping = new AbortController()
    const waiting = limiter.acquire(stopping.signal)
    setTimeout(() => stopping.abort(), 10)
    await t.rejects(waiting, { name: 'AbortError' })
  })
})
