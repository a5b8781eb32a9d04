/**
 * The points snapshot a running miner keeps in `<home>/rewards/points.json`: this epoch's
 * points of every miner its ledger has seen. `heurist status` reads it (the miner's store is
 * locked by the running miner) and estimates the reward live with `src/economics`.
 */
import { z } from 'zod'
import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { HeuristError } from '../core/errors.js'
import type { Pool } from '../economics/index.js'
import type { EpochPoints } from './ledger.js'
import { MAX_TABLE_MINERS } from './inputs.js'

export const POINTS_FILE = 'points.json'
const MAX_SNAPSHOT_BYTES = 4 * 1024 * 1024

const address = z.string().regex(/^0x[0-9a-fA-F]{40}$/)
const uint = z.string().regex(/^\d{1,78}$/)

export const pointsSnapshotSchema = z.object({
  epoch: uint,
  operator: address,
  payout: address,
  updatedAt: z.number().int().min(0),
  receipts: z.number().int().min(0),
  counted: z.number().int().min(0),
  miners: z.array(z.object({ operator: address, llama: uint, waifu: uint }).strict()).max(MAX_TABLE_MINERS)
}).strict()
export type PointsSnapshot = z.infer<typeof pointsSnapshotSchema>

export function toSnapshot (operator: string, payout: string, p: EpochPoints): PointsSnapshot {
  return {
    epoch: p.epoch.toString(),
    operator,
    payout,
    updatedAt: Date.now(),
    receipts: p.receipts,
    counted: p.counted,
    miners: [...p.miners].slice(0, MAX_TABLE_MINERS).map(([op, r]) => ({ operator: op, llama: r.llama.toString(), waifu: r.waifu.toString() }))
  }
}

export function snapshotPoints (s: PointsSnapshot): Map<string, Record<Pool, bigint>> {
  return new Map(s.miners.map(m => [m.operator, { llama: BigInt(m.llama), waifu: BigInt(m.waifu) }]))
}

/** The snapshot in `rewardsDir`, or null when no miner wrote one there. A bad file is an error naming it. */
export async function readPointsSnapshot (rewardsDir: string): Promise<PointsSnapshot | null> {
  const path = join(rewardsDir, POINTS_FILE)
  // size first: a huge file is refused before it is read into memory
  let size: number
  try { size = (await stat(path)).size } catch { return null }
  if (size > MAX_SNAPSHOT_BYTES) throw new HeuristError('REWARDS_BAD_SNAPSHOT', `${path} is too large`)
  let text: string
  try { text = await readFile(path, 'utf8') } catch { return null }
  let raw: unknown
  try { raw = JSON.parse(text) } catch { throw new HeuristError('REWARDS_BAD_SNAPSHOT', `${path} is not JSON`) }
  const r = pointsSnapshotSchema.safeParse(raw)
  if (!r.success) throw new HeuristError('REWARDS_BAD_SNAPSHOT', `${path}: ${r.error.issues[0]?.message ?? 'invalid'}`)
  return r.data
}
