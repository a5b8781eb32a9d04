/**
 * The seeded noise source of the image pipeline. It is part of the determinism contract: any
 * validator must draw the very same latents from a job's seed, so the algorithm is fixed here
 * and documented, independent of any library:
 *
 * - Uniform bits: PCG32 (XSH-RR variant, pcg-random.org `pcg32_random_r`) with the reference
 *   `pcg32_srandom_r(initstate = seed, initseq = 54)` seeding, i.e. inc = (54 << 1) | 1.
 * - Normals: Box–Muller on pairs of outputs a, b: u1 = (a + 1) / 2^32 ∈ (0, 1],
 *   u2 = b / 2^32 ∈ [0, 1); z0 = √(−2 ln u1)·cos(2π u2), z1 = √(−2 ln u1)·sin(2π u2), computed in
 *   float64 (V8's fdlibm-derived log/sin/cos give the same bits on every platform) and
 *   rounded to float32 as they are stored, z0 first.
 */

const MULT = 6364136223846793005n
const MASK64 = (1n << 64n) - 1n

export class Pcg32 {
  private state = 0n
  private readonly inc: bigint

  /** `seed`: an integer in 0 … 2^64 − 1. */
  constructor (seed: number | bigint, stream: bigint = 54n) {
    this.inc = ((stream << 1n) | 1n) & MASK64
    this.nextUint32()
    this.state = (this.state + BigInt.asUintN(64, BigInt(seed))) & MASK64
    this.nextUint32()
  }

  nextUint32 (): number {
    const old = this.state
    this.state = (old * MULT + this.inc) & MASK64
    const xorshifted = Number(BigInt.asUintN(32, ((old >> 18n) ^ old) >> 27n))
    const rot = Number(old >> 59n)
    return ((xorshifted >>> rot) | (xorshifted << ((-rot) & 31))) >>> 0
  }
}

/** `n` standard normal samples (float32) from `seed`, by the algorithm documented above. */
export function gaussianNoise (seed: number | bigint, n: number): Float32Array {
  const rng = new Pcg32(seed)
  const out = new Float32Array(n)
  for (let i = 0; i < n; i += 2) {
    const u1 = (rng.nextUint32() + 1) / 4294967296
    const u2 = rng.nextUint32() / 4294967296
    const r = Math.sqrt(-2 * Math.log(u1))
    out[i] = r * Math.cos(2 * Math.PI * u2)
    if (i + 1 < n) out[i + 1] = r * Math.sin(2 * Math.PI * u2)
  }
  return out
}
