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
    // One token a second: had the refused call taken the free token, the next caller would wait about a second.
    const slow = new UpstreamRateLimiter(store, 1, 'slow', 1)
    const stopped = new AbortController()
    stopped.abort()
    await t.rejects(slow.acquire(stopped.signal), { name: 'AbortError' })
    const startedAt = Date.now()
    await slow.acquire()
    t.ok(Date.now() - startedAt < 500, `the free token is still there for the next caller (${Date.now() - startedAt} ms)`)
  })

  t.test('a signal aborted while waiting ends the wait at once, not when the next token comes', async t => {
    const slow = new UpstreamRateLimiter(store, 1, 'slower', 1)
    await slow.acquire() // the next token comes in a second
    const stopping = new AbortController()
    const startedAt = Date.now()
    const waiting = slow.acquire(stopping.signal)
    setTimeout(() => stopping.abort(), 10)
    await t.rejects(waiting, { name: 'AbortError' })
    t.ok(Date.now() - startedAt < 500, `ended ${Date.now() - startedAt} ms after it began`)
  })
})
