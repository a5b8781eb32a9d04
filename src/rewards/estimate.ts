/**
 * This epoch's reward estimate, computed live with `src/economics` exactly as validators will
 * at the epoch's end, from the points seen so far and the revenue Payments has recorded so
 * far. An estimate because both still grow until the epoch ends, and validators may exclude
 * receipts that fail validation later.
 */
import type { ChainClient } from '../chain/index.js'
import type { Pool } from '../economics/index.js'
import { computeRewardTable, type RewardTable } from './table.js'
import { tableInput } from './inputs.js'

export interface RewardEstimate {
  epoch: bigint
  points: Record<Pool, bigint>
  /** What the node's payout account would receive (node share, after tips). */
  reward: bigint
  cap: bigint
  table: RewardTable
}

export async function estimateReward (chain: ChainClient, epoch: bigint, operator: string, points: Map<string, Record<Pool, bigint>>, tipBps: number): Promise<RewardEstimate> {
  const table = computeRewardTable(await tableInput(chain, epoch, points, tipBps))
  const mine = [...points].find(([op]) => op.toLowerCase() === operator.toLowerCase())?.[1] ?? { llama: 0n, waifu: 0n }
  let reward = 0n
  for (const p of table.pools) for (const m of p.payouts) if (m.operator.toLowerCase() === operator.toLowerCase()) reward += m.node
  return { epoch, points: mine, reward, cap: table.cap, table }
}
