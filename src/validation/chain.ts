import { getAddress } from 'ethers'
import type { ChainClient } from '../chain/index.js'
import { receiptFromWire } from '../p2p/index.js'
import type { SlashEvidence } from './validator.js'

/**
 * The validator's view of the chain: validators' stake from `NodeRegistry` (the quorum
 * weights) and the `Slashing` call that takes the evidence.
 */

export interface StakeViews {
  stakeOf: (validator: string) => Promise<bigint>
  totalStake: () => Promise<bigint>
}

const MAX_CACHED = 10_000

/** Stake reads, cached for `cacheMs` (default 10 s: verdicts arrive in bursts; stake changes rarely). */
export function chainStakeViews (client: ChainClient, cacheMs = 10_000): StakeViews {
  const cache = new Map<string, { at: number, value: bigint }>()
  const cached = async (key: string, load: () => Promise<bigint>): Promise<bigint> => {
    const hit = cache.get(key)
    if (hit !== undefined && Date.now() - hit.at < cacheMs) return hit.value
    const value = await load()
    // keyed by verdict signers, who can be any key: bounded, the oldest read dropped first
    cache.delete(key)
    if (cache.size >= MAX_CACHED) { const oldest = cache.keys().next().value; if (oldest !== undefined) cache.delete(oldest) }
    cache.set(key, { at: Date.now(), value })
    return value
  }
  return {
    stakeOf: async (v) => await cached(getAddress(v), async () => {
      const r = await client.read<[bigint, bigint]>(client.contracts.nodes, 'validators', [getAddress(v)])
      return r[1] === 0n ? r[0] : 0n
    }),
    totalStake: async () => await cached('total', async () => await client.read<bigint>(client.contracts.nodes, 'totalValidatorStake'))
  }
}

export function chainSlasher (client: ChainClient): (e: SlashEvidence) => Promise<void> {
  return async (e) => {
    await client.slash(receiptFromWire(e.signed.receipt), e.signed.signature, e.verdicts, e.signatures)
  }
}
