// The end of a soak run: what the API says of every accepted id, what Redis holds, what the fakes took,
// checked against each other. Nothing lost, nothing doubled.

const FINAL = new Set(['sent', 'delivered', 'failed', 'expired', 'dropped'])

/** Every notification the store holds (the harness owns this Redis): id → { status, tag, campaignId }. */
export async function storedNotifications (redis) {
  const out = new Map()
  let cursor = '0'
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', 'rr:{s*}:n:*', 'COUNT', 1000)
    cursor = next
    const rows = await Promise.all(keys.map(key => redis.hmget(key, 'doc', 'status')))
    rows.forEach(([doc, status]) => {
      if (!doc) return
      const n = JSON.parse(doc)
      const text = n.request?.message?.sms?.text ?? n.request?.message?.push?.body ?? ''
      out.set(n.id, { status, tag: /\bsoak ([rc]\d+)\b/.exec(text)?.[1], campaignId: n.campaign_id })
    })
  } while (cursor !== '0')
  return out
}

/** Jobs in the outboxes' pending lists that `consumer` holds: the notification ids (read while its process is stopped). */
export async function heldBy (redis, consumer, shards, lanes) {
  const ids = []
  for (let shard = 0; shard < shards; shard++) {
    for (const lane of lanes) {
      const key = `rr:{s${shard}}:outbox:${lane}`
      const pending = await redis.xpending(key, 'delivery', '-', '+', 10_000, consumer)
      for (const [entryId] of pending) {
        const entries = await redis.xrange(key, entryId, entryId)
        const fields = entries[0]?.[1] ?? []
        const at = fields.indexOf('id')
        if (at >= 0) ids.push(fields[at + 1])
      }
    }
  }
  return ids
}

/** GET /v1/notifications/{id} for each id, `concurrency` at once: id → status (or `http-<code>`). */
export async function apiStatuses (base, token, ids, concurrency = 16) {
  const out = new Map()
  const queue = [...ids]
  await Promise.all(Array.from({ length: concurrency }, async () => {
    for (let id = queue.shift(); id !== undefined; id = queue.shift()) {
      for (let attempt = 0; ; attempt++) {
        try {
          const res = await fetch(`${base}/v1/notifications/${id}`, { headers: { authorization: `Bearer ${token}` } })
          const body = await res.json()
          out.set(id, res.status === 200 ? body.status : `http-${res.status}`)
          break
        } catch (err) {
          if (attempt >= 3) {
            out.set(id, `error-${err.cause?.code ?? err.name}`)
            break
          }
        }
      }
    }
  }))
  return out
}

function percentile (values, p) {
  if (values.length === 0) return NaN
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.ceil(p / 100 * sorted.length) - 1)]
}

/**
 * Checks the run. `requests`: the load's ledger; `statuses`: the API's answer per accepted id; `stored`: what
 * Redis holds; `deliveries`: the fakes' ledger; `excused`: ids held by a worker at its SIGKILL (may repeat once);
 * `campaign`: { id, recipients, view } or undefined.
 */
export function verdict ({ requests, statuses, stored, deliveries, excused, campaign }) {
  const problems = []
  const accepted = new Map() // id → request
  const rejected = {}
  const latencies = []
  let idempotentRetries = 0
  let replayedOk = 0
  for (const req of requests) {
    const first = req.answers[0]
    if (first?.status === 202) latencies.push(first.ms)
    if (req.id) accepted.set(req.id, req)
    else {
      const last = req.answers.at(-1)
      const reason = last ? (last.status ? `${last.status} ${last.slug}` : last.slug) : 'not sent'
      rejected[reason] = (rejected[reason] ?? 0) + 1
    }
    if (req.answers.length > 1 || req.replays.length > 0) idempotentRetries += req.answers.length - 1 + req.replays.length
    for (const r of [...req.answers.slice(1), ...req.replays]) if (r.status === 202 && r.replayed && r.id === req.id) replayedOk++
    for (const other of req.conflictingIds) problems.push(`idempotent retry of ${req.tag} (key ${req.key}) created ${other}, the first 202 was ${req.id}`)
  }

  // Every accepted id has a final status.
  const byStatus = {}
  const lost = []
  for (const [id, req] of accepted) {
    const status = statuses.get(id)
    byStatus[status] = (byStatus[status] ?? 0) + 1
    if (!FINAL.has(status)) lost.push(`${id} (${req.tag}, ${req.kind}): ${status}`)
  }

  // Everything the store holds: finished, and one notification per request or campaign recipient.
  const byTag = new Map()
  const unfinished = []
  for (const [id, n] of stored) {
    if (!FINAL.has(n.status) && !accepted.has(id)) unfinished.push(`${id} (${n.tag ?? '?'}): ${n.status}`)
    if (n.tag) byTag.set(n.tag, [...(byTag.get(n.tag) ?? []), id])
  }
  const storedWithoutAnswer = []
  for (const req of requests) {
    const ids = byTag.get(req.tag) ?? []
    if (ids.length > 1) problems.push(`request ${req.tag} became ${ids.length} notifications: ${ids.join(', ')}`)
    if (ids.length === 1 && !req.id) {
      // Stored, but the caller never saw its 202: fine only if no answer it got said it was refused.
      const refused = req.answers.some(a => a.status >= 400 && a.status < 500 && a.status !== 409 && a.status !== 429)
      if (refused) problems.push(`request ${req.tag} was refused (${req.answers.map(a => a.status).join(',')}) yet stored as ${ids[0]}`)
      else storedWithoutAnswer.push(`${ids[0]} (${req.tag}: ${req.answers.map(a => a.status ? `${a.status} ${a.slug ?? ''}`.trim() : a.slug).join(',')})`)
      // The caller was told it failed (or told nothing): a message must not go out for it. Unless the answer said
      // the outcome was not known (outcome-unknown: the store stopped answering mid-accept and named the id).
      const unknown = req.answers.some(a => a.slug === 'outcome-unknown')
      // store-unavailable says nothing was stored.
      if (!unknown && req.answers.some(a => a.slug === 'store-unavailable')) problems.push(`request ${req.tag} was answered store-unavailable, yet stored as ${ids[0]}`)
      if (deliveries.byId.has(ids[0]) && !unknown) problems.push(`${ids[0]} (${req.tag}) was delivered, but its caller never got a 202 (${req.answers.map(a => a.status || a.slug).join(',')})`)
    }
    if (req.id && ids.length === 1 && ids[0] !== req.id) problems.push(`request ${req.tag}: the 202 named ${req.id}, the store holds ${ids[0]}`)
    if (req.id && ids.length === 0) lost.push(`${req.id} (${req.tag}): accepted but not in the store`)
  }

  // Campaign: every accepted recipient became one notification.
  let campaignFigures
  if (campaign) {
    const notes = []
    let made = 0
    let missing = 0
    for (let i = 0; i < campaign.recipients; i++) {
      const ids = byTag.get(`c${i}`) ?? []
      made += Math.min(ids.length, 1)
      if (ids.length > 1) problems.push(`campaign recipient c${i} became ${ids.length} notifications: ${ids.join(', ')}`)
      if (ids.length === 0) missing++
    }
    const failedRecipients = campaign.view?.recipients?.failed ?? 0
    // Every recipient of the soak's campaign can be notified (valid number, every placeholder filled, SMS text):
    // one the runner counted as failed was given up, which is a loss too.
    if (missing > 0) lost.push(`campaign ${campaign.id}: ${missing} recipients never became a notification (${failedRecipients} counted as failed by the runner)`)
    if (campaign.view?.status !== 'completed') notes.push(`campaign status ${campaign.view?.status}`)
    campaignFigures = { recipients: campaign.recipients, notifications: made, missing, counted_failed: failedRecipients, status: campaign.view?.status, view_by_status: campaign.view?.notifications?.by_status, notes }
  }

  // Deliveries: exactly one for every sent/delivered notification, none for any other; none for an unknown id.
  const excusedSet = new Set(excused)
  let duplicatesExcused = 0
  const duplicates = []
  const perChannel = { push: 0, sms: 0 }
  for (const [id, d] of deliveries.byId) {
    for (const channel of d.channels) perChannel[channel]++
    const n = stored.get(id)
    if (!n) {
      problems.push(`delivery of ${id} (${[...d.tags].join(',')}), which the store does not know`)
      continue
    }
    if (n.status !== 'sent' && n.status !== 'delivered') {
      problems.push(`${id} (${n.tag}) was delivered ${d.count} time(s) but ended ${n.status}`)
      continue
    }
    if (d.count > 1) {
      if (excusedSet.has(id) && d.count === 2) duplicatesExcused++
      else duplicates.push(`${id} (${n.tag}): ${d.count} deliveries (${d.channels.join(', ')})${excusedSet.has(id) ? ', held at a SIGKILL' : ''}`)
    }
  }
  const neverDelivered = []
  for (const [id, n] of stored) {
    if ((n.status === 'sent' || n.status === 'delivered') && !deliveries.byId.has(id)) neverDelivered.push(`${id} (${n.tag}): ${n.status} but no provider took it`)
  }
  lost.push(...neverDelivered, ...unfinished.map(u => `unfinished in the store: ${u}`))

  const storedByStatus = {}
  for (const n of stored.values()) storedByStatus[n.status] = (storedByStatus[n.status] ?? 0) + 1
  return {
    requests: requests.length,
    accepted: accepted.size,
    rejected,
    accepted_by_status: byStatus,
    stored: stored.size,
    stored_by_status: storedByStatus,
    delivered: { push: perChannel.push, sms: perChannel.sms, ids: deliveries.byId.size },
    idempotent_retries: idempotentRetries,
    replayed_ok: replayedOk,
    stored_without_answer: storedWithoutAnswer,
    campaign: campaignFigures,
    duplicates_excused: duplicatesExcused,
    duplicates,
    lost,
    problems,
    latency_ms: { p50: percentile(latencies, 50), p99: percentile(latencies, 99) },
    ok: duplicates.length === 0 && lost.length === 0 && problems.length === 0,
  }
}
