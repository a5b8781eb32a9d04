import { EconomicsError, requireNonNegative } from './errors.js'
import { WAD } from './units.js'

/** Season 2 post: the two reward pools, each with its own points. */
export type Pool = 'llama' | 'waifu'
export const POOLS: readonly Pool[] = ['llama', 'waifu']

export interface Season2Params {
  /** Season 2 post: base reward per pool per week, paid whatever the usage. 200,000 HEU. */
  base: bigint
  /** Season 2 post: the dynamic part per pool per week never exceeds this. 500,000 HEU. */
  maxDynamic: bigint
  /** Organic paid revenue (wei, per pool per week) at which the dynamic part is half of maxDynamic. */
  halfSaturation: bigint
}

/**
 * The post gives base (200,000) and the dynamic ceiling (500,000) but not the curve from
 * organic usage u to the dynamic part. Ours: D(u) = maxDynamic · u / (u + halfSaturation).
 * Why this curve: it is 0 at u = 0, strictly increasing, concave and never above maxDynamic
 * (the post's "up to"), one integer division on chain, and needs no oracle for "full usage".
 * Why halfSaturation = 1,000,000 HEU: the curve's steepest point is u = 0, where it pays
 * maxDynamic/halfSaturation = 0.5 HEU of new tokens per HEU of fees — the whitepaper's
 * own slope (§3.4.4, E = E_b + 0.5·R). So, as in the whitepaper schedule, a miner who pays
 * itself fees to pump usage (wash trading) gets back at most half of what it paid, even if
 * it held every point of the pool. A smaller halfSaturation would make bot usage dressed up
 * as paid usage profitable. At this value the pool pays half its dynamic part at 1M HEU of
 * weekly organic revenue (~5 % of supply a year per pool), and 80 % at 4M HEU.
 */
export const defaultSeason2Params: Season2Params = {
  base: 200_000n * WAD,
  maxDynamic: 500_000n * WAD,
  halfSaturation: 1_000_000n * WAD
}

function checkParams (params: Season2Params): void {
  requireNonNegative('base', params.base)
  requireNonNegative('maxDynamic', params.maxDynamic)
  if (params.halfSaturation <= 0n) throw new EconomicsError('ECON_OUT_OF_RANGE', `halfSaturation must be positive, got ${params.halfSaturation}`)
}

/** Season 2 dynamic reward of one pool for one week: maxDynamic·u/(u + halfSaturation), floor. */
export function season2Dynamic (organicRevenueWei: bigint, params: Season2Params = defaultSeason2Params): bigint {
  requireNonNegative('organic revenue', organicRevenueWei)
  checkParams(params)
  if (organicRevenueWei === 0n) return 0n
  return params.maxDynamic * organicRevenueWei / (organicRevenueWei + params.halfSaturation)
}

/** Season 2 reward of one pool for one week: base + dynamic. */
export function season2PoolCap (organicRevenueWei: bigint, params: Season2Params = defaultSeason2Params): bigint {
  return params.base + season2Dynamic(organicRevenueWei, params)
}

export interface Season2PoolReward { pool: Pool, organicRevenue: bigint, base: bigint, dynamic: bigint, total: bigint }

/** Both pools' weekly rewards from each pool's organic paid revenue. */
export function season2Week (organicRevenueWei: Record<Pool, bigint>, params: Season2Params = defaultSeason2Params): Season2PoolReward[] {
  return POOLS.map(pool => {
    const u = organicRevenueWei[pool]
    const dynamic = season2Dynamic(u, params)
    return { pool, organicRevenue: u, base: params.base, dynamic, total: params.base + dynamic }
  })
}
