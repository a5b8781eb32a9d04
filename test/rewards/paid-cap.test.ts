import { describe, it, expect } from 'vitest'
import { capTriples } from '../../src/rewards/index.js'
import { FLOOR_WEI_PER_UNIT, paidTripleKey, type Pool } from '../../src/economics/index.js'

const R = '0x00000000000000000000000000000000000000Aa'
const S = '0x00000000000000000000000000000000000000bB'
const M = '0x00000000000000000000000000000000000000Cc'
const F = FLOOR_WEI_PER_UNIT.llama

describe('capTriples: the one place the payment cap applies', () => {
  it('sums a triple\'s receipts (addresses in any case) and caps the sum at what its requester paid, per pool', async () => {
    const paid = new Map<string, bigint>([
      [paidTripleKey(R, M, 'llama'), 250n * F + F - 1n], // buys 250 units (floor division)
      [paidTripleKey(S, M, 'llama'), 10_000n * F],
      [paidTripleKey(R, M, 'waifu'), 0n]
    ])
    const asked: string[] = []
    const paidWei = async (epoch: bigint, requester: string, miner: string, pool: Pool): Promise<bigint> => {
      asked.push(`${epoch}:${paidTripleKey(requester, miner, pool)}`)
      return paid.get(paidTripleKey(requester, miner, pool)) ?? 0n
    }
    const out = await capTriples(7n, [
      { requester: R, miner: M, pool: 'llama', units: 100n },
      { requester: R.toLowerCase(), miner: M.toUpperCase().replace('0X', '0x'), pool: 'llama', units: 200n },
      { requester: S, miner: M, pool: 'llama', units: 300n },
      { requester: R, miner: M, pool: 'waifu', units: 50n }
    ], paidWei)
    const by = new Map(out.map(t => [paidTripleKey(t.requester, t.miner, t.pool), t]))
    expect(out).toHaveLength(3)
    expect(by.get(paidTripleKey(R, M, 'llama'))).toMatchObject({ units: 300n, points: 250n, paidWei: 250n * F + F - 1n })
    expect(by.get(paidTripleKey(S, M, 'llama'))).toMatchObject({ units: 300n, points: 300n })
    expect(by.get(paidTripleKey(R, M, 'waifu'))).toMatchObject({ units: 50n, points: 0n, paidWei: 0n })
    // one payment read per triple, for the epoch asked about
    expect(asked.sort()).toEqual([paidTripleKey(R, M, 'llama'), paidTripleKey(R, M, 'waifu'), paidTripleKey(S, M, 'llama')].map(k => `7:${k}`).sort())
  })
})
