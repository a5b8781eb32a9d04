import { z } from 'zod'
import type { Repository, Store } from '../core/store.js'
import type { Logger } from '../core/logger.js'
import type { Advert } from './messages.js'

/**
 * The live view of the mesh's miners, fed by accepted capacity adverts. Adverts expire after
 * their TTL. Each operator's uptime history (sessions of consecutive adverts) is kept in the
 * store's `peers` bucket, so routing can prefer the best uptime (whitepaper §2.2.2).
 */
export interface MinerEntry {
  peerId: string
  address: string
  advert: Advert
  /** Local clock, unix ms. */
  lastSeen: number
  expiresAt: number
}

const MAX_SESSIONS = 64

export const peerHistorySchema = z.object({
  peerId: z.string().max(128),
  firstSeen: z.number().int(),
  lastSeen: z.number().int(),
  /** [start, end] unix ms of each run of adverts without a gap; newest last, at most 64. */
  sessions: z.array(z.tuple([z.number().int(), z.number().int()])).max(MAX_SESSIONS)
})
export type PeerHistory = z.infer<typeof peerHistorySchema>

export interface PeerTableOptions {
  /** A gap longer than this between two adverts ends an uptime session. Default 30 s. */
  sessionGapMs: number
  /** Most miners tracked (bounds memory under a flood of identities). Default 10 000. */
  maxMiners: number
  now: () => number
}

export const defaultPeerTableOptions: PeerTableOptions = { sessionGapMs: 30_000, maxMiners: 10_000, now: Date.now }

export class PeerTable {
  private readonly entries = new Map<string, MinerEntry>()
  /** The same entries by model id: a gateway's lookup per request reads one model's miners, not all. */
  private readonly byModel = new Map<string, Map<string, MinerEntry>>()
  private lastPrune = 0
  private readonly history: Repository<PeerHistory> | null
  private readonly o: PeerTableOptions
  private pending = Promise.resolve()
  private readonly listeners = new Set<(e: MinerEntry) => void>()

  constructor (store: Store | null, private readonly logger: Logger, init: Partial<PeerTableOptions> = {}) {
    this.o = { ...defaultPeerTableOptions, ...init }
    this.history = store === null ? null : store.bucket('peers', peerHistorySchema)
  }

  /** Records an accepted advert (already validated). */
  update (peerId: string, advert: Advert): void {
    const now = this.o.now()
    const key = advert.operator.toLowerCase()
    if (!this.entries.has(key) && this.entries.size >= this.o.maxMiners) this.prune()
    if (!this.entries.has(key) && this.entries.size >= this.o.maxMiners) return
    const entry: MinerEntry = { peerId, address: advert.operator, advert, lastSeen: now, expiresAt: now + advert.ttlMs }
    this.unindex(key)
    this.entries.set(key, entry)
    for (const m of advert.models) {
      let set = this.byModel.get(m.id)
      if (set === undefined) { set = new Map(); this.byModel.set(m.id, set) }
      set.set(key, entry)
    }
    for (const l of this.listeners) l(entry)
    if (this.history !== null) {
      // serialized: read-modify-write of one record must not interleave
      this.pending = this.pending.then(async () => { await this.record(key, peerId, now) }).catch(err => {
        this.logger.warn({ err }, 'cannot write peer history')
      })
    }
  }

  private async record (key: string, peerId: string, now: number): Promise<void> {
    const h = await this.history!.get(key) ?? { peerId, firstSeen: now, lastSeen: now, sessions: [] }
    const last = h.sessions.at(-1)
    if (last !== undefined && now - last[1] <= this.o.sessionGapMs) last[1] = now
    else h.sessions.push([now, now])
    while (h.sessions.length > MAX_SESSIONS) h.sessions.shift()
    h.peerId = peerId
    h.lastSeen = now
    await this.history!.put(key, h)
  }

  /** Calls `fn` on every accepted advert; returns a function that removes it. */
  onAdvert (fn: (e: MinerEntry) => void): () => void {
    this.listeners.add(fn)
    return () => { this.listeners.delete(fn) }
  }

  private unindex (key: string): void {
    const old = this.entries.get(key)
    if (old === undefined) return
    for (const m of old.advert.models) {
      const set = this.byModel.get(m.id)
      set?.delete(key)
      if (set?.size === 0) this.byModel.delete(m.id)
    }
  }

  /** Drops expired adverts. */
  prune (): void {
    const now = this.o.now()
    this.lastPrune = now
    for (const [k, e] of this.entries) if (e.expiresAt <= now) { this.unindex(k); this.entries.delete(k) }
  }

  /** Live miners (unexpired adverts), those serving `modelId` if given, freshest first. */
  miners (modelId?: string): MinerEntry[] {
    const now = this.o.now()
    // a full sweep at most once a second; expired entries are skipped below in any case
    if (now - this.lastPrune >= 1000) this.prune()
    const from = modelId === undefined ? this.entries : this.byModel.get(modelId)
    if (from === undefined) return []
    const out: MinerEntry[] = []
    for (const e of from.values()) if (e.expiresAt > now) out.push(e)
    return out.sort((a, b) => b.lastSeen - a.lastSeen)
  }

  get (address: string): MinerEntry | undefined {
    const e = this.entries.get(address.toLowerCase())
    return e !== undefined && e.expiresAt > this.o.now() ? e : undefined
  }

  /** Waits until pending history writes are on disk. */
  async flush (): Promise<void> { await this.pending }

  async peerHistory (address: string): Promise<PeerHistory | undefined> {
    await this.flush()
    return await this.history?.get(address.toLowerCase())
  }

  /** Fraction of the last `windowMs` that `address` was advertising (0..1), from the store. */
  async uptime (address: string, windowMs: number): Promise<number> {
    const h = await this.peerHistory(address)
    if (h === undefined || windowMs <= 0) return 0
    const now = this.o.now()
    const from = now - windowMs
    let covered = 0
    for (const [s, e] of h.sessions) {
      // a session is live until one gap past its last advert
      const end = Math.min(now, e + (e === h.lastSeen ? Math.min(this.o.sessionGapMs, now - e) : 0))
      const start = Math.max(s, from)
      if (end > start) covered += end - start
    }
    return Math.min(1, covered / windowMs)
  }
}
