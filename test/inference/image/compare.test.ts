import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { comparePixels, createImageEngine, defaultCompareThresholds, dhash, hammingHex, ssim, type ImageEngine, type ImageModel, type RgbImage } from '../../../src/inference/image/index.js'
import { baseRequest, testEngine, variant } from './fixtures.js'
import { tempDir } from '../../helpers.js'

let cleanup: () => Promise<void>
let engine: ImageEngine
let model: ImageModel
let dir: string

beforeAll(async () => {
  const t = await tempDir('heurist-compare-')
  cleanup = t.cleanup
  engine = testEngine()
  dir = await variant(t.dir, 'tiny')
  model = await engine.load(dir)
})
afterAll(async () => {
  await engine.dispose()
  await cleanup()
})

async function gen (over: Partial<typeof baseRequest> = {}): Promise<RgbImage> {
  const r = await model.generate({ ...baseRequest, ...over })
  return { width: r.width, height: r.height, pixels: r.pixels }
}

/** Rounding drift as it appears across hardware: ±amp LSB on a fraction of the channels. */
function drift (img: RgbImage, fraction: number, amp: number, seed: number): RgbImage {
  let s = seed >>> 0
  const next = (): number => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return s / 4294967296 }
  const out = Uint8Array.from(img.pixels)
  for (let i = 0; i < out.length; i++) {
    if (next() < fraction) out[i] = Math.max(0, Math.min(255, (out[i] ?? 0) + Math.round((next() * 2 - 1) * amp)))
  }
  return { ...img, pixels: out }
}

describe('image comparison thresholds (calibrated on the tiny model)', () => {
  it('same seed → identical bits, SSIM 1, dHash distance 0', async () => {
    const c = comparePixels(await gen(), await gen())
    expect(c).toMatchObject({ identical: true, dhashDistance: 0, match: true })
    expect(c.ssim).toBeCloseTo(1, 12)
  })

  it('tiny float drift (±2…4 LSB, on a third to all of the channels) → within the thresholds', async () => {
    const base = await gen()
    for (const [fraction, amp, seed] of [[0.33, 2, 1], [1, 2, 2], [1, 4, 3], [0.1, 8, 4]] as const) {
      const c = comparePixels(base, drift(base, fraction, amp, seed))
      expect(c.identical).toBe(false)
      expect(c.ssim).toBeGreaterThan(0.99)
      expect(c.dhashDistance).toBeLessThanOrEqual(1)
      expect(c.match).toBe(true)
    }
  })

  it('real drift from another onnxruntime configuration (all optimizations, 2 threads) → within the thresholds', async () => {
    const other = createImageEngine({ executionProvider: 'cpu', threads: 2, optimizationLevel: 'all' })
    try {
      const m = await other.load(dir)
      const r = await m.generate(baseRequest)
      expect(comparePixels(await gen(), { width: r.width, height: r.height, pixels: r.pixels }).match).toBe(true)
    } finally {
      await other.dispose()
    }
  })

  it('another seed or another prompt → far outside the thresholds', async () => {
    const base = await gen()
    for (const over of [{ seed: 2 }, { seed: 3 }, { prompt: 'a dog' }, { prompt: 'a landscape with mountains' }]) {
      const c = comparePixels(base, await gen(over))
      expect(c.match).toBe(false)
      expect(c.ssim).toBeLessThan(defaultCompareThresholds.minSsim - 0.5)
      expect(c.dhashDistance).toBeGreaterThan(defaultCompareThresholds.maxDhashDistance * 2)
    }
  })

  it('SSIM and dHash basics: identity, inversion, size mismatch', () => {
    const w = 32
    const px = new Uint8Array(w * w * 3)
    for (let i = 0; i < w * w; i++) px.fill((i % w) * 8, i * 3, i * 3 + 3)
    const a = { width: w, height: w, pixels: px }
    const inv = { width: w, height: w, pixels: px.map(v => 255 - v) }
    expect(ssim(a, a)).toBeCloseTo(1, 12)
    expect(ssim(a, inv)).toBeLessThan(0)
    expect(dhash(a)).toMatch(/^[0-9a-f]{16}$/)
    // a strict left-to-right ramp: every cell is darker than its right neighbour, so inversion flips all 64 bits
    expect(dhash(a)).toBe('0000000000000000')
    expect(hammingHex(dhash(a), dhash(inv))).toBe(64)
    expect(() => ssim(a, { width: 16, height: 16, pixels: new Uint8Array(16 * 16 * 3) })).toThrow(/cannot compare/)
    expect(() => ssim(a, { width: w, height: w, pixels: new Uint8Array(5) })).toThrow(/RGB bytes/)
  })
})
