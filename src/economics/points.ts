import { EconomicsError, requireNonNegative } from './errors.js'
import type { Pool } from './season2.js'
import { PPM } from './units.js'

/** Points are integers in micro-points: 1 point = POINT. */
export const POINT = 1_000_000n

/**
 * How one model class earns points. Whitepaper §3.2.1: points measure the compute a job
 * consumes, GPU time weighted by the VRAM it needs. `weightPpm` is that product relative to
 * the pool's reference unit (1,000,000 = the reference):
 *   llama: 1 point = 1,000 input+output tokens on a Mixtral-8x7B-class model (Heurist's unit);
 *   waifu: 1 point = one 512×512 SD 1.5 image at 20 steps (Heurist's unit).
 * For LLMs, decoding is memory-bandwidth bound, so GPU time per token scales with the
 * parameters read per token (active parameters; Mixtral reads ~13B of its 47B), and the
 * VRAM need with the whole quantized model: weight ≈ (active/13B)·(minVram/24 GB).
 * For images, time per step scales with the UNet size (SDXL ~3× SD 1.5) and pixels.
 */
export interface PointRate {
  pool: Pool
  kind: 'llm' | 'image'
  /** Minimum VRAM a miner needs for this class (Season 2 post: 24 GB for LLM, 12 GB for SD). */
  minVramGb: number
  weightPpm: bigint
}

export const POINTS_TABLE: Readonly<Record<string, PointRate>> = Object.freeze({
  'mixtral-8x7b': { pool: 'llama', kind: 'llm', minVramGb: 24, weightPpm: 1_000_000n }, // the reference unit
  'llama-3-70b': { pool: 'llama', kind: 'llm', minVramGb: 48, weightPpm: 10_800_000n }, // (70/13)·(48/24)
  'llama-3-8b': { pool: 'llama', kind: 'llm', minVramGb: 8, weightPpm: 205_000n }, // (8/13)·(8/24)
  'mistral-7b': { pool: 'llama', kind: 'llm', minVramGb: 8, weightPpm: 180_000n }, // (7.2/13)·(8/24)
  'tiny-llama': { pool: 'llama', kind: 'llm', minVramGb: 0, weightPpm: 1_000n }, // built-in test model: a token of real compute is worth far more
  'sd-1.5': { pool: 'waifu', kind: 'image', minVramGb: 12, weightPpm: 1_000_000n }, // the reference unit
  'sdxl': { pool: 'waifu', kind: 'image', minVramGb: 16, weightPpm: 4_000_000n }, // UNet ~3× SD 1.5 per pixel-step, VRAM 16/12
  'tiny-sd': { pool: 'waifu', kind: 'image', minVramGb: 0, weightPpm: 1_000n } // built-in test model
})

/** Reference sizes the point units are defined at. */
export const LLM_TOKENS_PER_POINT = 1_000n
export const IMAGE_REFERENCE_PIXELS = 512n * 512n
export const IMAGE_REFERENCE_STEPS = 20n

/** The table entry for a model class; throws ECON_UNKNOWN_MODEL for a name not in the table. */
export function pointRate (modelClass: string): PointRate {
  const r = Object.hasOwn(POINTS_TABLE, modelClass) ? POINTS_TABLE[modelClass] : undefined
  if (r === undefined) throw new EconomicsError('ECON_UNKNOWN_MODEL', `no point rate for model class ${JSON.stringify(modelClass)} (known: ${Object.keys(POINTS_TABLE).join(', ')})`)
  return r
}

/**
 * A rate for a model not in the table, from its memory need alone: a dense model's time per
 * token and its VRAM both scale with its size, so the weight scales with size squared,
 * relative to the reference model's size. An estimate; the table wins where it has a row.
 */
export function pointRateFromMemory (kind: 'llm' | 'image', memoryBytes: bigint): PointRate {
  requireNonNegative('memoryBytes', memoryBytes)
  const ref = kind === 'llm' ? 24n * 2n ** 30n : 4n * 2n ** 30n
  return { pool: kind === 'llm' ? 'llama' : 'waifu', kind, minVramGb: Number(memoryBytes / 2n ** 30n), weightPpm: PPM * memoryBytes * memoryBytes / (ref * ref) }
}

export type JobUsage =
  | { kind: 'llm', promptTokens: bigint, outputTokens: bigint }
  | { kind: 'image', width: bigint, height: bigint, steps: bigint }

/** Micro-points a job earns (floor): tokens/1000·weight, or pixels·steps/(512²·20)·weight. */
export function jobPoints (rate: PointRate, usage: JobUsage): bigint {
  if (rate.kind !== usage.kind) throw new EconomicsError('ECON_KIND_MISMATCH', `a ${usage.kind} job cannot use a ${rate.kind} point rate`)
  requireNonNegative('weightPpm', rate.weightPpm)
  if (usage.kind === 'llm') {
    requireNonNegative('promptTokens', usage.promptTokens)
    requireNonNegative('outputTokens', usage.outputTokens)
    return rate.weightPpm * (usage.promptTokens + usage.outputTokens) * POINT / (PPM * LLM_TOKENS_PER_POINT)
  }
  requireNonNegative('width', usage.width)
  requireNonNegative('height', usage.height)
  requireNonNegative('steps', usage.steps)
  return rate.weightPpm * usage.width * usage.height * usage.steps * POINT / (PPM * IMAGE_REFERENCE_PIXELS * IMAGE_REFERENCE_STEPS)
}

/** Sums jobs' points per pool (a miner's epoch ledger). */
export function sumPointsByPool (jobs: Iterable<{ pool: Pool, points: bigint }>): Record<Pool, bigint> {
  const out: Record<Pool, bigint> = { llama: 0n, waifu: 0n }
  for (const j of jobs) {
    requireNonNegative('points', j.points)
    out[j.pool] += j.points
  }
  return out
}
