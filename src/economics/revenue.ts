import { EconomicsError, requireNonNegative } from './errors.js'
import { BPS } from './units.js'

export interface RevenueShares {
  /** Pod deployer's share (whitepaper §3.2.3), basis points. */
  podBps: number | bigint
  /** Frontend's share (whitepaper §3.2.5), basis points. */
  frontendBps: number | bigint
}

export interface RevenueSplit { node: bigint, pod: bigint, frontend: bigint }

function bps (name: string, v: number | bigint): bigint {
  if (typeof v === 'number' && !Number.isSafeInteger(v)) throw new EconomicsError('ECON_BAD_NUMBER', `${name} must be an integer number of basis points, got ${v}`)
  const b = BigInt(v)
  requireNonNegative(name, b)
  return b
}

/**
 * Splits a payment between the compute node, the pod deployer and the frontend (whitepaper
 * §3.2.3, §3.2.5). Pod and frontend get floor(amount·bps/10,000); the node, which did the
 * work, gets the rest including the rounding dust, so the three always sum to `amount`.
 */
export function splitRevenue (amount: bigint, shares: RevenueShares): RevenueSplit {
  requireNonNegative('amount', amount)
  const podBps = bps('podBps', shares.podBps)
  const frontendBps = bps('frontendBps', shares.frontendBps)
  if (podBps + frontendBps > BPS) throw new EconomicsError('ECON_OUT_OF_RANGE', `podBps + frontendBps must be at most 10000, got ${podBps + frontendBps}`)
  const pod = amount * podBps / BPS
  const frontend = amount * frontendBps / BPS
  return { node: amount - pod - frontend, pod, frontend }
}
