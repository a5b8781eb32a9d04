import { EconomicsError, requireNonNegative, requireRange } from './errors.js'
import { floorDiv, mulDiv, WAD } from './units.js'

/**
 * Whitepaper appendix A. Costs, rewards and stakes are token amounts (wei); probabilities
 * and fractions (P, F, α, ε, δ) are WAD fixed point. Every inequality is decided exactly by
 * cross-multiplying, never by comparing rounded values.
 */

function prob (name: string, v: bigint, range: '(0,1]' | '[0,1]' | '(0,1)'): void {
  requireRange(name, v, 0n, WAD, { loOpen: range !== '[0,1]', hiOpen: range === '(0,1)', what: '0, 1' })
}

/**
 * A.4: S > (C_h − C_m)/(P·F). Returns the threshold (ceil, never understated); a stake is
 * secure when it is strictly above it (`isStakeSecure`). 0 when cheating saves nothing.
 */
export function minimumStake (costHonest: bigint, costMalicious: bigint, pWad: bigint, fWad: bigint): bigint {
  requireNonNegative('C_h', costHonest)
  requireNonNegative('C_m', costMalicious)
  prob('P', pWad, '(0,1]')
  prob('F', fWad, '(0,1]')
  const gap = costHonest - costMalicious
  if (gap <= 0n) return 0n
  const num = gap * WAD * WAD
  const den = pWad * fWad
  return (num + den - 1n) / den
}

/** A.4: C_h − C_m < P·F·S, exactly. */
export function isStakeSecure (stake: bigint, costHonest: bigint, costMalicious: bigint, pWad: bigint, fWad: bigint): boolean {
  requireNonNegative('S', stake)
  minimumStake(costHonest, costMalicious, pWad, fWad) // validates
  return (costHonest - costMalicious) * WAD * WAD < pWad * fWad * stake
}

/** A.3: E_h = α(R − C_h), wei (floor; negative when the task costs more than it pays). */
export function expectedPayoffHonest (alphaWad: bigint, reward: bigint, costHonest: bigint): bigint {
  prob('α', alphaWad, '[0,1]')
  requireNonNegative('R', reward)
  requireNonNegative('C_h', costHonest)
  return floorDiv(alphaWad * (reward - costHonest), WAD)
}

/** A.3: E_m = α(R − C_m − P·F·S), wei (floor). */
export function expectedPayoffMalicious (alphaWad: bigint, reward: bigint, costMalicious: bigint, pWad: bigint, fWad: bigint, stake: bigint): bigint {
  prob('α', alphaWad, '[0,1]')
  prob('P', pWad, '(0,1]')
  prob('F', fWad, '(0,1]')
  requireNonNegative('R', reward)
  requireNonNegative('C_m', costMalicious)
  requireNonNegative('S', stake)
  return floorDiv(alphaWad * ((reward - costMalicious) * WAD * WAD - pWad * fWad * stake), WAD * WAD * WAD)
}

/** A.5: P_attack = (M/N)(1 − P), WAD (floor, display); use `isAttackBounded` to decide. */
export function attackProbabilityWad (malicious: bigint, miners: bigint, pWad: bigint): bigint {
  counts(malicious, miners)
  prob('P', pWad, '(0,1]')
  return mulDiv(malicious, WAD - pWad, miners)
}

function counts (malicious: bigint, miners: bigint): void {
  if (miners <= 0n) throw new EconomicsError('ECON_OUT_OF_RANGE', `N (miners) must be positive, got ${miners}`)
  requireRange('M (malicious)', malicious, 0n, miners, { what: `0, N=${miners}` })
}

/** A.5: P_attack < ε, i.e. M·(1 − P) < ε·N, exactly. */
export function isAttackBounded (malicious: bigint, miners: bigint, pWad: bigint, epsilonWad: bigint): boolean {
  counts(malicious, miners)
  prob('P', pWad, '(0,1]')
  prob('ε', epsilonWad, '(0,1]')
  return malicious * (WAD - pWad) < epsilonWad * miners
}

/**
 * A.5: the largest M with M < εN/(1 − P), capped at N (when P = 1 nothing escapes detection,
 * so any number is tolerated). ε > 0 keeps the answer ≥ 0.
 */
export function maxTolerableMalicious (miners: bigint, pWad: bigint, epsilonWad: bigint): bigint {
  counts(0n, miners)
  prob('P', pWad, '(0,1]')
  prob('ε', epsilonWad, '(0,1]')
  const d = WAD - pWad
  if (d === 0n) return miners
  const n = epsilonWad * miners
  const m = n % d === 0n ? n / d - 1n : n / d
  return m < miners ? m : miners
}

/**
 * A.6: honest play is a subgame-perfect equilibrium of the repeated game when
 * (R − C_h)/(1 − δ) > R − C_m − P·F·S (α > 0 cancels), with 0 < δ < 1. Exact.
 */
export function honestIsEquilibrium (params: { reward: bigint, costHonest: bigint, costMalicious: bigint, pWad: bigint, fWad: bigint, stake: bigint, deltaWad: bigint }): boolean {
  const { reward, costHonest, costMalicious, pWad, fWad, stake, deltaWad } = params
  requireNonNegative('R', reward)
  requireNonNegative('C_h', costHonest)
  requireNonNegative('C_m', costMalicious)
  requireNonNegative('S', stake)
  prob('P', pWad, '(0,1]')
  prob('F', fWad, '(0,1]')
  prob('δ', deltaWad, '(0,1)')
  // (R − C_h)·WAD/(WAD − δ) > ((R − C_m)·WAD² − P·F·S)/WAD², multiplied through by WAD²·(WAD − δ) > 0
  return (reward - costHonest) * WAD * WAD * WAD > (WAD - deltaWad) * ((reward - costMalicious) * WAD * WAD - pWad * fWad * stake)
}
