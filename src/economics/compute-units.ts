import { EconomicsError } from './errors.js'

/**
 * Compute units: what a job is billed and counted in, from things both the miner and the
 * gateway can measure without trusting each other (whitepaper §3.2.1: compute consumed, GPU
 * work weighted by the memory the model needs). One unit is one token (prompt or output) of a
 * 1 GiB model, or one denoising step over a 64×64 tile of an image on a 1 GiB model:
 *
 *   llm:   weight × (promptUnits + outputTokens)
 *   image: weight × steps × ⌈width/64⌉ × ⌈height/64⌉
 *
 * with weight = the model's memory in GiB, rounded up, between 1 and MAX_MODEL_WEIGHT_GIB.
 * The gateway reserves the largest value a request can reach (outputTokens = max_tokens) and
 * charges what it delivered, in the same unit, so a charge never exceeds its reservation.
 */

/** A model weighs at most this many GiB (the largest models in use fit; a bound on a claim). */
export const MAX_MODEL_WEIGHT_GIB = 1024n
/** Prompt bytes per prompt unit: about one BPE token of English text. */
export const PROMPT_BYTES_PER_UNIT = 4n
/** Prompt units added per chat message: its role and the chat template's markers. */
export const PROMPT_UNITS_PER_MESSAGE = 4n
/** Image tile edge, in pixels: one latent tile of a Stable-Diffusion-shaped UNet. */
export const IMAGE_TILE_PX = 64n

const GIB = 2n ** 30n

function nonNegativeInt (name: string, v: number | bigint): bigint {
  if (typeof v === 'number' && (!Number.isSafeInteger(v) || v < 0)) throw new EconomicsError('ECON_BAD_NUMBER', `${name} must be a non-negative integer, got ${v}`)
  const b = BigInt(v)
  if (b < 0n) throw new EconomicsError('ECON_NEGATIVE', `${name} must not be negative, got ${b}`)
  return b
}

/** A model's weight from its memory need: GiB rounded up, clamped to [1, MAX_MODEL_WEIGHT_GIB]. */
export function modelWeightGib (memoryBytes: number | bigint): bigint {
  const m = nonNegativeInt('memoryBytes', memoryBytes)
  const g = (m + GIB - 1n) / GIB
  return g < 1n ? 1n : g > MAX_MODEL_WEIGHT_GIB ? MAX_MODEL_WEIGHT_GIB : g
}

/** A weight as received from someone else (an advert): clamped to [1, MAX_MODEL_WEIGHT_GIB]; a missing one is 1. */
export function clampWeight (weight: number | bigint | undefined): bigint {
  if (weight === undefined) return 1n
  const w = typeof weight === 'number' ? (Number.isSafeInteger(weight) ? BigInt(weight) : 1n) : weight
  return w < 1n ? 1n : w > MAX_MODEL_WEIGHT_GIB ? MAX_MODEL_WEIGHT_GIB : w
}

/**
 * Prompt units of an LLM input as anyone can count them without the model's tokenizer:
 * ⌈UTF-8 bytes / 4⌉ per text, plus 4 per chat message.
 */
export function promptUnits (input: string | ReadonlyArray<{ content: string }>): bigint {
  const units = (s: string): bigint => (BigInt(Buffer.byteLength(s, 'utf8')) + PROMPT_BYTES_PER_UNIT - 1n) / PROMPT_BYTES_PER_UNIT
  if (typeof input === 'string') return units(input)
  let n = 0n
  for (const m of input) n += units(m.content) + PROMPT_UNITS_PER_MESSAGE
  return n
}

export function llmComputeUnits (weight: bigint, prompt: bigint, outputTokens: number | bigint): bigint {
  return clampWeight(weight) * (nonNegativeInt('promptUnits', prompt) + nonNegativeInt('outputTokens', outputTokens))
}

export function imageComputeUnits (weight: bigint, image: { width: number, height: number, steps: number }): bigint {
  const w = nonNegativeInt('width', image.width)
  const h = nonNegativeInt('height', image.height)
  const s = nonNegativeInt('steps', image.steps)
  return clampWeight(weight) * s * ((w + IMAGE_TILE_PX - 1n) / IMAGE_TILE_PX) * ((h + IMAGE_TILE_PX - 1n) / IMAGE_TILE_PX)
}
