import { type Page, pageAsOf } from '../domain/paging.js'
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

  /**
   * Numbers with neither DATA nor SMS connectivity for at least `days` days (by their latest status time), as at
   * the listing's first page: its time is the cut-off of every page.
   */
  async staleContacts (days: number, cursor: string | undefined, limit: number): Promise<Page<StaleContact>> {
    return pageAsOf(this.store.shards, cursor, limit, this.now(), async (shard, after, count, asOf) => {
      const entries = await this.store.reportIndex('stale', shard, -Infinity, asOf - days * DAY_MS, after, count)
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

  /**
   * Numbers not reachable at their last check, checked at or after `since` (epoch ms) and by the listing's first
   * page: a device checked again after it has moved past every cursor of the listing, and is left out.
   */
  async offlineDevices (since: number, cursor: string | undefined, limit: number): Promise<Page<OfflineDevice>> {
    return pageAsOf(this.store.shards, cursor, limit, this.now(), async (shard, after, count, asOf) => {
      const entries = await this.store.reportIndex('offline', shard, since, asOf, after, count)
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
