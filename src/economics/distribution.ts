import { TOTAL_SUPPLY } from './emission.js'
import { BPS } from './units.js'

/** Whitepaper §3.4.2, in basis points of the total supply; they sum to 10,000. */
export const TOKEN_DISTRIBUTION_BPS = {
  earlyCommunity: 950n,
  marketingAndLiquidity: 450n,
  privateSale: 600n,
  teamAndAdvisors: 1_500n,
  protocolTreasury: 1_500n,
  emission: 5_000n
} as const

export type DistributionCategory = keyof typeof TOKEN_DISTRIBUTION_BPS

/** Each category's tokens in wei (the bps divide the supply exactly). */
export const TOKEN_DISTRIBUTION: Readonly<Record<DistributionCategory, bigint>> = Object.freeze(Object.fromEntries(
  Object.entries(TOKEN_DISTRIBUTION_BPS).map(([k, b]) => [k, TOTAL_SUPPLY * b / BPS])
) as Record<DistributionCategory, bigint>)

/** Season 2 post: Season 1 allocations (share of supply, bps): Waifu 2.25 %, Llama 2.75 %, early-miner bonus 0.4 %. */
export const SEASON1_ALLOCATION_BPS = { waifu: 225n, llama: 275n, earlyBonus: 40n } as const
