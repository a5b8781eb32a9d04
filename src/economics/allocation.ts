import { EconomicsError, requireNonNegative } from './errors.js'
import { BPS, WAD } from './units.js'

export interface MinerWeight {
  id: string
  /** The miner's points in this pool for the epoch (any fixed unit, e.g. micro-points). */
  points: bigint
  /** 1.0 = WAD; see `multiplierWad`. */
  multiplierWad: bigint
}

export interface Payout { id: string, weight: bigint, amount: bigint }

export interface Allocation {
  /** In input order; weight = points × multiplierWad. */
  payouts: Payout[]
  /** pool − Σ amounts: under one wei per miner (the whole pool if no miner has weight). Goes to the reservoir. */
  dust: bigint
}

/** At most this many miners in one allocation: bounds the work and the Merkle tree. */
export const MAX_MINERS = 1_000_000

/**
 * Splits a pool over miners pro rata to points × multiplier, exactly: each amount is
 * floor(pool·weight/Σweight), so Σ amounts + dust = pool, nothing is created or lost, and the
 * dust (below one wei per miner) goes to the compute reservoir.
 */
export function allocate (pool: bigint, miners: ReadonlyArray<MinerWeight>): Allocation {
  requireNonNegative('pool', pool)
  if (miners.length > MAX_MINERS) throw new EconomicsError('ECON_TOO_MANY_MINERS', `at most ${MAX_MINERS} miners, got ${miners.length}`)
  const seen = new Set<string>()
  let total = 0n
  const weights: bigint[] = []
  for (const m of miners) {
    if (seen.has(m.id)) throw new EconomicsError('ECON_DUPLICATE_MINER', `miner ${JSON.stringify(m.id)} appears twice`)
    seen.add(m.id)
    requireNonNegative(`points of ${m.id}`, m.points)
    requireNonNegative(`multiplier of ${m.id}`, m.multiplierWad)
    const w = m.points * m.multiplierWad
    weights.push(w)
    total += w
  }
  let paid = 0n
  const payouts = miners.map((m, i) => {
    const weight = weights[i]!
    const amount = total === 0n ? 0n : pool * weight / total
    paid += amount
    return { id: m.id, weight, amount }
  })
  return { payouts, dust: pool - paid }
}

export interface MultiplierParams {
  /** Bonus (WAD) at full stake: 0.5 → up to 1.5× from the miner's own stHEU. */
  stakeBonusWad: bigint
  /** Staked stHEU (wei) at which the stake bonus is full. */
  stakeCap: bigint
  /** Bonus (WAD) at full votes: 0.5 → up to 1.5× from token holders' votes. */
  voteBonusWad: bigint
  /** Votes (stHEU wei of voting power) at which the vote bonus is full. */
  voteCap: bigint
}

/**
 * Why 1× to 2×, linear up to a cap: the Season 2 post ties the post-TGE multiplier to the
 * miner's staked stHEU, and the whitepaper (§3.2.2) lets token holders' votes raise it. But
 * points must stay the measure of work: with the bonus bounded at 2×, capital can at most
 * double a miner's share per unit of compute, so a whale with no GPU earns nothing and a
 * small honest miner never falls below half the rate of a fully staked one. Half of the
 * bonus comes from own stake (skin in the game: it is also slashable collateral) and half
 * from votes (others' judgement of the node). Linear to a cap is one mulDiv on chain and
 * lets a miner read off exactly what another HEU staked is worth. Caps: 100,000 HEU each,
 * half a week's base pool, so reaching full bonus is a real commitment but within reach of
 * a serious operator.
 */
export const defaultMultiplierParams: MultiplierParams = {
  stakeBonusWad: WAD / 2n,
  stakeCap: 100_000n * WAD,
  voteBonusWad: WAD / 2n,
  voteCap: 100_000n * WAD
}

/** 1 + stakeBonus·min(stake, stakeCap)/stakeCap + voteBonus·min(votes, voteCap)/voteCap, in WAD, floor. */
export function multiplierWad (stake: bigint, votes: bigint, params: MultiplierParams = defaultMultiplierParams): bigint {
  requireNonNegative('stake', stake)
  requireNonNegative('votes', votes)
  requireNonNegative('stakeBonusWad', params.stakeBonusWad)
  requireNonNegative('voteBonusWad', params.voteBonusWad)
  if (params.stakeCap <= 0n || params.voteCap <= 0n) throw new EconomicsError('ECON_OUT_OF_RANGE', 'stakeCap and voteCap must be positive')
  const s = stake < params.stakeCap ? stake : params.stakeCap
  const v = votes < params.voteCap ? votes : params.voteCap
  return WAD + params.stakeBonusWad * s / params.stakeCap + params.voteBonusWad * v / params.voteCap
}

/** The largest multiplier `multiplierWad` can return for `params`. */
export function maxMultiplierWad (params: MultiplierParams = defaultMultiplierParams): bigint {
  return WAD + params.stakeBonusWad + params.voteBonusWad
}

export interface VoterWeight { id: string, votes: bigint }

export interface TipSplit {
  /** What the node keeps: reward − tip pool + rounding dust of the tip pool. */
  node: bigint
  /** floor(reward·tipBps/10,000), before dust. */
  tipPool: bigint
  /** Each voter's tip, pro rata to votes (floor), in input order. */
  voters: Array<{ id: string, amount: bigint }>
}

/**
 * Whitepaper §3.2.2: a node may share part of its emission with the holders who voted for
 * it. The tip pool is reward·tipBps/10,000, split over voters pro rata to votes; the node
 * keeps the rest and the division dust, so node + Σ tips = reward exactly. No votes, no tip.
 */
export function splitTips (reward: bigint, tipBps: number | bigint, voters: ReadonlyArray<VoterWeight>): TipSplit {
  requireNonNegative('reward', reward)
  if (typeof tipBps === 'number' && !Number.isSafeInteger(tipBps)) throw new EconomicsError('ECON_BAD_NUMBER', `tipBps must be an integer, got ${tipBps}`)
  const bps = BigInt(tipBps)
  if (bps < 0n || bps > BPS) throw new EconomicsError('ECON_OUT_OF_RANGE', `tipBps must be in [0, 10000], got ${bps}`)
  let totalVotes = 0n
  for (const v of voters) { requireNonNegative(`votes of ${v.id}`, v.votes); totalVotes += v.votes }
  if (totalVotes === 0n) return { node: reward, tipPool: 0n, voters: voters.map(v => ({ id: v.id, amount: 0n })) }
  const tipPool = reward * bps / BPS
  let paid = 0n
  const out = voters.map(v => {
    const amount = tipPool * v.votes / totalVotes
    paid += amount
    return { id: v.id, amount }
  })
  return { node: reward - paid, tipPool, voters: out }
}
