import type { ChainClient } from './client.js'

/**
 * Reads a gateway and a miner need per job, cached: whether an operator is registered and
 * active in NodeRegistry with at least the minimum collateral (routing), and a payer's deposit
 * in Payments (a miner's admission). Anyone can advertise or ask with a fresh key, so each cache
 * is bounded (the least recently read entry goes first) and entries expire after a TTL, so an
 * exit, a slash or a withdrawal is seen within it.
 */
export interface ChainReadCacheOptions {
  /** How long a read is reused. Default 15 s: about one block interval times a few. */
  ttlMs: number
  /** Entries kept. Default 4096. */
  maxEntries: number
  now: () => number
}

export const defaultChainReadCacheOptions: ChainReadCacheOptions = { ttlMs: 15_000, maxEntries: 4096, now: Date.now }

/** A bounded, expiring cache of async reads keyed by address; concurrent reads of one key share one call. */
class ReadCache<V> {
  private readonly entries = new Map<string, { at: number, value: Promise<V> }>()
  constructor (private readonly o: ChainReadCacheOptions, private readonly load: (key: string) => Promise<V>) {}

  async get (key: string): Promise<V> {
    const k = key.toLowerCase()
    const hit = this.entries.get(k)
    if (hit !== undefined && this.o.now() - hit.at <= this.o.ttlMs) {
      this.entries.delete(k)
      this.entries.set(k, hit)
      return await hit.value
    }
    const value = this.load(key)
    this.entries.delete(k)
    if (this.entries.size >= this.o.maxEntries) {
      const oldest = this.entries.keys().next().value
      if (oldest !== undefined) this.entries.delete(oldest)
    }
    const entry = { at: this.o.now(), value }
    this.entries.set(k, entry)
    // a failed read is not remembered: the next job asks again
    value.catch(() => { if (this.entries.get(k) === entry) this.entries.delete(k) })
    return await value
  }
}

export interface MinerEligibility {
  /** Registered, not exiting, and holding at least NodeRegistry's minimum collateral. */
  isEligible: (operator: string) => Promise<boolean>
}

export function minerEligibility (chain: Pick<ChainClient, 'read' | 'contracts'>, init: Partial<ChainReadCacheOptions> = {}): MinerEligibility {
  const o = { ...defaultChainReadCacheOptions, ...init }
  let minCollateral: Promise<bigint> | null = null
  const cache = new ReadCache<boolean>(o, async (operator) => {
    minCollateral ??= chain.read<bigint>(chain.contracts.nodes, 'minCollateral').catch((e: unknown) => { minCollateral = null; throw e })
    const [active, collateral, min] = await Promise.all([
      chain.read<boolean>(chain.contracts.nodes, 'isActive', [operator]),
      chain.read<bigint>(chain.contracts.nodes, 'collateralOf', [operator]),
      minCollateral
    ])
    return active && collateral >= min
  })
  return { isEligible: async (operator) => await cache.get(operator) }
}

/** A payer's Payments deposit, cached (a miner's admission check reads it per job). */
export function depositReader (chain: Pick<ChainClient, 'read' | 'contracts'>, init: Partial<ChainReadCacheOptions> = {}): (payer: string) => Promise<bigint> {
  const o = { ...defaultChainReadCacheOptions, ...init }
  const cache = new ReadCache<bigint>(o, async (payer) => await chain.read<bigint>(chain.contracts.payments, 'deposits', [payer]))
  return async (payer) => await cache.get(payer)
}
