/**
 * The epoch's reward table, computed by every validator from the same inputs with the one
 * copy of each formula in `src/economics`: the schedule's cap, per-pool amounts, pro rata
 * allocation by points × multiplier (stake and votes), and voters' tips. Pure: the chain
 * reads that feed it live in `inputs.ts`, so two validators with the same ledger and chain
 * state get the same entries, the same Merkle root, and can co-sign it.
 */
import {
  POOLS, allocate, multiplierWad, splitTips, season2PoolCap, whitepaperEpochCap, defaultMultiplierParams,
  type Pool, type Season2Params, type MultiplierParams, type VoterWeight
} from '../economics/index.js'
import { HeuristError } from '../core/errors.js'

export type Schedule = 'whitepaper' | 'season2'

export interface MinerEpoch {
  /** The miner's operator address (the receipt signer). */
  operator: string
  /** Who receives the node's share (NodeRegistry's owner, `payoutOf`). */
  payout: string
  /** Points earned in the epoch, per pool (see ledger.ts for what counts). */
  points: Record<Pool, bigint>
  /** The owner's staked stHEU, valued in HEU (wei): the multiplier's stake term. */
  stake: bigint
  /** stHEU voting power on this node (wei): the multiplier's vote term. */
  votes: bigint
  /** Who voted for the node and with how much; they share the tip. */
  voters: VoterWeight[]
  /** Slashed during the epoch: earns nothing for it. */
  slashed: boolean
}

export interface RewardTableInput {
  epoch: bigint
  schedule: Schedule
  epochSeconds: bigint
  /** Paid revenue Payments recorded in the epoch, per pool (wei). */
  revenue: Record<Pool, bigint>
  season2: Season2Params
  /** Share of each node's reward that goes to its voters, in basis points (a network parameter). */
  tipBps: number
  multiplier?: MultiplierParams
  miners: MinerEpoch[]
}

export interface MinerPayout {
  operator: string
  payout: string
  pool: Pool
  points: bigint
  multiplierWad: bigint
  /** The node's allocation before tips. */
  reward: bigint
  /** What the node keeps after tips. */
  node: bigint
  tips: Array<{ voter: string, amount: bigint }>
}

export interface PoolTable { pool: Pool, amount: bigint, dust: bigint, payouts: MinerPayout[] }

export interface RewardTable {
  epoch: bigint
  /** The epoch's cap as `Emission.capOf` computes it. */
  cap: bigint
  pools: PoolTable[]
  /** One leaf per account (node shares and tips summed), sorted by address. */
  entries: Array<{ account: string, amount: bigint }>
  /** Σ entries: the root's signed total, never above `cap`. */
  total: bigint
  /** cap − total: what the contract sends to the compute reservoir when the root is posted. */
  unpaid: bigint
}

/**
 * Each pool's amount for the epoch. Season 2: base + dynamic from the pool's organic
 * revenue (the Season 2 post). Whitepaper: one cap E for the epoch (§3.4.4), split between the
 * pools in proportion to the revenue each one brought (paid usage is what emission rewards);
 * half each when nothing was paid. The split is ours: the whitepaper has a single pool.
 */
export function poolAmounts (schedule: Schedule, revenue: Record<Pool, bigint>, epochSeconds: bigint, season2: Season2Params): { cap: bigint, pools: Record<Pool, bigint> } {
  if (schedule === 'season2') {
    const pools = { llama: season2PoolCap(revenue.llama, season2), waifu: season2PoolCap(revenue.waifu, season2) }
    return { cap: pools.llama + pools.waifu, pools }
  }
  const cap = whitepaperEpochCap(revenue.llama + revenue.waifu, epochSeconds).emission
  const paid = revenue.llama + revenue.waifu
  const llama = paid === 0n ? cap / 2n : cap * revenue.llama / paid
  return { cap, pools: { llama, waifu: cap - llama } }
}

export function computeRewardTable (input: RewardTableInput): RewardTable {
  const params = input.multiplier ?? defaultMultiplierParams
  const seen = new Set<string>()
  for (const m of input.miners) {
    const k = m.operator.toLowerCase()
    if (seen.has(k)) throw new HeuristError('REWARDS_DUPLICATE_MINER', `miner ${m.operator} appears twice in the epoch's inputs`)
    seen.add(k)
  }
  const { cap, pools: amounts } = poolAmounts(input.schedule, input.revenue, input.epochSeconds, input.season2)
  const sums = new Map<string, { account: string, amount: bigint }>()
  const credit = (account: string, amount: bigint): void => {
    if (amount === 0n) return
    const k = account.toLowerCase()
    const e = sums.get(k)
    if (e === undefined) sums.set(k, { account, amount })
    else e.amount += amount
  }
  const pools: PoolTable[] = POOLS.map(pool => {
    // slashed miners and miners without points in this pool take no part in it
    const eligible = input.miners.filter(m => !m.slashed && m.points[pool] > 0n)
    const mult = eligible.map(m => multiplierWad(m.stake, m.votes, params))
    const alloc = allocate(amounts[pool], eligible.map((m, i) => ({ id: m.operator, points: m.points[pool], multiplierWad: mult[i]! })))
    const payouts = eligible.map((m, i): MinerPayout => {
      const reward = alloc.payouts[i]!.amount
      const split = splitTips(reward, input.tipBps, m.voters)
      credit(m.payout, split.node)
      const tips = split.voters.map(v => ({ voter: v.id, amount: v.amount }))
      for (const t of tips) credit(t.voter, t.amount)
      return { operator: m.operator, payout: m.payout, pool, points: m.points[pool], multiplierWad: mult[i]!, reward, node: split.node, tips }
    })
    return { pool, amount: amounts[pool], dust: alloc.dust, payouts }
  })
  const entries = [...sums.values()].sort((a, b) => (BigInt(a.account) < BigInt(b.account) ? -1 : 1))
  const total = entries.reduce((s, e) => s + e.amount, 0n)
  // allocate never pays more than its pool, so this holds by construction; checked anyway
  // because the contract would refuse the root and the whole epoch would be stuck
  if (total > cap) throw new HeuristError('REWARDS_OVER_CAP', `reward table total ${total} is above the epoch's cap ${cap}`)
  return { epoch: input.epoch, cap, pools, entries, total, unpaid: cap - total }
}
