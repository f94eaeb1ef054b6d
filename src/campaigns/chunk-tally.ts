import type { ChunkLease, HandledRecipient } from '../store/store.js'

export interface ChunkTallyOptions {
  /**
   * Counts recipients under the chunk's lease (Store.countCampaignRecipients), ending it with `finish`; resolves how
   * many were counted now, or null when the lease is not held as given.
   */
  count: (handled: HandledRecipient[], lease: ChunkLease, finish: boolean) => Promise<number | null>
  /** How often, at most, the recipients handled so far are counted while the chunk is worked on. */
  everyMs: number
  now: () => number
  /** Told how many recipients each count counted (progress metrics). */
  onCounted: (n: number) => void
}

/**
 * A chunk's handled recipients, counted as they come: at most one count every `everyMs` while the chunk is worked
 * on (one store call, whatever the number of recipients), then the rest at the end, in the step that ends the lease.
 * So the campaign's progress moves on with its recipients, its figures counted together (a notification as made with
 * its channel and lookup), not a chunk at a time. A count that failed, or found the lease renewed since it was read,
 * leaves its recipients to the next one: the store counts each recipient once, however often it is told.
 */
export class ChunkTally {
  private pending: HandledRecipient[] = []
  private sending: Promise<void> | undefined
  private lastAt: number

  constructor (private readonly options: ChunkTallyOptions) {
    this.lastAt = options.now()
  }

  /** A recipient handled, under the lease as it stands. */
  add (handled: HandledRecipient, lease: ChunkLease): void {
    this.pending.push(handled)
    if (this.sending === undefined && this.options.now() - this.lastAt >= this.options.everyMs) this.sending = this.send(lease)
  }

  /** Resolves once no count is under way. */
  async settled (): Promise<void> {
    await this.sending
  }

  /**
   * Counts the recipients not counted yet and ends the lease; resolves false (nothing counted) when the lease was
   * not held. A finish that threw may be tried again.
   */
  async finish (lease: ChunkLease): Promise<boolean> {
    await this.sending
    const counted = await this.options.count(this.pending, lease, true)
    if (counted === null) return false
    this.pending = []
    this.options.onCounted(counted)
    return true
  }

  private async send (lease: ChunkLease): Promise<void> {
    const batch = this.pending
    this.pending = []
    this.lastAt = this.options.now()
    try {
      const counted = await this.options.count(batch, lease, false)
      if (counted === null) this.pending.push(...batch)
      else this.options.onCounted(counted)
    } catch {
      this.pending.push(...batch)
    } finally {
      this.sending = undefined
    }
  }
}
