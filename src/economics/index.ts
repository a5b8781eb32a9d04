/**
 * The protocol's math (DESIGN.md §9): pure functions, bigint wei, fixed-point rates. The only
 * copy of each formula; contracts, validators and the CLI check against it.
 */
export { EconomicsError, isEconomicsError } from './errors.js'
export {
  WAD, PPM, BPS, YEAR_SECONDS, WEEK_SECONDS, HEU_DECIMALS,
  mulDiv, mulDivUp, floorDiv, parseUnits, formatUnits, parseHeu, formatHeu, parsePercentWad, wadToPercent, wadToNumber
} from './units.js'
export {
  TOTAL_SUPPLY, E_MAX_WAD, E_BASE_WAD, REVENUE_SLOPE_WAD, R_MAX_WAD,
  emissionRateWad, reservoirRateWad, emissionForPeriod, whitepaperEpochCap, annualEmission,
  type EpochCap, type AnnualEmission
} from './emission.js'
export {
  POOLS, defaultSeason2Params, season2Dynamic, season2PoolCap, season2Week,
  type Pool, type Season2Params, type Season2PoolReward
} from './season2.js'
export {
  POINT, POINTS_TABLE, LLM_TOKENS_PER_POINT, IMAGE_REFERENCE_PIXELS, IMAGE_REFERENCE_STEPS,
  pointRate, pointRateFromMemory, jobPoints, sumPointsByPool,
  type PointRate, type JobUsage
} from './points.js'
export {
  MAX_MINERS, allocate, defaultMultiplierParams, multiplierWad, maxMultiplierWad, splitTips,
  type MinerWeight, type Payout, type Allocation, type MultiplierParams, type VoterWeight, type TipSplit
} from './allocation.js'
export {
  STHEU_LOCKUP_SECONDS, convertToShares, convertToAssets, previewDeposit, previewMint, previewWithdraw,
  previewRedeem, exchangeRateWad, deposit, redeem, addRewards, requestUnstake, withdrawable,
  type Rounding, type VaultState, type Unstake
} from './staking.js'
export {
  MAX_MODEL_WEIGHT_GIB, PROMPT_BYTES_PER_UNIT, PROMPT_UNITS_PER_MESSAGE, IMAGE_TILE_PX,
  modelWeightGib, clampWeight, promptUnits, llmComputeUnits, imageComputeUnits
} from './compute-units.js'
export {
  FLOOR_WEI_PER_UNIT, REDEMPTION_WINDOW_SECONDS, redemptionWindow, paidUnits, cappedPoints, paidTripleKey, paidByTriple,
  type PaidRedemption
} from './paid-points.js'
export { splitRevenue, PROTOCOL_FEE_BPS, type RevenueShares, type RevenueSplit } from './revenue.js'
export {
  minimumStake, isStakeSecure, expectedPayoffHonest, expectedPayoffMalicious, attackProbabilityWad,
  isAttackBounded, maxTolerableMalicious, honestIsEquilibrium
} from './security.js'
export { TOKEN_DISTRIBUTION_BPS, TOKEN_DISTRIBUTION, SEASON1_ALLOCATION_BPS, type DistributionCategory } from './distribution.js'
