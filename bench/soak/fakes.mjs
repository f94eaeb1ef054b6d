// The outside world of a soak run, on loopback in the harness process: the reachability upstream (Vonage
// Identity Insights), the SMS provider (Vonage Messages) and the customer's push gateway. The two providers
// count every message they take, by notification id; each has fault switches the harness flips mid-run.
import { createHash, createHmac, randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { createServer } from 'node:http'

async function listen (handler) {
  const sockets = new Set()
  const server = createServer((req, res) => {
    let body = ''
    req.setEncoding('utf8')
    req.on('data', chunk => { body += chunk })
    req.on('end', () => {
      let json
      try {
        json = body ? JSON.parse(body) : undefined
      } catch {
        json = undefined
      }
      Promise.resolve(handler({ method: req.method, path: req.url, headers: req.headers, body, json }))
        .then(reply => {
          if (reply === null) return // a timeout spell: never answer (the client gives up)
          res.writeHead(reply.status, { 'content-type': 'application/json', ...reply.headers })
          res.end(reply.json === undefined ? '' : JSON.stringify(reply.json))
        })
        .catch(err => {
          res.writeHead(500, { 'content-type': 'application/json' })
          res.end(JSON.stringify({ title: 'fake failed', detail: err.message }))
        })
    })
  })
  server.on('connection', socket => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  server.keepAliveTimeout = 30_000
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    close: () => {
      for (const socket of sockets) socket.destroy()
      return new Promise(resolve => server.close(() => resolve()))
    },
  }
}

function problem (status, detail, headers = {}) {
  return { status, headers: { 'content-type': 'application/problem+json', ...headers }, json: { type: `https://developer.vonage.com/api-errors#${status}`, title: 'Error', detail, instance: randomUUID() } }
}

const OK = { code: 'OK', message: 'Success' }
const LATEST = '2026-01-01T00:00:00.000Z'
const insight = reachability => ({ status: 200, json: { request_id: randomUUID(), insights: { reachability } } })
const reachable = connectivity => insight({ latest_status_at: LATEST, is_reachable: true, connectivity, status: OK })
const unreachable = () => insight({ latest_status_at: LATEST, is_reachable: false, status: OK })
const status = (code, message) => insight({ status: { code, message } })

/**
 * Vonage Identity Insights, answering Vonage's virtual-operator numbers as the sandbox does, with two changes
 * that suit a run of a minute: +990123444 flaps (unreachable, then reachable, every `flapMs` in turn), and
 * +990123477 is slow by `slowMs`. Any other number: a stable answer from a hash (70 % DATA+SMS, 15 % SMS,
 * 5 % DATA, 10 % not reachable). Fault switches: `mode` 'ok', '503' (every call a 503) or 'timeout' (no answer).
 */
export async function startUpstream ({ flapMs = 4000, slowMs = 300 } = {}) {
  const counters = { calls: 0, answered: 0, served503: 0, timedOut: 0 }
  const state = { mode: 'ok' }
  const firstSeen = new Set()
  const server = await listen(async ({ method, path, headers, json }) => {
    counters.calls++
    if (method !== 'POST' || path !== '/identity-insights/v1/requests') return problem(404, `no resource at ${method} ${path}`)
    if (!String(headers.authorization ?? '').startsWith('Bearer ')) return problem(401, 'a Bearer application JWT is required')
    if (state.mode === '503') {
      counters.served503++
      return problem(503, 'Service Unavailable (soak fault)')
    }
    if (state.mode === 'timeout') {
      counters.timedOut++
      return null
    }
    const number = json?.phone_number
    if (typeof number !== 'string') return problem(400, 'phone_number is required')
    counters.answered++
    const first = !firstSeen.has(number)
    firstSeen.add(number)
    switch (number) {
      case '+990123400': return reachable(['DATA', 'SMS'])
      case '+990123411': return reachable(['SMS'])
      case '+990123422': return reachable(['DATA'])
      case '+990123433': return unreachable()
      case '+990123444': return Math.floor(Date.now() / flapMs) % 2 === 0 ? unreachable() : reachable(['DATA', 'SMS'])
      case '+990123455': return status('NO_COVERAGE', 'The network of this number is not covered')
      case '+990123466': return status('SUPPLIER_ERROR', 'The supplier returned an error')
      case '+990123477':
        await new Promise(resolve => setTimeout(resolve, slowMs))
        return reachable(['DATA', 'SMS'])
      case '+990123488': return first ? problem(503, 'try again later') : reachable(['DATA', 'SMS'])
      case '+990123499': return status('NOT_FOUND', 'The number is not known to the network')
    }
    if (number.startsWith('+990')) return status('INVALID_NUMBER_FORMAT', 'The phone number format is not valid')
    const bucket = createHash('sha256').update(number).digest().readUInt32BE(0) % 100
    if (bucket < 70) return reachable(['DATA', 'SMS'])
    if (bucket < 85) return reachable(['SMS'])
    if (bucket < 90) return reachable(['DATA'])
    return unreachable()
  })
  return { ...server, counters, state }
}

/** Which harness request or campaign recipient a message carries ("soak r123 ..." / "soak c45 ..."), from its text. */
export function tagOf (text) {
  return /\bsoak ([rc]\d+)\b/.exec(String(text ?? ''))?.[1]
}

/**
 * A delivery ledger: each message a provider took (answered 2xx), by notification id and by the harness tag
 * its text carries.
 */
function ledger () {
  const byId = new Map()
  return {
    byId,
    add (id, tag, channel) {
      const entry = byId.get(id) ?? { count: 0, tags: new Set(), channels: [] }
      entry.count++
      if (tag) entry.tags.add(tag)
      entry.channels.push(channel)
      byId.set(id, entry)
    },
  }
}

/**
 * Vonage Messages (SMS): takes a message with 202 and counts it under its client_ref (the notification id).
 * Fault switch `mode`: 'ok', '429' (Retry-After: 1) or '500'.
 */
export async function startSmsProvider (deliveries) {
  const counters = { calls: 0, taken: 0, served429: 0, served500: 0 }
  const state = { mode: 'ok' }
  const server = await listen(({ method, path, headers, json }) => {
    counters.calls++
    if (method !== 'POST' || path !== '/v1/messages') return problem(404, `no resource at ${method} ${path}`)
    if (!String(headers.authorization ?? '').startsWith('Bearer ')) return problem(401, 'a Bearer application JWT is required')
    if (typeof json?.client_ref !== 'string' || typeof json?.text !== 'string' || json.channel !== 'sms') return problem(422, 'client_ref, text and channel sms are required')
    if (state.mode === '429') {
      counters.served429++
      return problem(429, 'Rate limit hit (soak fault)', { 'retry-after': '1' })
    }
    if (state.mode === '500') {
      counters.served500++
      return problem(500, 'Internal error (soak fault)')
    }
    counters.taken++
    deliveries.add(json.client_ref, tagOf(json.text), 'sms')
    return { status: 202, json: { message_uuid: randomUUID() } }
  })
  return { ...server, counters, state }
}

/**
 * The customer's push gateway: checks the HMAC signature, takes a push with 200 and counts it under the body's
 * id (the notification id, also the Idempotency-Key). A token starting with "dead-" is answered 410 (failover).
 */
export async function startPushGateway (secret, deliveries) {
  const counters = { calls: 0, taken: 0, gone: 0, badSignature: 0 }
  const server = await listen(({ method, path, headers, body, json }) => {
    counters.calls++
    if (method !== 'POST' || path !== '/push') return { status: 404, json: { error: 'not found' } }
    const expected = `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`
    if (headers['x-reachroute-signature'] !== expected) {
      counters.badSignature++
      return { status: 401, json: { error: 'bad signature' } }
    }
    if (typeof json?.id !== 'string' || headers['idempotency-key'] !== json.id) return { status: 400, json: { error: 'id and Idempotency-Key must match' } }
    if (String(json.token).startsWith('dead-')) {
      counters.gone++
      return { status: 410, json: { error: 'token unregistered' } }
    }
    counters.taken++
    deliveries.add(json.id, tagOf(json.body), 'push')
    return { status: 200, json: { message_id: `gw-${randomUUID()}` } }
  })
  return { ...server, url: `${server.url}/push`, counters }
}

export function newLedger () {
  return ledger()
}
