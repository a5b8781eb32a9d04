import { EconomicsError, requireNonNegative } from './errors.js'
import { BPS } from './units.js'

export interface RevenueShares {
  /** Pod deployer's share (whitepaper §3.2.3), basis points. */
  podBps: number | bigint
  /** Frontend's share (whitepaper §3.2.5), basis points. */
  frontendBps: number | bigint
  /**
   * Protocol fee to the stHEU vault (whitepaper §3.4.3, "compute payment buybacks"), basis
   * points. Default 0; deployments use `PROTOCOL_FEE_BPS`.
   */
  protocolFeeBps?: number | bigint
}

export interface RevenueSplit { node: bigint, pod: bigint, frontend: bigint, protocol: bigint }

/**
 * The protocol fee on every redemption, to stHEU holders: 500 bps (5 %). Ours: the
 * whitepaper (§3.4.3) says "a portion of the compute payments" and gives no number. 5 % keeps
 * the node the majority at the largest shares the others can take (pod 30 % + frontend 10 %
 * + fee 5 % leaves 55 %), and makes paying yourself lose 5 % of every payment outright.
 */
export const PROTOCOL_FEE_BPS = 500

function bps (name: string, v: number | bigint): bigint {
  if (typeof v === 'number' && !Number.isSafeInteger(v)) throw new EconomicsError('ECON_BAD_NUMBER', `${name} must be an integer number of basis points, got ${v}`)
  const b = BigInt(v)
  requireNonNegative(name, b)
  return b
}

/**
 * Splits a payment between the protocol (stHEU vault, §3.4.3), the pod deployer (§3.2.3), the
 * frontend (§3.2.5) and the compute node. Each of the first three gets floor(amount·bps/10,000);
 * the node, which did the work, gets the rest including the rounding dust, so the four always
 * sum to `amount`. `Payments.splitRevenue` is the same math (test/chain/parity.test.ts).
 */
export function splitRevenue (amount: bigint, shares: RevenueShares): RevenueSplit {
  requireNonNegative('amount', amount)
  const podBps = bps('podBps', shares.podBps)
  const frontendBps = bps('frontendBps', shares.frontendBps)
  const feeBps = bps('protocolFeeBps', shares.protocolFeeBps ?? 0)
  if (podBps + frontendBps + feeBps > BPS) throw new EconomicsError('ECON_OUT_OF_RANGE', `podBps + frontendBps + protocolFeeBps must be at most 10000, got ${podBps + frontendBps + feeBps}`)
  const protocol = amount * feeBps / BPS
  const pod = amount * podBps / BPS
  const frontend = amount * frontendBps / BPS
  return { node: amount - protocol - pod - frontend, pod, frontend, protocol }
}
