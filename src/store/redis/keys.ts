import { numberShard } from '../../notifications/ids.js'
import type { Lane } from '../store.js'

// Every key is `<prefix>{<tag>}:<name>`: keys that a script touches together share one hash tag,
// so the same code runs on a single Redis and on Redis Cluster.

export class RedisKeys {
  constructor (private readonly prefix: string, private readonly shards: number) {}

  /**
   * The cached reachability of a number lives in the number's shard, beside the notifications accepted for it
   * without an Idempotency-Key: one script can check the entry a decision was based on and store the notification.
   */
  reachability (phoneNumber: string): string {
    return `${this.shard(numberShard(phoneNumber, this.shards))}:reach:${phoneNumber}`
  }

  /** Everything else about one phone number lives under the number's own tag. */

  /** Notifications waiting for the number's device (for event wake-ups). */
  watchers (phoneNumber: string): string {
    return `${this.prefix}{n:${phoneNumber}}:waiting`
  }

  /** Per event type: the subscription id, `<type>:until` (epoch ms), and `<type>:claim`/`<type>:claimed` for one being made. */
  subscriptions (phoneNumber: string): string {
    return `${this.prefix}{n:${phoneNumber}}:subs`
  }

  /** The number a subscription is for, kept as long as the subscription (events need not name the device). */
  subscriptionNumber (subscriptionId: string): string {
    return `${this.prefix}{sub:${subscriptionId}}:number`
  }

  /** Events of a subscription id that came before the id was stored (the operator's initial event), briefly. */
  subscriptionEarlyEvents (subscriptionId: string): string {
    return `${this.prefix}{sub:${subscriptionId}}:early`
  }

  report (phoneNumber: string): string {
    return `${this.prefix}{n:${phoneNumber}}:report`
  }

  /** A report index, split in shards so no single slot holds every number. */
  reportIndex (index: 'stale' | 'offline', shard: number): string {
    return `${this.prefix}{r${shard}}:report:${index}`
  }

  bucket (name: string): string {
    return `${this.prefix}{rl:${name}}:bucket`
  }

  refreshJob (id: string): string {
    return `${this.prefix}{rj:${id}}:job`
  }

  /** The job's numbers, in order (named when they were popped; now read by index, never popped). */
  refreshTodo (id: string): string {
    return `${this.prefix}{rj:${id}}:todo`
  }

  /** The chunks of numbers runners hold, by when their lease runs out. */
  refreshLeases (id: string): string {
    return `${this.prefix}{rj:${id}}:leases`
  }

  refreshActive (): string {
    return `${this.prefix}{rj}:active`
  }

  /** A campaign: its document, status, next recipient index and counters, in one hash. */
  campaign (id: string): string {
    return `${this.prefix}{c:${id}}:campaign`
  }

  campaignRecipients (id: string): string {
    return `${this.prefix}{c:${id}}:recipients`
  }

  /**
   * Failed recipients with their reasons, a sorted set by index (the lowest CAMPAIGN_FAILURES_KEPT). Not `:failures`:
   * that was a hash, and a campaign kept from before would answer WRONGTYPE.
   */
  campaignFailures (id: string): string {
    return `${this.prefix}{c:${id}}:failed`
  }

  /** The numbers already in the campaign: a number listed twice is notified once. */
  campaignNumbers (id: string): string {
    return `${this.prefix}{c:${id}}:numbers`
  }

  /**
   * What each of the campaign's notifications is counted as, a hash by notification id: `+` made and in progress, a
   * final status (made, counted in it), or `?` and a final status (told before it was counted as made: not counted in
   * it yet). A count told twice, or late, moves nothing. Expires with the campaign (receipts keep coming after it
   * completes).
   */
  campaignCounted (id: string): string {
    return `${this.prefix}{c:${id}}:counted`
  }

  /** The recipients counted (see Store.countCampaignRecipients), a bitmap by index: each is counted once. */
  campaignHandled (id: string): string {
    return `${this.prefix}{c:${id}}:handled`
  }

  /** The chunks of recipients runners hold, by when their lease runs out. */
  campaignLeases (id: string): string {
    return `${this.prefix}{c:${id}}:leases`
  }

  /** Every campaign by creation time (for listing). */
  campaignIndex (): string {
    return `${this.prefix}{campaigns}:index`
  }

  campaignActive (): string {
    return `${this.prefix}{campaigns}:active`
  }

  /** An event applied; `eventKey` is a hash of its source and id. */
  event (eventKey: string): string {
    return `${this.prefix}{e:${eventKey}}:seen`
  }

  private shard (shard: number): string {
    return `${this.prefix}{s${shard}}`
  }

  notification (shard: number, id: string): string {
    return `${this.shard(shard)}:n:${id}`
  }

  events (shard: number, id: string): string {
    return `${this.shard(shard)}:ev:${id}`
  }

  outbox (shard: number, lane: Lane): string {
    return `${this.shard(shard)}:outbox:${lane}`
  }

  retry (shard: number): string {
    return `${this.shard(shard)}:retry`
  }

  fallback (shard: number): string {
    return `${this.shard(shard)}:fallback`
  }

  /**
   * Campaign counts to make (see Store.pendingCampaignCounts): a sorted set by when each was noted, beside the
   * notifications, so the transition that makes a notification final notes its count in the same step.
   */
  pendingCounts (shard: number): string {
    return `${this.shard(shard)}:counts:pending`
  }

  /** When each entry entered the fallback queue: the oldest waiting age. */
  fallbackSince (shard: number): string {
    return `${this.shard(shard)}:fallback:since`
  }

  /** Entries a scheduler is re-checking, scored by when its lease runs out. */
  fallbackLeased (shard: number): string {
    return `${this.shard(shard)}:fallback:leased`
  }

  /** Leased entries an event woke during their re-check: put back due at once (see WAKE_FALLBACK). */
  fallbackWoken (shard: number): string {
    return `${this.shard(shard)}:fallback:woken`
  }

  /** Checks and wake-ups per minute. */
  fallbackStats (shard: number): string {
    return `${this.shard(shard)}:fallback:stats`
  }

  dead (shard: number): string {
    return `${this.shard(shard)}:dead`
  }

  idempotency (shard: number, key: string): string {
    return `${this.shard(shard)}:idem:${key}`
  }
}
