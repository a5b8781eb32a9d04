import { EconomicsError, requireNonNegative } from './errors.js'
import { mulDiv, mulDivUp, WAD, YEAR_SECONDS } from './units.js'

/** Whitepaper §3.4.3: stHEU vests back to HEU after a 1-year lockup. */
export const STHEU_LOCKUP_SECONDS = YEAR_SECONDS

export type Rounding = 'floor' | 'ceil'

/** The vault's state: HEU it holds (incl. rewards) and stHEU outstanding. */
export interface VaultState { totalAssets: bigint, totalShares: bigint }

function check (v: VaultState): void {
  requireNonNegative('totalAssets', v.totalAssets)
  requireNonNegative('totalShares', v.totalShares)
}

/**
 * OpenZeppelin ERC4626 (decimalsOffset 0): shares = assets·(totalShares + 1)/(totalAssets + 1).
 * The virtual share and asset make the first deposit 1:1 and defeat the donation attack.
 * Round 'floor' when the user receives shares (deposit), 'ceil' when they pay shares (withdraw).
 */
export function convertToShares (assets: bigint, vault: VaultState, rounding: Rounding = 'floor'): bigint {
  requireNonNegative('assets', assets)
  check(vault)
  return (rounding === 'floor' ? mulDiv : mulDivUp)(assets, vault.totalShares + 1n, vault.totalAssets + 1n)
}

/** assets = shares·(totalAssets + 1)/(totalShares + 1); 'floor' for redeem, 'ceil' for mint. */
export function convertToAssets (shares: bigint, vault: VaultState, rounding: Rounding = 'floor'): bigint {
  requireNonNegative('shares', shares)
  check(vault)
  return (rounding === 'floor' ? mulDiv : mulDivUp)(shares, vault.totalAssets + 1n, vault.totalShares + 1n)
}

/** ERC4626 previews: every one rounds in the vault's favour. */
export function previewDeposit (assets: bigint, vault: VaultState): bigint { return convertToShares(assets, vault, 'floor') }
export function previewMint (shares: bigint, vault: VaultState): bigint { return convertToAssets(shares, vault, 'ceil') }
export function previewWithdraw (assets: bigint, vault: VaultState): bigint { return convertToShares(assets, vault, 'ceil') }
export function previewRedeem (shares: bigint, vault: VaultState): bigint { return convertToAssets(shares, vault, 'floor') }

/** HEU per stHEU (WAD, floor): rises only as rewards arrive; deposits and redeems never lower it. */
export function exchangeRateWad (vault: VaultState): bigint {
  return convertToAssets(WAD, vault, 'floor')
}

/** Deposit `assets` HEU: the shares minted and the new state. */
export function deposit (vault: VaultState, assets: bigint): { shares: bigint, vault: VaultState } {
  const shares = previewDeposit(assets, vault)
  return { shares, vault: { totalAssets: vault.totalAssets + assets, totalShares: vault.totalShares + shares } }
}

/** Redeem `shares` stHEU: the HEU released and the new state. */
export function redeem (vault: VaultState, shares: bigint): { assets: bigint, vault: VaultState } {
  if (shares > vault.totalShares) throw new EconomicsError('ECON_OUT_OF_RANGE', `cannot redeem ${shares} shares of ${vault.totalShares}`)
  const assets = previewRedeem(shares, vault)
  return { assets, vault: { totalAssets: vault.totalAssets - assets, totalShares: vault.totalShares - shares } }
}

/** Rewards arrive (buybacks, sequencer fees, reservoir share, §3.4.3): assets grow, shares don't. */
export function addRewards (vault: VaultState, amount: bigint): VaultState {
  requireNonNegative('reward', amount)
  check(vault)
  return { totalAssets: vault.totalAssets + amount, totalShares: vault.totalShares }
}

/**
 * Unstaking (§3.4.3): the shares are redeemed at the current rate when the holder asks,
 * and the HEU unlocks in full once the lockup has passed (a cliff). The amount is fixed at
 * the request, so a holder cannot keep earning on stake already on its way out.
 */
export interface Unstake { assets: bigint, requestedAt: bigint, unlockAt: bigint }

export function requestUnstake (vault: VaultState, shares: bigint, now: bigint, lockupSeconds: bigint = STHEU_LOCKUP_SECONDS): { unstake: Unstake, vault: VaultState } {
  requireNonNegative('now', now)
  requireNonNegative('lockup', lockupSeconds)
  const r = redeem(vault, shares)
  return { unstake: { assets: r.assets, requestedAt: now, unlockAt: now + lockupSeconds }, vault: r.vault }
}

/** HEU withdrawable from an unstake at time `now`: all of it once unlocked, none before. */
export function withdrawable (u: Unstake, now: bigint): bigint {
  return now >= u.unlockAt ? u.assets : 0n
}
