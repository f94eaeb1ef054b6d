import { type Page, pageAcrossShards } from '../domain/paging.js'
import type { Store } from '../store/store.js'

const DAY_MS = 86_400_000

export interface StaleContact {
  phone_number: string
  /** When the network last updated the device's status: quiet since then. */
  latest_status_at: string
  last_reachable_at: string | null
  last_checked_at: string | null
}

export interface OfflineDevice {
  phone_number: string
  /** When a check last found it reachable (null: never seen online by reachroute). */
  last_online_at: string | null
  latest_status_at: string | null
  last_checked_at: string
}

/** Contact hygiene and IoT fleet reports: range reads of the report indexes, never scans. */
export class Reports {
  private readonly now: () => number

  constructor (private readonly store: Store, now?: () => number) {
    this.now = now ?? Date.now
  }

  /** Numbers with neither DATA nor SMS connectivity for at least `days` days (by their latest status time). */
  async staleContacts (days: number, cursor: string | undefined, limit: number): Promise<Page<StaleContact>> {
    const before = this.now() - days * DAY_MS
    return pageAcrossShards(this.store.shards, cursor, limit, async (shard, after, count) => {
      const entries = await this.store.reportIndex('stale', shard, -Infinity, before, after, count)
      const reports = await this.store.getReports(entries.map(e => e.phoneNumber))
      return entries.map((e, i) => ({
        at: { score: e.at, member: e.phoneNumber },
        item: {
          phone_number: e.phoneNumber,
          latest_status_at: new Date(e.at).toISOString(),
          last_reachable_at: reports[i]?.last_reachable_at ?? null,
          last_checked_at: reports[i]?.last_checked_at ?? null,
        },
      }))
    })
  }

  /** Numbers not reachable at their last check, checked at or after `since` (epoch ms). */
  async offlineDevices (since: number, cursor: string | undefined, limit: number): Promise<Page<OfflineDevice>> {
    return pageAcrossShards(this.store.shards, cursor, limit, async (shard, after, count) => {
      const entries = await this.store.reportIndex('offline', shard, since, Infinity, after, count)
      const reports = await this.store.getReports(entries.map(e => e.phoneNumber))
      return entries.map((e, i) => ({
        at: { score: e.at, member: e.phoneNumber },
        item: {
          phone_number: e.phoneNumber,
          last_online_at: reports[i]?.last_reachable_at ?? null,
          latest_status_at: reports[i]?.latest_status_at ?? null,
          last_checked_at: new Date(e.at).toISOString(),
        },
      }))
    })
  }
}

/** RFC 4180 CSV: a header line, then one line per item; fields quoted when they need it. */
export function toCsv<T extends object> (items: T[], columns: (keyof T & string)[]): string {
  const cell = (v: unknown) => {
    const text = v === null || v === undefined ? '' : String(v)
    return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text
  }
  return [columns.join(','), ...items.map(item => columns.map(c => cell(item[c])).join(','))].join('\r\n') + '\r\n'
}
