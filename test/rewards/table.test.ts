import { describe, it, expect } from 'vitest'
import {
  WAD, allocate, multiplierWad, splitTips, season2PoolCap, whitepaperEpochCap, defaultSeason2Params
} from '../../src/economics/index.js'
import { computeRewardTable, poolAmounts, type MinerEpoch, type RewardTableInput } from '../../src/rewards/index.js'

const A = '0x00000000000000000000000000000000000000aa'
const B = '0x00000000000000000000000000000000000000bb'
const C = '0x00000000000000000000000000000000000000cc'
const V1 = '0x00000000000000000000000000000000000000f1'
const V2 = '0x00000000000000000000000000000000000000f2'

function miner (operator: string, llama: bigint, waifu: bigint, extra: Partial<MinerEpoch> = {}): MinerEpoch {
  return { operator, payout: operator, points: { llama, waifu }, stake: 0n, votes: 0n, voters: [], slashed: false, ...extra }
}

function input (miners: MinerEpoch[], extra: Partial<RewardTableInput> = {}): RewardTableInput {
  return { epoch: 3n, schedule: 'whitepaper', epochSeconds: 604_800n, revenue: { llama: 30n * WAD, waifu: 10n * WAD }, season2: defaultSeason2Params, tipBps: 1000, miners, ...extra }
}

describe('reward table', () => {
  it('whitepaper: the epoch cap is E from the revenue, split between pools by the revenue each brought', () => {
    const { cap, pools } = poolAmounts('whitepaper', { llama: 30n * WAD, waifu: 10n * WAD }, 604_800n, defaultSeason2Params)
    expect(cap).toBe(whitepaperEpochCap(40n * WAD, 604_800n).emission)
    expect(pools.llama).toBe(cap * 3n / 4n)
    expect(pools.llama + pools.waifu).toBe(cap)
    const none = poolAmounts('whitepaper', { llama: 0n, waifu: 0n }, 604_800n, defaultSeason2Params)
    expect(none.pools.llama).toBe(none.cap / 2n)
  })

  it('season 2: each pool is base + dynamic from its own organic revenue (Season 2 post)', () => {
    const { cap, pools } = poolAmounts('season2', { llama: 500_000n * WAD, waifu: 0n }, 604_800n, defaultSeason2Params)
    expect(pools.llama).toBe(season2PoolCap(500_000n * WAD))
    expect(pools.waifu).toBe(200_000n * WAD)
    expect(cap).toBe(pools.llama + pools.waifu)
  })

  it('pays each miner src/economics allocation × multiplier, tips to voters, to the wei', () => {
    const miners = [
      miner(A, 700n, 0n, { stake: 50_000n * WAD }),
      miner(B, 300n, 40n, { votes: 20_000n * WAD, voters: [{ id: V1, votes: 15_000n * WAD }, { id: V2, votes: 5_000n * WAD }] }),
      miner(C, 0n, 60n)
    ]
    const t = computeRewardTable(input(miners))
    const { pools } = poolAmounts('whitepaper', { llama: 30n * WAD, waifu: 10n * WAD }, 604_800n, defaultSeason2Params)
    const mA = multiplierWad(50_000n * WAD, 0n)
    const mB = multiplierWad(0n, 20_000n * WAD)
    const llama = allocate(pools.llama, [{ id: A, points: 700n, multiplierWad: mA }, { id: B, points: 300n, multiplierWad: mB }])
    const waifu = allocate(pools.waifu, [{ id: B, points: 40n, multiplierWad: mB }, { id: C, points: 60n, multiplierWad: WAD }])
    const bTips = splitTips(llama.payouts[1]!.amount + 0n, 1000, [{ id: V1, votes: 15_000n * WAD }, { id: V2, votes: 5_000n * WAD }])
    const bTipsW = splitTips(waifu.payouts[0]!.amount, 1000, [{ id: V1, votes: 15_000n * WAD }, { id: V2, votes: 5_000n * WAD }])
    const byAccount = new Map(t.entries.map(e => [e.account, e.amount]))
    expect(byAccount.get(A)).toBe(llama.payouts[0]!.amount)
    expect(byAccount.get(B)).toBe(bTips.node + bTipsW.node)
    expect(byAccount.get(C)).toBe(waifu.payouts[1]!.amount)
    expect(byAccount.get(V1)).toBe(bTips.voters[0]!.amount + bTipsW.voters[0]!.amount)
    expect(byAccount.get(V2)).toBe(bTips.voters[1]!.amount + bTipsW.voters[1]!.amount)
    expect(t.total).toBe(t.entries.reduce((s, e) => s + e.amount, 0n))
    expect(t.total + t.unpaid).toBe(t.cap)
    expect(t.unpaid).toBe(llama.dust + waifu.dust)
    expect(t.total).toBeLessThanOrEqual(t.cap)
  })

  it('a slashed miner earns nothing; the honest share the pool', () => {
    const t = computeRewardTable(input([miner(A, 500n, 0n), miner(B, 500n, 0n, { slashed: true })]))
    expect(t.entries.map(e => e.account)).toEqual([A])
    expect(t.pools[0]!.payouts).toHaveLength(1)
    expect(t.entries[0]!.amount).toBe(t.pools[0]!.amount)
  })

  it('no points in a pool: the whole pool is unpaid (the reservoir gets it when the root is posted)', () => {
    const t = computeRewardTable(input([miner(A, 10n, 0n)]))
    expect(t.pools[1]!.payouts).toHaveLength(0)
    expect(t.unpaid).toBe(t.pools[1]!.amount + t.pools[0]!.dust)
  })

  it('sums a payout address that owns two nodes into one leaf, sorted by address', () => {
    const t = computeRewardTable(input([miner(B, 1n, 0n, { payout: C }), miner(A, 1n, 0n, { payout: C })]))
    expect(t.entries).toHaveLength(1)
    expect(t.entries[0]!.account).toBe(C)
  })

  it('refuses a miner listed twice', () => {
    expect(() => computeRewardTable(input([miner(A, 1n, 0n), miner(A.toUpperCase().replace('0X', '0x'), 1n, 0n)]))).toThrow(/twice/)
  })
})
