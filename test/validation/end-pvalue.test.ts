import { describe, it, expect } from 'vitest'
import { defaultLlmCheckOptions, endPValue, endPValueTest, logGammaTail } from '../../src/validation/index.js'

// The end p-value and its window combination (llm-check's module comment, 3): pure math, checked
// against closed forms, a numerical integral, and simulations of honest generation.

// mulberry32: consecutive draws independent enough for a draw that depends on the one before
let seed = 99
const rnd = (): number => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
  return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 2 ** 32
}

// P(Gamma(m, 1) ≥ s) by integrating the density x^(m−1) e^(−x) / (m−1)! from s to s + 200 (Simpson)
function gammaTailIntegral (m: number, s: number): number {
  let logFact = 0
  for (let i = 1; i < m; i++) logFact += Math.log(i)
  const f = (x: number): number => Math.exp((m - 1) * Math.log(x) - x - logFact)
  const n = 200_000
  const h = 200 / n
  let acc = f(s) + f(s + 200)
  for (let i = 1; i < n; i++) acc += (i % 2 === 1 ? 4 : 2) * f(s + i * h)
  return acc * h / 3
}

describe('the Gamma tail behind Fisher\'s combination', () => {
  it('matches the closed forms for one and two jobs, and a numerical integral for 5 and 20', () => {
    for (const s of [0.5, 3, 20.7, 40]) {
      expect(logGammaTail(1, s)).toBeCloseTo(-s, 10)
      expect(logGammaTail(2, s)).toBeCloseTo(-s + Math.log(1 + s), 10)
    }
    for (const [m, s] of [[5, 4], [5, 30], [20, 25], [20, 60]] as const) {
      const exact = gammaTailIntegral(m, s)
      expect(Math.abs(logGammaTail(m, s) - Math.log(exact))).toBeLessThan(1e-6)
    }
    expect(logGammaTail(3, 0)).toBe(0)
  })

  it('fails two ends at P = 1e-8 at α 1e-9, not one, and not twenty jobs that ended at max tokens', () => {
    expect(endPValueTest([1e-8], 1e-9).fail).toBe(false)
    expect(endPValueTest([1e-8, 1e-8], 1e-9).fail).toBe(true)
    expect(endPValueTest([1e-10], 1e-9).fail).toBe(true)
    expect(endPValueTest(Array(20).fill(1), 1e-9)).toEqual({ jobs: 20, s: 0, p: 1, fail: false })
    // a P of 0 (q underflowed) is the smallest positive number, not an infinite sum
    expect(Number.isFinite(endPValueTest([0], 1e-9).s)).toBe(true)
  })
})

describe('the end p-value on simulated honest generation', () => {
  // A model whose end probability q_k varies over positions (log-uniform over 1e-6 … 0.025, so the p-value is below 1); each
  // honest job draws an end at each position with probability q_k, up to A = 32 positions.
  const A = 32
  const honestJob = (): number => {
    for (let k = 0; k < A; k++) {
      const q = Math.exp(Math.log(1e-6) + rnd() * (Math.log(0.025) - Math.log(1e-6)))
      if (rnd() < q) return endPValue(q, A, defaultLlmCheckOptions.logitTolerance) // ended here, on an end token
    }
    return 1 // max tokens
  }

  it('is a valid p-value: P(P ≤ x) ≤ x at every x tried', () => {
    const ps = Array.from({ length: 40_000 }, honestJob)
    for (const x of [0.001, 0.01, 0.05, 0.2, 0.5]) {
      const rate = ps.filter(p => p <= x).length / ps.length
      // binomial noise: 4 standard deviations above x
      expect(rate).toBeLessThanOrEqual(x + 4 * Math.sqrt(x * (1 - x) / ps.length))
    }
    // and not vacuous: some jobs end early, every such one with P < 1
    expect(ps.filter(p => p < 1).length).toBeGreaterThan(ps.length / 20)
  })

  it('windows of 20 honest jobs fail Fisher\'s test at most α of the time (α = 0.01, 5,000 windows)', () => {
    let fails = 0
    const windows = 5000
    for (let w = 0; w < windows; w++) if (endPValueTest(Array.from({ length: 20 }, honestJob), 0.01).fail) fails++
    expect(fails / windows).toBeLessThanOrEqual(0.01 + 4 * Math.sqrt(0.01 * 0.99 / windows))
  })
})
