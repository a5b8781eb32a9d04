import { requireNonNegative, requireRange } from './errors.js'
import { WAD, YEAR_SECONDS } from './units.js'

/** Whitepaper §3.4.2: 1,000,000,000 HEU, 18 decimals. */
export const TOTAL_SUPPLY = 1_000_000_000n * WAD
/** Whitepaper §3.4.4: maximum annualized emission rate E_max = 5 %. */
export const E_MAX_WAD = 5n * WAD / 100n
/** Whitepaper §3.4.4: baseline emission rate E_b = 1.25 % (25 % of E_max). */
export const E_BASE_WAD = 125n * WAD / 10_000n
/** Whitepaper §3.4.4: emission grows by 0.5 per unit of revenue share. */
export const REVENUE_SLOPE_WAD = WAD / 2n
/** Whitepaper §3.4.4: the cap E_max is reached at R_max = 7.5 % of supply. */
export const R_MAX_WAD = 75n * WAD / 1_000n

/**
 * Whitepaper §3.4.4: E = min(E_max, E_b + 0.5·R), R = annualized protocol revenue as a share
 * of total supply, everything in 1e18 fixed point. Floor of R/2, so rounding never pays out
 * more than the formula.
 */
export function emissionRateWad (revenueShareWad: bigint): bigint {
  requireNonNegative('revenue share', revenueShareWad)
  const e = E_BASE_WAD + revenueShareWad / 2n
  return e < E_MAX_WAD ? e : E_MAX_WAD
}

/** Whitepaper §3.4.5: the compute reservoir receives E_max − E. */
export function reservoirRateWad (revenueShareWad: bigint): bigint {
  return E_MAX_WAD - emissionRateWad(revenueShareWad)
}

/** Tokens emitted at annual rate `rateWad` over `seconds` (floor). */
export function emissionForPeriod (rateWad: bigint, seconds: bigint, totalSupply: bigint = TOTAL_SUPPLY): bigint {
  requireNonNegative('rate', rateWad)
  requireNonNegative('seconds', seconds)
  requireNonNegative('total supply', totalSupply)
  return totalSupply * rateWad * seconds / (WAD * YEAR_SECONDS)
}

export interface EpochCap {
  /** The epoch's revenue annualized, as a share of supply (WAD). */
  revenueShareWad: bigint
  /** E for that share (WAD, annual). */
  rateWad: bigint
  /** Tokens the epoch may emit to miners. */
  emission: bigint
  /** Tokens the epoch sends to the compute reservoir. */
  reservoir: bigint
}

/**
 * The whitepaper schedule for one epoch of any length, from the revenue paid in it. The
 * on-chain `Emission` contract computes exactly this (same operations, same floor
 * divisions), so the two agree to the wei:
 *   revenueShareWad = epochRevenue·YEAR·WAD / (epochSeconds·supply)
 *   rateWad         = emissionRateWad(revenueShareWad)
 *   emission        = supply·rateWad·epochSeconds / (WAD·YEAR)
 *   reservoir       = supply·(E_max − rateWad)·epochSeconds / (WAD·YEAR)
 */
export function whitepaperEpochCap (epochRevenueWei: bigint, epochSeconds: bigint, totalSupply: bigint = TOTAL_SUPPLY): EpochCap {
  requireNonNegative('epoch revenue', epochRevenueWei)
  requireRange('epoch seconds', epochSeconds, 0n, 100n * YEAR_SECONDS, { loOpen: true, what: '0, 100 years' })
  requireRange('total supply', totalSupply, 0n, 10n ** 40n, { loOpen: true, what: '0, 1e40' })
  const revenueShareWad = epochRevenueWei * YEAR_SECONDS * WAD / (epochSeconds * totalSupply)
  const rateWad = emissionRateWad(revenueShareWad)
  return {
    revenueShareWad,
    rateWad,
    emission: emissionForPeriod(rateWad, epochSeconds, totalSupply),
    reservoir: emissionForPeriod(E_MAX_WAD - rateWad, epochSeconds, totalSupply)
  }
}

export interface AnnualEmission {
  revenueShareWad: bigint
  rateWad: bigint
  reservoirRateWad: bigint
  annualEmission: bigint
  annualReservoir: bigint
}

/** The schedule for a year at a given revenue share (the calculator's view). */
export function annualEmission (revenueShareWad: bigint, totalSupply: bigint = TOTAL_SUPPLY): AnnualEmission {
  const rateWad = emissionRateWad(revenueShareWad)
  return {
    revenueShareWad,
    rateWad,
    reservoirRateWad: E_MAX_WAD - rateWad,
    annualEmission: totalSupply * rateWad / WAD,
    annualReservoir: totalSupply * (E_MAX_WAD - rateWad) / WAD
  }
}
