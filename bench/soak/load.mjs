// The mixed load of a soak run: single notifications to every kind of number, some with an Idempotency-Key
// that is sent again later (the same body: it must answer the first 202 again and create nothing).
import { setTimeout as sleep } from 'node:timers/promises'
import { parsePhoneNumberFromString } from 'libphonenumber-js/max'

/** Kinds of number, with their weight in the mix and the ttl their notifications get. */
export const KINDS = [
  { kind: 'push (DATA+SMS)', to: '+990123400', weight: 22 },
  { kind: 'dead push token → SMS', to: '+990123400', weight: 4, token: 'dead' },
  { kind: 'SMS only', to: '+990123411', weight: 14 },
  { kind: 'DATA only', to: '+990123422', weight: 5 },
  { kind: 'never reachable (expires)', to: '+990123433', weight: 4, ttl: 6 },
  { kind: 'unreachable then reachable', to: '+990123444', weight: 8 },
  { kind: 'NO_COVERAGE', to: '+990123455', weight: 3 },
  { kind: 'SUPPLIER_ERROR', to: '+990123466', weight: 3 },
  { kind: 'slow upstream', to: '+990123477', weight: 3 },
  { kind: '503 on first call', to: '+990123488', weight: 2 },
  { kind: 'NOT_FOUND', to: '+990123499', weight: 3 },
  { kind: 'INVALID_NUMBER_FORMAT', to: '+990123401', weight: 2 },
  { kind: 'other numbers', to: 'random', weight: 27 },
]

const TOTAL_WEIGHT = KINDS.reduce((sum, k) => sum + k.weight, 0)

/** Valid UK mobile numbers (+447911xxxxxx), `count` of them, the same on every run. */
export function ukNumbers (count, from = 100000) {
  const out = []
  for (let i = from; out.length < count && i < 1_000_000; i++) {
    const n = `+447911${String(i).padStart(6, '0')}`
    if (parsePhoneNumberFromString(n)?.isValid()) out.push(n)
  }
  return out
}

function pickKind (random) {
  let r = random() * TOTAL_WEIGHT
  for (const k of KINDS) {
    r -= k.weight
    if (r < 0) return k
  }
  return KINDS[KINDS.length - 1]
}

/**
 * Drives POST /v1/notifications at `rate` per second until `stopAt`. `api()` gives the current base URL
 * (the API restarts mid-run). Returns the ledger of every request.
 */
export function createLoad ({ api, token, rate, idempotentShare = 0.25, randomNumbers, runId }) {
  const requests = [] // { n, kind, to, key, body, answers: [{status, slug, id, replayed, ms}], id, replays: [...] }
  const pending = new Set()
  let seq = 0
  let stopped = false
  let stoppedAt = Infinity
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' }

  async function post (req) {
    const started = performance.now()
    try {
      const res = await fetch(`${api()}/v1/notifications`, {
        method: 'POST',
        headers: req.key ? { ...headers, 'idempotency-key': req.key } : headers,
        body: req.body,
        signal: AbortSignal.timeout(15_000),
      })
      const text = await res.text()
      let json
      try {
        json = JSON.parse(text)
      } catch {
        json = undefined
      }
      return {
        status: res.status,
        slug: res.status === 202 ? undefined : String(json?.type ?? '').split('/').pop() || `http-${res.status}`,
        id: res.status === 202 ? json?.id : undefined,
        replayed: res.headers.get('idempotent-replayed') === 'true',
        retryAfterMs: Number(res.headers.get('retry-after') ?? 0) * 1000,
        ms: performance.now() - started,
      }
    } catch (err) {
      return { status: 0, slug: err.cause?.code ?? err.name ?? 'error', ms: performance.now() - started }
    }
  }

  /**
   * Sends a request; a keyed one that got no definite answer (a network error, a 5xx, a 409 while its first try
   * still holds the key) is sent again, after Retry-After when given, for up to 35 s (an in-flight claim lasts 30 s).
   */
  async function send (req) {
    const giveUpAt = Date.now() + 35_000
    for (let attempt = 0; ; attempt++) {
      const answer = await post(req)
      req.answers.push(answer)
      if (answer.status === 202) {
        if (!req.id) req.id = answer.id
        else if (req.id !== answer.id) req.conflictingIds.push(answer.id)
        return answer
      }
      const definite = answer.status >= 400 && answer.status < 500 && answer.status !== 409 && answer.status !== 429
      // Once the load has stopped, a few more seconds for the answers still owed, then the run moves on.
      if (!req.key || definite || Date.now() > Math.min(giveUpAt, stoppedAt + 5000)) return answer
      await sleep(Math.min(5000, Math.max(answer.retryAfterMs ?? 0, 200 * 2 ** Math.min(attempt, 3))))
    }
  }

  function track (promise) {
    pending.add(promise)
    promise.finally(() => pending.delete(promise))
  }

  function one () {
    const n = ++seq
    const k = pickKind(Math.random)
    const to = k.to === 'random' ? randomNumbers[Math.floor(Math.random() * randomNumbers.length)] : k.to
    const tag = `r${n}`
    const body = JSON.stringify({
      to,
      message: { sms: { text: `soak ${tag}: your code is ${n % 10000}` }, push: { title: 'soak', body: `soak ${tag}` } },
      push_token: k.token === 'dead' ? `dead-${n}` : `tok-${n % 50}`,
      routing: { ttl_seconds: k.ttl ?? 15 },
      client_ref: tag,
    })
    const key = Math.random() < idempotentShare ? `soak-${runId}-${n}` : undefined
    const req = { n, tag, kind: k.kind, to, key, body, answers: [], id: undefined, conflictingIds: [], replays: [] }
    requests.push(req)
    track((async () => {
      const first = await send(req)
      // The same request again a little later, as a client that did not see the answer would: nothing new may come of it.
      if (req.key && first.status === 202 && !stopped) {
        await sleep(200 + Math.random() * 4000)
        const again = await post(req)
        req.replays.push(again)
        if (again.status === 202 && again.id !== req.id) req.conflictingIds.push(again.id)
      }
    })())
  }

  async function run (stopAt) {
    const interval = 1000 / rate
    let next = performance.now()
    while (Date.now() < stopAt) {
      one()
      next += interval
      const wait = next - performance.now()
      if (wait > 0) await sleep(wait)
      else if (wait < -1000) next = performance.now() // far behind (a stall): do not burst to catch up
    }
    stopped = true
    stoppedAt = Date.now()
    await Promise.allSettled([...pending])
  }

  return { requests, run }
}
