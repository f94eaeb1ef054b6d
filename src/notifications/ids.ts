import { hash, randomUUID } from 'node:crypto'
import type { IdempotencyRef } from '../store/store.js'

// A notification id carries its shard, so any process finds its keys in one step: ntf_07_<32 hex>.

const ID = /^ntf_(\d{2})_[0-9a-f]{32}$/

/** The first 32 bits of the key's SHA-256, modulo the shards (crypto.hash to hex: the cheapest way to them). */
export function shardFor (key: string, shards: number): number {
  return Number.parseInt(hash('sha256', key).slice(0, 8), 16) % shards
}

// The shards of recently seen phone numbers: a number is hashed once, not on every notification and cache read for it.
const NUMBER_SHARDS_KEPT = 10_000
const numberShards = new Map<string, number>()
let numberShardsOf = 0

/** shardFor a phone number, remembered for the numbers seen lately (a process uses one shard count). */
export function numberShard (phoneNumber: string, shards: number): number {
  if (shards !== numberShardsOf) {
    numberShards.clear()
    numberShardsOf = shards
  }
  let shard = numberShards.get(phoneNumber)
  if (shard === undefined) {
    if (numberShards.size >= NUMBER_SHARDS_KEPT) numberShards.clear()
    shard = shardFor(phoneNumber, shards)
    numberShards.set(phoneNumber, shard)
  }
  return shard
}

export function newNotificationId (shard: number): string {
  return `ntf_${String(shard).padStart(2, '0')}_${randomUUID().replaceAll('-', '')}`
}

/** The shard of a well-formed id, or undefined for anything else. */
export function shardOfId (id: string, shards: number): number | undefined {
  const match = ID.exec(id)
  if (!match) return undefined
  const shard = Number(match[1])
  return shard < shards ? shard : undefined
}

/** Where the idempotency record of a caller-scoped key lives: its shard, and the key's SHA-256 (a key of any length and text). */
export function idempotencyRef (scopedKey: string, shards: number): IdempotencyRef {
  return { shard: shardFor(scopedKey, shards), key: hash('sha256', scopedKey) }
}
