// Lua scripts of the Redis store. Each touches the keys of one shard only (one hash tag).

/**
 * Writes the next job of a notification and keeps the fallback queue's bookkeeping: when it entered
 * the queue (KEYS[5], for the oldest waiting age) and the dead letters (KEYS[7]).
 * Expects `nextKind`, `nextScore`, `nextMember`, `nextKey`, `id`, `nowMs`, `dead`.
 */
const NEXT = `
if nextKind == 'outbox' then
  redis.call('XADD', nextKey, '*', 'id', nextMember)
elseif nextKind == 'retry' then
  redis.call('ZADD', nextKey, nextScore, nextMember)
elseif nextKind == 'fallback' then
  redis.call('ZADD', nextKey, nextScore, nextMember)
  redis.call('ZADD', KEYS[5], 'NX', nowMs, id)
end
if dead == '1' then redis.call('ZADD', KEYS[7], nowMs, id) elseif dead == '-1' then redis.call('ZREM', KEYS[7], id) end
`

/**
 * Reads the hash fields (a JSON object of strings) at ARGV[from] and the events (a JSON array of
 * JSON strings) at ARGV[from + 1]: two arguments, however many fields and events.
 */
const FIELDS_AND_EVENTS = `
local fields = {}
for k, v in pairs(cjson.decode(ARGV[from])) do
  fields[#fields + 1] = k
  fields[#fields + 1] = v
end
local events = cjson.decode(ARGV[from + 1])
`

/**
 * The commonest accept, kept lean: straight to an outbox, no Idempotency-Key.
 * KEYS: notification, outbox stream, the number's cache entry. ARGV: kept until (epoch ms), id, doc, status, the SHA-1 of
 * the entry expected ('': no check; else nothing is written unless the entry is still that text).
 */
export const ACCEPT_TO_OUTBOX = `
-- Run once already (a resend after a lost answer): accepted. A tombstone (see SETTLE_ACCEPT): refused.
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('HEXISTS', KEYS[1], 'status') end
if ARGV[5] ~= '' then
  local entry = redis.call('GET', KEYS[3])
  if not entry or redis.sha1hex(entry) ~= ARGV[5] then return 0 end
end
redis.call('HSET', KEYS[1], 'doc', ARGV[3], 'status', ARGV[4])
redis.call('PEXPIREAT', KEYS[1], ARGV[1])
redis.call('XADD', KEYS[2], '*', 'id', ARGV[2])
return 1
`

/**
 * Settles an accept whose answer was lost: 1 when the notification's record exists (the accept ran). Else 0, and the
 * id gets a tombstone (a record without `status`, for ARGV[1] ms) that the accept scripts refuse, so an accept still on
 * its way (resent by the Cluster client, or queued behind a stuck pipeline) can no longer store what the caller was
 * told is not stored. KEYS: notification. ARGV: tombstone lifetime (ms).
 */
export const SETTLE_ACCEPT = `
if redis.call('HEXISTS', KEYS[1], 'status') == 1 then return 1 end
redis.call('HSET', KEYS[1], 'void', '1')
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 0
`

/**
 * The hot path: one script per accepted notification. The whole notification and its first events go
 * in as one JSON field (`doc`) beside `status`, which transitions check; later changes are fields of
 * their own and events of a list (see TRANSITION).
 * KEYS: notification, events (unused here), next key, idempotency key, fallback-since, fallback-leased, dead letters, cache entry.
 * ARGV: kept until (epoch ms), nextKind, nextScore, nextMember, idemToken, idemTtl, requestHash, response, id, nowMs, dead, doc, status,
 * the SHA-1 of the cache entry expected ('': no check)
 */
export const ACCEPT = `
-- Run once already (a resend after a lost answer): accepted. A tombstone (see SETTLE_ACCEPT): refused.
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('HEXISTS', KEYS[1], 'status') end
if ARGV[5] ~= '' and redis.call('HGET', KEYS[4], 'token') ~= ARGV[5] then return 0 end
if ARGV[14] ~= '' then
  local entry = redis.call('GET', KEYS[8])
  if not entry or redis.sha1hex(entry) ~= ARGV[14] then return 0 end
end
local id, nowMs, dead = ARGV[9], ARGV[10], ARGV[11]
redis.call('HSET', KEYS[1], 'doc', ARGV[12], 'status', ARGV[13])
redis.call('PEXPIREAT', KEYS[1], ARGV[1])
local nextKind, nextScore, nextMember, nextKey = ARGV[2], ARGV[3], ARGV[4], KEYS[3]
${NEXT}
if ARGV[5] ~= '' then
  redis.call('HSET', KEYS[4], 'state', 'done', 'hash', ARGV[7], 'response', ARGV[8])
  redis.call('HDEL', KEYS[4], 'token')
  redis.call('EXPIRE', KEYS[4], ARGV[6])
end
return 1
`

/**
 * New jobs of one shard's lanes, in the order of KEYS, at most ARGV[3] in all (XREADGROUP's COUNT is per stream).
 * ARGV: group, consumer, count. Answers lane index (1-based), entry id, notification id, ...
 */
export const READ_OUTBOX = `
local out = {}
local left = tonumber(ARGV[3])
for i = 1, #KEYS do
  if left <= 0 then break end
  local reply = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT', left, 'STREAMS', KEYS[i], '>')
  if reply then
    for _, entry in ipairs(reply[1][2]) do
      local fields, id = entry[2], ''
      for f = 1, #fields, 2 do
        if fields[f] == 'id' then id = fields[f + 1] end
      end
      out[#out + 1] = i
      out[#out + 1] = entry[1]
      out[#out + 1] = id
      left = left - 1
    end
  end
end
return out
`

/**
 * A page of a sorted set by score, ties by member, after a position. KEYS: the set. ARGV: min, max, the position's
 * score ('' = from the start) and member, limit. Answers member, score, member, score, ...
 */
export const RANGE_AFTER = `
local limit = tonumber(ARGV[5])
local afterScore = ARGV[3] ~= '' and tonumber(ARGV[3]) or nil
-- From the position, unless it lies below min: then from min, where every score is past the position.
local from = ARGV[1]
if afterScore and (ARGV[1] == '-inf' or afterScore >= tonumber(ARGV[1])) then from = ARGV[3] end
local out = {}
local offset = 0
while #out < limit * 2 do
  local batch = redis.call('ZRANGE', KEYS[1], from, ARGV[2], 'BYSCORE', 'LIMIT', offset, 200, 'WITHSCORES')
  for i = 1, #batch, 2 do
    local score = tonumber(batch[i + 1])
    if #out < limit * 2 and (not afterScore or score > afterScore or batch[i] > ARGV[4]) then
      out[#out + 1] = batch[i]
      out[#out + 1] = batch[i + 1]
    end
  end
  if #batch < 400 then break end
  offset = offset + 200
end
return out
`

/**
 * KEYS: outbox stream. ARGV: group, consumer, entry ids. Resets the idle time of the entries still pending for
 * this consumer (XCLAIM to itself, JUSTID: the delivery count stays); others' entries and acknowledged ones stay as they are.
 */
export const KEEP_JOBS = `
for i = 3, #ARGV do
  local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1)
  if pending[1] and pending[1][2] == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
  end
end
return 1
`

/**
 * KEYS: notification, events, next key, ack stream, fallback-since, fallback-leased, dead letters, pending campaign counts,
 *       fallback wake marks.
 * ARGV: ackEntryId, group, onlyFrom (comma separated, '' = any), nextKind, nextScore, nextMember,
 *       id, nowMs, dead ('1': onto the dead letters; '-1': only from them, and off them), leaseScore ('' = none), fields, events,
 *       kept until (epoch ms; '' = unchanged; never shortened), the campaign count to note ('' = none),
 *       onlyAtAttempt ('' = any), then any pending campaign counts to take off.
 * With a lease, nothing happens unless this caller still holds it (the leased score is its lease). An event that woke
 * the entry during the lease (a wake mark) makes a fallback entry put back due at once, whatever the re-check found.
 */
export const TRANSITION = `
-- Decoded before anything is written: Redis does not undo a script's writes when it fails halfway, and a job
-- acknowledged by a transition that then failed would leave its notification where it was, for ever.
local from = 11
${FIELDS_AND_EVENTS}
-- The answer of an attempt when a later one has begun (the attempts field is written at each attempt's start; an
-- accepted notification has made none): nothing changes, and the job is not acknowledged either, as it is in the
-- hands of the worker making that attempt (taken over), or was acknowledged already.
if ARGV[15] ~= '' and (redis.call('HGET', KEYS[1], 'attempts') or '0') ~= ARGV[15] then return 0 end
if ARGV[1] ~= '' then
  redis.call('XACK', KEYS[4], ARGV[2], ARGV[1])
  redis.call('XDEL', KEYS[4], ARGV[1])
end
local id, nowMs, dead = ARGV[7], ARGV[8], ARGV[9]
local wokenAt = false
if ARGV[10] ~= '' then
  if redis.call('ZSCORE', KEYS[6], id) ~= ARGV[10] then return 0 end
  redis.call('ZREM', KEYS[6], id)
  wokenAt = redis.call('ZSCORE', KEYS[9], id)
  if wokenAt then redis.call('ZREM', KEYS[9], id) end
end
local applies = redis.call('HEXISTS', KEYS[1], 'status') == 1
-- dead '-1': only a dead letter moves (and leaves the list, in NEXT).
if applies and dead == '-1' and not redis.call('ZSCORE', KEYS[7], id) then applies = false end
if applies and ARGV[3] ~= '' then
  local status = redis.call('HGET', KEYS[1], 'status')
  applies = false
  for s in string.gmatch(ARGV[3], '[^,]+') do
    if s == status then applies = true end
  end
end
if not applies then
  -- A lease held on a record that is gone or has left the fallback path: it no longer waits there.
  if ARGV[10] ~= '' then redis.call('ZREM', KEYS[5], id) end
  return 0
end
if #fields > 0 then redis.call('HSET', KEYS[1], unpack(fields)) end
if ARGV[13] ~= '' then redis.call('PEXPIREAT', KEYS[1], ARGV[13], 'GT') end
if #events > 0 then
  redis.call('RPUSH', KEYS[2], unpack(events))
  -- The list is made by the first transition: it lives as long as the notification.
  if redis.call('PTTL', KEYS[2]) == -1 then redis.call('PEXPIRE', KEYS[2], redis.call('PTTL', KEYS[1])) end
end
if ARGV[13] ~= '' and redis.call('EXISTS', KEYS[2]) == 1 then redis.call('PEXPIREAT', KEYS[2], ARGV[13], 'GT') end
local nextKind, nextScore, nextMember, nextKey = ARGV[4], ARGV[5], ARGV[6], KEYS[3]
if wokenAt and nextKind == 'fallback' and tonumber(wokenAt) < tonumber(nextScore) then nextScore = wokenAt end
${NEXT}
if ARGV[10] ~= '' and nextKind ~= 'fallback' then redis.call('ZREM', KEYS[5], id) end
for i = 16, #ARGV do redis.call('ZREM', KEYS[8], ARGV[i]) end
if ARGV[14] ~= '' then redis.call('ZADD', KEYS[8], nowMs, ARGV[14]) end
return 1
`

/**
 * Writes a cached reachability unless the entry held is newer news (see newerNews in store.ts: ISO instants compare
 * as text). KEYS: the entry. ARGV: the entry's text, keep seconds (nothing written when 0 or less), since (an ISO
 * instant; '' = no check), the entry's status instant. Answers the entry held when it stands, else nil.
 */
export const PUT_REACHABILITY = `
if ARGV[3] ~= '' then
  local raw = redis.call('GET', KEYS[1])
  if raw then
    -- An entry this script cannot read (it holds a lone surrogate, which cjson refuses) is taken as older.
    local ok, held = pcall(cjson.decode, raw)
    local r = ok and type(held) == 'table' and held.record
    if type(r) == 'table' and type(r.checked_at) == 'string' then
      local status = type(r.latest_status_at) == 'string' and r.latest_status_at or r.checked_at
      if r.checked_at > ARGV[3] and status >= ARGV[4] then return raw end
    end
  end
end
if tonumber(ARGV[2]) > 0 then redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2]) end
return false
`

/**
 * Folds a reachability into a number's report record, unless the record already tells of a later moment (its
 * latest_status_at, else its last_checked_at, after the new status instant: ISO instants compare as text).
 * KEYS: the report hash. ARGV: the new status instant ('' = fold in whatever the record knows), first_seen_at
 * (set when none is), then field, value pairs. Answers 1 when folded in, 0 when it changed nothing.
 */
export const RECORD_REPORT = `
if ARGV[1] ~= '' then
  local held = redis.call('HGET', KEYS[1], 'latest_status_at')
  if not held or held == '' then held = redis.call('HGET', KEYS[1], 'last_checked_at') end
  if held and held > ARGV[1] then return 0 end
end
redis.call('HSETNX', KEYS[1], 'first_seen_at', ARGV[2])
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
return 1
`

/**
 * KEYS: idempotency key. ARGV: token, requestHash, claim ms.
 * Answers {'claimed'} | {'in_flight', pttl} | {'done', hash, response}.
 */
export const CLAIM = `
local state = redis.call('HGET', KEYS[1], 'state')
if not state then
  redis.call('HSET', KEYS[1], 'state', 'pending', 'token', ARGV[1], 'hash', ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return {'claimed'}
end
if state == 'pending' then return {'in_flight', redis.call('PTTL', KEYS[1])} end
return {'done', redis.call('HGET', KEYS[1], 'hash'), redis.call('HGET', KEYS[1], 'response')}
`

/** KEYS: idempotency key. ARGV: token. Deletes the claim only if it is still this request's. */
export const RELEASE = `
if redis.call('HGET', KEYS[1], 'token') == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`

/** KEYS: an idempotency record. ARGV: seconds. Answered, it expires within that time at the latest; a claim in flight stays as it is. */
export const SHORTEN_ANSWERED = `
if redis.call('HGET', KEYS[1], 'state') == 'done' then return redis.call('EXPIRE', KEYS[1], ARGV[1], 'LT') end
return 0
`

/**
 * KEYS: retry set, then one outbox stream per lane. ARGV: now, count, then the lane names in KEYS order.
 * Members are "<lane>|<notification id>".
 */
export const RELEASE_DUE = `
local due = redis.call('ZRANGE', KEYS[1], '-inf', ARGV[1], 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[2]))
for _, member in ipairs(due) do
  local sep = string.find(member, '|', 1, true)
  local lane, id = string.sub(member, 1, sep - 1), string.sub(member, sep + 1)
  for i = 3, #ARGV do
    if ARGV[i] == lane then redis.call('XADD', KEYS[i - 1], '*', 'id', id) end
  end
  redis.call('ZREM', KEYS[1], member)
end
return #due
`

/**
 * KEYS: fallback queue, leased set, wake marks. ARGV: now, lease until, count.
 * Moves due entries into the leased set, scored by when the lease runs out; answers their ids. A lease starts
 * with no wake mark: the re-check it is taken for reads what woke it.
 */
export const TAKE_DUE = `
local due = redis.call('ZRANGE', KEYS[1], '-inf', ARGV[1], 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(due) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZADD', KEYS[2], ARGV[2], id)
  redis.call('ZREM', KEYS[3], id)
end
return due
`

/** KEYS: fallback queue, leased set, wake marks. ARGV: now. Leases that ran out (their holder died) are due again at once. */
export const EXPIRE_LEASES = `
local lapsed = redis.call('ZRANGE', KEYS[2], '-inf', ARGV[1], 'BYSCORE', 'LIMIT', 0, 1000)
for _, id in ipairs(lapsed) do
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZADD', KEYS[1], ARGV[1], id)
  redis.call('ZREM', KEYS[3], id)
end
return #lapsed
`

/**
 * KEYS: fallback queue, leased set, wake marks. ARGV: now, then notification ids. A waiting entry is made due now; one
 * under a lease gets a wake mark, so that its re-check, which may have read the cache before the event, puts it back
 * due now (see TRANSITION). Answers how many were woken either way.
 */
export const WAKE_FALLBACK = `
local woken = 0
for i = 2, #ARGV do
  local id = ARGV[i]
  local at = redis.call('ZSCORE', KEYS[1], id)
  if at then
    if tonumber(at) ~= tonumber(ARGV[1]) then
      redis.call('ZADD', KEYS[1], ARGV[1], id)
      woken = woken + 1
    end
  elseif redis.call('ZSCORE', KEYS[2], id) then
    redis.call('ZADD', KEYS[3], ARGV[1], id)
    woken = woken + 1
  end
end
return woken
`

/**
 * A token bucket on the server's clock (every process shares it). KEYS: bucket. ARGV: rate per second, burst.
 * Answers 0 when a token was taken, else the milliseconds until one will be there.
 */
export const TAKE_TOKEN = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rate, burst = tonumber(ARGV[1]), tonumber(ARGV[2])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(b[1]) or burst
local at = tonumber(b[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate / 1000)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = math.ceil((1 - tokens) * 1000 / rate) end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', now)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 1000)
return wait
`

/**
 * KEYS: job hash, numbers list, leases. ARGV: completed at. Completes the job once every chunk of numbers is
 * taken and finished and every number is counted.
 */
export const COMPLETE_REFRESH = `
local j = redis.call('HMGET', KEYS[1], 'status', 'next', 'total', 'done', 'failed')
if j[1] == 'completed' then return 1 end
if tonumber(j[2] or '0') < redis.call('LLEN', KEYS[2]) then return 0 end
if redis.call('ZCARD', KEYS[3]) > 0 then return 0 end
if tonumber(j[4]) + tonumber(j[5]) < tonumber(j[3]) then return 0 end
redis.call('HSET', KEYS[1], 'status', 'completed', 'completed_at', ARGV[1])
return 1
`

/**
 * KEYS: campaign hash, recipients list, numbers set. ARGV: pairs of number and payload.
 * Appends the payloads of numbers not yet in the campaign; answers 1 (appended) or 0 (a duplicate) per pair.
 * The list and the set live as long as the campaign.
 */
export const APPEND_RECIPIENTS = `
local pttl = redis.call('PTTL', KEYS[1])
if pttl < 0 then return redis.error_reply('no such campaign') end
local added = {}
for i = 1, #ARGV, 2 do
  if redis.call('SADD', KEYS[3], ARGV[i]) == 1 then
    redis.call('RPUSH', KEYS[2], ARGV[i + 1])
    added[#added + 1] = 1
  else
    added[#added + 1] = 0
  end
end
redis.call('PEXPIRE', KEYS[2], pttl)
redis.call('PEXPIRE', KEYS[3], pttl)
return added
`

/**
 * `countFinal(nid, status)` and `countMade(nid)`: each campaign notification counted once, in its latest final status,
 * and only once it is counted as made. The `counted` hash holds, by notification id, `+` (made, in progress), the
 * final status it is counted in, or `?` and the final status told before it was counted as made (not yet in any
 * `status:` count). A status told adds to `status:<status>` (or is kept with `?`); `sent` moves to a later final (a
 * delivery receipt); anything else (a repeat, `sent` after a later final) changes nothing. countFinal answers 1 when
 * the status the notification is counted in changed, else 0. countMade counts the status kept with `?`, if any.
 * Expects `campaign` (the campaign hash) and `counted`; the caller makes `counted` expire with the campaign.
 */
const COUNT_FINAL = `
local function countFinal (nid, status)
  local was = redis.call('HGET', counted, nid)
  local made, prior = true, was
  if not was then
    made = false
  elseif was == '+' then
    prior = false
  elseif string.sub(was, 1, 1) == '?' then
    made, prior = false, string.sub(was, 2)
  end
  if prior and (prior ~= 'sent' or status == 'sent') then return 0 end
  if not made then
    redis.call('HSET', counted, nid, '?' .. status)
    return 1
  end
  redis.call('HSET', counted, nid, status)
  if prior then redis.call('HINCRBY', campaign, 'status:' .. prior, -1) end
  redis.call('HINCRBY', campaign, 'status:' .. status, 1)
  return 1
end
local function countMade (nid)
  local was = redis.call('HGET', counted, nid)
  if not was then
    redis.call('HSET', counted, nid, '+')
  elseif string.sub(was, 1, 1) == '?' then
    local status = string.sub(was, 2)
    redis.call('HSET', counted, nid, status)
    redis.call('HINCRBY', campaign, 'status:' .. status, 1)
  end
end
`

/** KEYS: campaign hash, counted statuses. ARGV: notification id, final status. See COUNT_FINAL; a campaign gone counts nothing. */
export const COUNT_CAMPAIGN_FINAL = `
local campaign, counted = KEYS[1], KEYS[2]
local pttl = redis.call('PTTL', campaign)
if pttl == -2 then return 0 end
${COUNT_FINAL}
local moved = countFinal(ARGV[1], ARGV[2])
if moved == 1 and pttl > 0 then redis.call('PEXPIRE', counted, pttl) end
return moved
`

/**
 * KEYS: campaign hash, counted statuses. ARGV: notification id, status. Takes the notification out of its count, only
 * while counted in that status (in progress again: made, so `+`; or, told before it was counted as made, forgotten).
 */
export const REOPEN_CAMPAIGN_FINAL = `
local was = redis.call('HGET', KEYS[2], ARGV[1])
if was == '?' .. ARGV[2] then
  redis.call('HDEL', KEYS[2], ARGV[1])
  return 1
end
if was ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], '+')
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HINCRBY', KEYS[1], 'status:' .. was, -1) end
return 1
`

/**
 * Counts recipients of a chunk its runner still holds (see Store.countCampaignRecipients), each recipient once: the
 * bitmap `handled` has a bit per index, set as it is counted. KEYS: campaign hash, leases, failures (a sorted set by
 * index), counted statuses, handled. ARGV: chunk, lease until, finish (1: the lease ends), how many failures are kept,
 * the minute (epoch minutes), then per recipient six values: index, lookup source or '', notification id or '' (it
 * failed), channel, final status at acceptance or '', failure (JSON) or ''. The failures kept are the lowest indexes,
 * whatever order they come in. Answers how many recipients were counted now, or -1 when the lease is not held as given.
 */
export const COUNT_CAMPAIGN_RECIPIENTS = `
if tonumber(redis.call('ZSCORE', KEYS[2], ARGV[1]) or '-1') ~= tonumber(ARGV[2]) then return -1 end
if ARGV[3] == '1' then redis.call('ZREM', KEYS[2], ARGV[1]) end
local campaign, failures, counted, handled = KEYS[1], KEYS[3], KEYS[4], KEYS[5]
local pttl = redis.call('PTTL', campaign)
if pttl == -2 then return 0 end
${COUNT_FINAL}
local adds, n, failed = {}, 0, false
local function add (field)
  adds[field] = (adds[field] or 0) + 1
end
for i = 6, #ARGV, 6 do
  if redis.call('SETBIT', handled, ARGV[i], 1) == 0 then
    n = n + 1
    if ARGV[i + 1] ~= '' then add('lookups:' .. ARGV[i + 1]) end
    if ARGV[i + 2] ~= '' then
      add('channel:' .. ARGV[i + 3])
      countMade(ARGV[i + 2])
      if ARGV[i + 4] ~= '' then countFinal(ARGV[i + 2], ARGV[i + 4]) end
    else
      add('recipients_failed')
      if redis.call('ZCOUNT', failures, ARGV[i], ARGV[i]) == 0 then redis.call('ZADD', failures, ARGV[i], ARGV[i + 5]) end
      failed = true
    end
  end
end
if n == 0 then return 0 end
adds['processed'] = n
adds['minute:' .. ARGV[5]] = n
for field, by in pairs(adds) do redis.call('HINCRBY', campaign, field, by) end
if failed then redis.call('ZREMRANGEBYRANK', failures, tonumber(ARGV[4]), -1) end
if pttl > 0 then
  redis.call('PEXPIRE', handled, pttl)
  redis.call('PEXPIRE', counted, pttl)
  if failed then redis.call('PEXPIRE', failures, pttl) end
end
return n
`

/**
 * Work in leased chunks (a campaign's recipients, a fleet scan's numbers): a list never popped, the hash's `next`
 * index, and a sorted set of the chunks held, "<start>:<count>" scored by when the lease runs out; the score is
 * the holder's proof. KEYS: hash, list, leases. ARGV: now, lease until, count.
 * While the hash's status is running, re-leases a chunk whose holder went silent, else leases the next `count`
 * items; answers {start, count, items...}, or {} when there is nothing to take.
 */
export const CLAIM_CHUNK = `
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then return {} end
local start, count
local lapsed = redis.call('ZRANGE', KEYS[3], '-inf', ARGV[1], 'BYSCORE', 'LIMIT', 0, 1)
if #lapsed > 0 then
  local sep = string.find(lapsed[1], ':', 1, true)
  start, count = tonumber(string.sub(lapsed[1], 1, sep - 1)), tonumber(string.sub(lapsed[1], sep + 1))
else
  start = tonumber(redis.call('HGET', KEYS[1], 'next') or '0')
  count = math.min(tonumber(ARGV[3]), redis.call('LLEN', KEYS[2]) - start)
  if count <= 0 then return {} end
  redis.call('HSET', KEYS[1], 'next', start + count)
end
redis.call('ZADD', KEYS[3], ARGV[2], start .. ':' .. count)
redis.call('PEXPIRE', KEYS[3], math.max(redis.call('PTTL', KEYS[1]), 1000))
local items = redis.call('LRANGE', KEYS[2], start, start + count - 1)
table.insert(items, 1, count)
table.insert(items, 1, start)
return items
`

/** KEYS: leases. ARGV: chunk, lease until, new lease until. Extends a lease this holder still has; answers 1, else 0. */
export const RENEW_CHUNK = `
if tonumber(redis.call('ZSCORE', KEYS[1], ARGV[1]) or '-1') ~= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return 1
`

/**
 * KEYS: hash, leases. ARGV: chunk, lease until, then pairs of counter and increment.
 * Ends a chunk this holder still has and adds its counts in the same step; answers 1, else 0 (another runner
 * took the chunk over and its counts will be the ones kept).
 */
export const FINISH_CHUNK = `
if tonumber(redis.call('ZSCORE', KEYS[2], ARGV[1]) or '-1') ~= tonumber(ARGV[2]) then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
if redis.call('EXISTS', KEYS[1]) == 1 then
  for i = 3, #ARGV, 2 do redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1]) end
end
return 1
`

/**
 * KEYS: campaign hash. ARGV: to, at, then the statuses it may move from. Answers {changed (0/1), status now}. Moved to
 * running, its run starts: `run_since` (at) and `run_processed` (the recipients processed by then).
 */
export const SET_CAMPAIGN_STATUS = `
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {0, ''} end
for i = 3, #ARGV do
  if ARGV[i] == status then
    redis.call('HSET', KEYS[1], 'status', ARGV[1], 'updated_at', ARGV[2])
    if ARGV[1] == 'running' then
      redis.call('HSET', KEYS[1], 'run_since', ARGV[2], 'run_processed', redis.call('HGET', KEYS[1], 'processed') or 0)
    end
    return {1, ARGV[1]}
  end
end
return {0, status}
`

/**
 * KEYS: campaign hash, recipients list, leases, numbers set, handled. ARGV: at. Completes a running campaign once every
 * chunk is taken and finished and every accepted recipient is processed; its recipients, numbers and bitmap of the
 * recipients counted go then (a million recipients hold about 100 MB), the campaign's record and counts stay for its
 * retention.
 */
export const COMPLETE_CAMPAIGN = `
local c = redis.call('HMGET', KEYS[1], 'status', 'next', 'processed', 'recipients_accepted')
if c[1] == 'completed' then return 1 end
if c[1] ~= 'running' then return 0 end
if tonumber(c[2] or '0') < redis.call('LLEN', KEYS[2]) then return 0 end
if redis.call('ZCARD', KEYS[3]) > 0 then return 0 end
if tonumber(c[3] or '0') < tonumber(c[4] or '0') then return 0 end
redis.call('HSET', KEYS[1], 'status', 'completed', 'completed_at', ARGV[1], 'updated_at', ARGV[1])
redis.call('DEL', KEYS[2], KEYS[4], KEYS[5])
return 1
`

/**
 * KEYS: campaign hash, recipients list, leases, numbers set, handled. ARGV: now (ms). A cancelled campaign's recipients,
 * numbers and bitmap go once no chunk lease is live (a holder finishing later finds its lease gone and counts nothing):
 * 1; else 0. The record, counts and failures stay for the retention, as a completed campaign's do.
 */
export const RELEASE_CANCELLED_CAMPAIGN = `
if redis.call('HGET', KEYS[1], 'status') ~= 'cancelled' then return 0 end
if redis.call('ZCOUNT', KEYS[3], '(' .. ARGV[1], '+inf') > 0 then return 0 end
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4], KEYS[5])
return 1
`

/** KEYS: idempotency key. ARGV: token, requestHash, response, ttl seconds. Stores the answer if the claim is still this request's. */
export const FINISH_IDEMPOTENCY = `
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'state', 'done', 'hash', ARGV[2], 'response', ARGV[3])
redis.call('HDEL', KEYS[1], 'token')
redis.call('EXPIRE', KEYS[1], ARGV[4])
return 1
`

/** Keeps KEYS[1] at least until `till` (epoch ms); never shortens it. */
const KEEP_UNTIL = `
if redis.call('PEXPIRETIME', KEYS[1]) < till then redis.call('PEXPIREAT', KEYS[1], till) end
`

/**
 * KEYS: the number's subscriptions hash. ARGV: type, until (epoch ms), token. Claims the making of the type's
 * subscription unless the stored one, or one being made, lasts that long. Answers 1 when claimed.
 */
export const CLAIM_SUBSCRIPTION = `
local t = ARGV[1]
local till = tonumber(ARGV[2])
local f = redis.call('HMGET', KEYS[1], t, t .. ':until', t .. ':claimed')
if f[1] and tonumber(f[2] or '0') >= till then return 0 end
if f[3] and tonumber(f[3]) >= till then return 0 end
redis.call('HSET', KEYS[1], t .. ':claim', ARGV[3], t .. ':claimed', ARGV[2])
${KEEP_UNTIL}
return 1
`

/** KEYS: the number's subscriptions hash. ARGV: type, token. Drops the claim if it is still this one. */
export const RELEASE_SUBSCRIPTION_CLAIM = `
if redis.call('HGET', KEYS[1], ARGV[1] .. ':claim') == ARGV[2] then redis.call('HDEL', KEYS[1], ARGV[1] .. ':claim', ARGV[1] .. ':claimed') end
return 1
`

/**
 * KEYS: the number's subscriptions hash. ARGV: type, token, subscription id, until (epoch ms). Stores the subscription if
 * the claim is still this one. Answers {1, the id it replaced or ''}, or {0, ''}.
 */
export const SET_SUBSCRIPTION = `
local t = ARGV[1]
local till = tonumber(ARGV[4])
if redis.call('HGET', KEYS[1], t .. ':claim') ~= ARGV[2] then return {0, ''} end
local old = redis.call('HGET', KEYS[1], t)
redis.call('HSET', KEYS[1], t, ARGV[3], t .. ':until', ARGV[4])
redis.call('HDEL', KEYS[1], t .. ':claim', t .. ':claimed')
${KEEP_UNTIL}
return {1, old or ''}
`

/**
 * KEYS: the number's subscriptions hash. ARGV: a subscription id, or '' for all (claims too). Answers the dropped
 * ones as type, id, type, id, ...
 */
export const DROP_SUBSCRIPTIONS = `
local all = redis.call('HGETALL', KEYS[1])
local dropped = {}
for i = 1, #all, 2 do
  local field, value = all[i], all[i + 1]
  if not string.find(field, ':', 1, true) and (ARGV[1] == '' or ARGV[1] == value) then
    dropped[#dropped + 1] = field
    dropped[#dropped + 1] = value
    if ARGV[1] ~= '' then redis.call('HDEL', KEYS[1], field, field .. ':until') end
  end
end
if ARGV[1] == '' then redis.call('DEL', KEYS[1]) end
return dropped
`

/**
 * KEYS: a subscription id's number, its parked events. ARGV: the event, seconds kept, most kept.
 * Parks an event of a subscription id not stored (yet): answers 0, parking nothing, once the id is stored.
 */
export const PARK_SUBSCRIPTION_EVENT = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if redis.call('LLEN', KEYS[2]) < tonumber(ARGV[3]) then
  redis.call('RPUSH', KEYS[2], ARGV[1])
  redis.call('EXPIRE', KEYS[2], ARGV[2])
end
return 1
`

/** KEYS: a subscription id's parked events. Answers them, oldest first, and forgets them. */
export const TAKE_SUBSCRIPTION_EVENTS = `
local parked = redis.call('LRANGE', KEYS[1], 0, -1)
redis.call('DEL', KEYS[1])
return parked
`
