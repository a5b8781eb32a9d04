import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { comparePixels, REQUIRED_FILES, type ImageEngine, type ImageModel } from '../../../src/inference/image/index.js'
import { isHeuristError } from '../../../src/core/errors.js'
import { baseRequest, testEngine, variant } from './fixtures.js'
import { tempDir } from '../../helpers.js'

// Large UNet exports keep their weights in `model.onnx_data` beside `model.onnx`, and `--fp16`
// exports store every weight in half precision: both load on the CPU and count toward memory.
const PARTS = ['text_encoder', 'unet', 'vae_decoder']

let root: string
let cleanup: () => Promise<void>
let engine: ImageEngine
let inline: ImageModel

beforeAll(async () => {
  ({ dir: root, cleanup } = await tempDir('heurist-image-ext-'))
  engine = testEngine()
  inline = await engine.load(await variant(root, 'inline'))
})
afterAll(async () => {
  await engine.dispose()
  await cleanup()
})

const size = async (p: string): Promise<number> => (await stat(p)).size

describe('ONNX external data', () => {
  it('a tiny SD exported with model.onnx_data loads, computes what the inline export computes, and its data counts toward memory', async () => {
    const dir = await variant(root, 'external', { externalData: true })
    let dataBytes = 0
    for (const part of PARTS) {
      const d = await size(join(dir, part, 'model.onnx_data'))
      // the large weights moved from the graph file to the data file
      expect(d).toBeGreaterThan(1024)
      expect(await size(join(dir, part, 'model.onnx'))).toBeLessThan(await size(join(inline.dir, part, 'model.onnx')) - d + 1024)
      dataBytes += d
    }
    let requiredBytes = 0
    for (const f of REQUIRED_FILES) requiredBytes += await size(join(dir, f))
    const m = await engine.load(dir)
    expect(m.info.memoryBytes).toBe(requiredBytes + dataBytes)
    expect(m.info.memoryBytes).toBeGreaterThan(inline.info.memoryBytes * 0.9)
    const a = await inline.generate({ ...baseRequest, modelId: inline.info.id })
    const b = await m.generate({ ...baseRequest, modelId: m.info.id })
    expect(b.pixelSha256).toBe(a.pixelSha256)
    await m.dispose()
  })

  it('a missing data file is a typed load error', async () => {
    const dir = await variant(root, 'external-broken', { externalData: true })
    await rm(join(dir, 'unet', 'model.onnx_data'))
    const err = await engine.load(dir).then(() => null, (e: unknown) => e)
    expect(isHeuristError(err) && err.code).toBe('IMAGE_MODEL_BAD_FILE')
  })
})

describe('fp16 export on the CPU', () => {
  it('a tiny SD with half-precision weights runs on the CPU and stays within the drift thresholds of fp32', async () => {
    const dir = await variant(root, 'fp16w', { fp16Weights: true, externalData: true })
    const fp32Dir = await variant(root, 'fp32-ext', { externalData: true })
    // half the bytes: the weights really are stored in float16
    for (const part of PARTS) expect(await size(join(dir, part, 'model.onnx_data'))).toBeLessThan(await size(join(fp32Dir, part, 'model.onnx_data')) * 0.6)
    const m = await engine.load(dir)
    expect(m.executionProvider).toBe('cpu')
    expect(m.layout.floatType).toBe('float16')
    for (const seed of [1, 2, 3]) {
      const req = { ...baseRequest, seed }
      const a = await inline.generate({ ...req, modelId: inline.info.id })
      const b = await m.generate({ ...req, modelId: m.info.id })
      const c = comparePixels(a, b)
      expect(c.match).toBe(true)
      // and not the same picture by accident: another seed is far
      const other = comparePixels(a, await m.generate({ ...req, seed: seed + 10, modelId: m.info.id }))
      expect(other.match).toBe(false)
    }
    await m.dispose()
  })
})
