import { describe, expect, it } from 'vitest'
import { alphasCumprod, createScheduler } from '../../../src/inference/image/index.js'

describe('SD 1.5 noise schedule and samplers', () => {
  it('alphas_cumprod matches SD 1.5 (scaled_linear 0.00085 → 0.012, 1000 steps)', () => {
    const ac = alphasCumprod()
    expect(ac[0]).toBeCloseTo(0.99915, 10)
    expect(ac[999]).toBeCloseTo(0.0046601, 6)
  })

  it('Euler: linspace timesteps from 999 to 0, init sigma ≈ 14.6146 (as diffusers)', () => {
    const s = createScheduler('euler', 20)
    expect(s.timesteps).toHaveLength(20)
    expect(s.timesteps[0]).toBe(999)
    expect(s.timesteps[19]).toBe(0)
    expect(s.initNoiseSigma).toBeCloseTo(14.6146, 3)
  })

  it('DDIM: leading timesteps with offset 1 (951 … 1 for 20 steps), unit init noise', () => {
    const s = createScheduler('ddim', 20)
    expect(s.timesteps[0]).toBe(951)
    expect(s.timesteps[19]).toBe(1)
    expect(new Set(s.timesteps.map((t, i) => i === 0 ? 0 : s.timesteps[i - 1]! - t))).toEqual(new Set([0, 50]))
    expect(s.initNoiseSigma).toBe(1)
  })

  it('given the true noise, each step lands exactly on the next point of the noising path', () => {
    const x0 = Float32Array.of(0.5, -0.25, 1, 0)
    const eps = Float32Array.of(1, -1, 0.5, 2)
    const ac = alphasCumprod()
    // DDIM: x_t = √ᾱ_t·x0 + √(1−ᾱ_t)·ε  →  x_prev = √ᾱ_prev·x0 + √(1−ᾱ_prev)·ε
    const d = createScheduler('ddim', 10)
    const t = d.timesteps[3]!
    const xt = x0.map((v, i) => Math.sqrt(ac[t]!) * v + Math.sqrt(1 - ac[t]!) * eps[i]!)
    const next = d.step(xt, eps, 3)
    const tp = t - 100
    next.forEach((v, i) => expect(v).toBeCloseTo(Math.sqrt(ac[tp]!) * x0[i]! + Math.sqrt(1 - ac[tp]!) * eps[i]!, 5))
    // Euler: x = x0 + σ·ε  →  x_next = x0 + σ_next·ε; the last step returns x0
    const e = createScheduler('euler', 5)
    let x = x0.map((v, i) => v + e.initNoiseSigma * eps[i]!)
    for (let i = 0; i < 5; i++) x = e.step(x, eps, i)
    x.forEach((v, i) => expect(v).toBeCloseTo(x0[i]!, 4))
  })

  it('Euler scales the UNet input by 1/√(σ²+1); DDIM leaves it', () => {
    const e = createScheduler('euler', 20)
    const s = e.initNoiseSigma
    expect(e.scaleInput(Float32Array.of(1), 0)[0]).toBeCloseTo(1 / Math.sqrt(s * s + 1), 6)
    expect(createScheduler('ddim', 20).scaleInput(Float32Array.of(3), 0)[0]).toBe(3)
  })
})
