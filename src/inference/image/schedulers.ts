/**
 * Euler and DDIM samplers on Stable Diffusion 1.5's noise schedule (1000 training steps,
 * "scaled_linear" betas from 0.00085 to 0.012), following the diffusers schedulers with
 * SD 1.5's scheduler config (steps_offset 1, set_alpha_to_one false, epsilon prediction):
 * Euler uses "linspace" timestep spacing, DDIM "leading" spacing with eta 0. All arithmetic is
 * float64 in a fixed order, then stored as float32, so the same inputs give the same bits.
 */

export type SchedulerName = 'euler' | 'ddim'
export const SCHEDULERS: readonly SchedulerName[] = ['euler', 'ddim']

const TRAIN_STEPS = 1000
const BETA_START = 0.00085
const BETA_END = 0.012

/** ᾱ_t for t = 0 … 999. */
export function alphasCumprod (): Float64Array {
  const out = new Float64Array(TRAIN_STEPS)
  const a = Math.sqrt(BETA_START)
  const b = Math.sqrt(BETA_END)
  let prod = 1
  for (let i = 0; i < TRAIN_STEPS; i++) {
    const s = a + (b - a) * i / (TRAIN_STEPS - 1)
    prod *= 1 - s * s
    out[i] = prod
  }
  return out
}

export interface Scheduler {
  readonly name: SchedulerName
  /** Timesteps fed to the UNet, first (noisiest) to last. May be fractional (Euler). */
  readonly timesteps: number[]
  /** Factor applied to the initial unit-variance noise. */
  readonly initNoiseSigma: number
  /** Scales the latents before they enter the UNet at step `i`. */
  scaleInput: (sample: Float32Array, i: number) => Float32Array
  /** One denoising step: from the latents and the predicted noise to the next latents. */
  step: (sample: Float32Array, eps: Float32Array, i: number) => Float32Array
}

export function createScheduler (name: SchedulerName, steps: number): Scheduler {
  return name === 'euler' ? euler(steps) : ddim(steps)
}

function euler (steps: number): Scheduler {
  const ac = alphasCumprod()
  const sigmaAll = Array.from(ac, a => Math.sqrt((1 - a) / a))
  // linspace(0, 999, steps) reversed; sigma interpolated linearly between training steps.
  // One step starts at t = 999 (diffusers' linspace would give t = 0, a near-noiseless start).
  const timesteps: number[] = []
  for (let i = 0; i < steps; i++) timesteps.push(steps === 1 ? TRAIN_STEPS - 1 : (TRAIN_STEPS - 1) * (steps - 1 - i) / (steps - 1))
  const sigmas = timesteps.map(t => {
    const lo = Math.floor(t)
    const hi = Math.min(lo + 1, TRAIN_STEPS - 1)
    const w = t - lo
    return (1 - w) * (sigmaAll[lo] ?? 0) + w * (sigmaAll[hi] ?? 0)
  })
  sigmas.push(0)
  return {
    name: 'euler',
    timesteps,
    initNoiseSigma: Math.max(...sigmas),
    scaleInput (sample, i) {
      const s = sigmas[i] ?? 0
      const k = 1 / Math.sqrt(s * s + 1)
      const out = new Float32Array(sample.length)
      for (let j = 0; j < sample.length; j++) out[j] = (sample[j] ?? 0) * k
      return out
    },
    step (sample, eps, i) {
      // x0 = x − σ·ε; dx/dσ = ε; x_next = x + ε·(σ_next − σ)
      const dt = (sigmas[i + 1] ?? 0) - (sigmas[i] ?? 0)
      const out = new Float32Array(sample.length)
      for (let j = 0; j < sample.length; j++) out[j] = (sample[j] ?? 0) + (eps[j] ?? 0) * dt
      return out
    }
  }
}

function ddim (steps: number): Scheduler {
  const ac = alphasCumprod()
  const ratio = Math.floor(TRAIN_STEPS / steps)
  const timesteps: number[] = []
  for (let i = steps - 1; i >= 0; i--) timesteps.push(i * ratio + 1)
  const finalAlpha = ac[0] ?? 1
  return {
    name: 'ddim',
    timesteps,
    initNoiseSigma: 1,
    scaleInput: sample => sample,
    step (sample, eps, i) {
      const t = timesteps[i] ?? 0
      const prev = t - ratio
      const aT = ac[t] ?? 1
      const aPrev = prev >= 0 ? (ac[prev] ?? 1) : finalAlpha
      const sa = Math.sqrt(aT)
      const sb = Math.sqrt(1 - aT)
      const pa = Math.sqrt(aPrev)
      const pb = Math.sqrt(1 - aPrev)
      const out = new Float32Array(sample.length)
      for (let j = 0; j < sample.length; j++) {
        const e = eps[j] ?? 0
        const x0 = ((sample[j] ?? 0) - sb * e) / sa
        out[j] = pa * x0 + pb * e
      }
      return out
    }
  }
}
