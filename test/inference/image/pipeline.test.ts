import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { readFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import sharp from 'sharp'
import { comparePixels, type ImageEngine, type ImageModel } from '../../../src/inference/image/index.js'
import { isHeuristError } from '../../../src/core/errors.js'
import { baseRequest, testEngine, variant } from './fixtures.js'
import { tempDir } from '../../helpers.js'

let root: string
let cleanup: () => Promise<void>
let engine: ImageEngine
let i64: ImageModel
let i32: ImageModel
let fp16: ImageModel

beforeAll(async () => {
  ({ dir: root, cleanup } = await tempDir('heurist-image-'))
  engine = testEngine()
  i64 = await engine.load(await variant(root, 'i64'))
  i32 = await engine.load(await variant(root, 'i32', { idsType: 'int32', timestepType: 'float' }))
  fp16 = await engine.load(await variant(root, 'fp16', { fp16: true, idsType: 'int32', timestepType: 'float' }))
})
afterAll(async () => {
  await engine.dispose()
  await cleanup()
})

const img = (r: { width: number, height: number, pixels: Uint8Array }): { width: number, height: number, pixels: Uint8Array } => ({ width: r.width, height: r.height, pixels: r.pixels })

describe('image pipeline on the tiny SD models', () => {
  it('reads each dtype layout from the session metadata', () => {
    expect(i64.layout).toEqual({ idsType: 'int64', timestepType: 'int64', timestepShape: 'batch', hiddenSize: 32, floatType: 'float32' })
    expect(i32.layout).toEqual({ idsType: 'int32', timestepType: 'float32', timestepShape: 'one', hiddenSize: 32, floatType: 'float32' })
    expect(fp16.layout).toEqual({ idsType: 'int32', timestepType: 'float16', timestepShape: 'one', hiddenSize: 32, floatType: 'float16' })
    expect(i64.info.kind).toBe('image')
    expect(i64.info.id).toMatch(/^[0-9a-f]{64}$/)
  })

  it('same seed → same pixels; another seed → other pixels; PNG has the asked size and decodes to the hashed pixels', async () => {
    const a = await i64.generate(baseRequest)
    const b = await i64.generate(baseRequest)
    const c = await i64.generate({ ...baseRequest, seed: 2 })
    expect(a.pixelSha256).toBe(b.pixelSha256)
    expect(c.pixelSha256).not.toBe(a.pixelSha256)
    expect(a.threads).toBe(1)
    expect(a.optimizationLevel).toBe('basic')
    expect(a.executionProvider).toBe('cpu')
    const decoded = await sharp(a.png).raw().toBuffer({ resolveWithObject: true })
    expect([decoded.info.width, decoded.info.height, decoded.info.channels]).toEqual([64, 64, 3])
    expect(Buffer.compare(decoded.data, Buffer.from(a.pixels))).toBe(0)
    const wide = await i64.generate({ ...baseRequest, width: 96, height: 48, steps: 4 })
    const meta = await sharp(wide.png).metadata()
    expect([meta.width, meta.height]).toEqual([96, 48])
    expect(wide.pixels.length).toBe(96 * 48 * 3)
  })

  it('int32 ids + float timestep give the same pixels as int64 + int64 when timesteps are integers (DDIM)', async () => {
    const req = { ...baseRequest, scheduler: 'ddim' as const }
    const a = await i64.generate(req)
    const b = await i32.generate(req)
    expect(b.pixelSha256).toBe(a.pixelSha256)
  })

  it('Euler feeds fractional timesteps: a float timestep model sees them, an int64 one gets them rounded', async () => {
    const a = await i64.generate(baseRequest)
    const b = await i32.generate(baseRequest)
    expect(b.pixelSha256).not.toBe(a.pixelSha256)
    expect(comparePixels(img(a), img(b)).match).toBe(true)
  })

  it('an fp16 export runs through float16 conversion and stays within the drift threshold of fp32', async () => {
    const a = await i32.generate(baseRequest)
    const b = await fp16.generate(baseRequest)
    expect(b.pixels.length).toBe(a.pixels.length)
    const cmp = comparePixels(img(a), img(b))
    expect(cmp.ssim).toBeGreaterThan(0.9)
  })

  it('each scheduler gives its own deterministic image', async () => {
    const e1 = await i64.generate({ ...baseRequest, scheduler: 'euler' })
    const d1 = await i64.generate({ ...baseRequest, scheduler: 'ddim' })
    const d2 = await i64.generate({ ...baseRequest, scheduler: 'ddim' })
    expect(d1.pixelSha256).toBe(d2.pixelSha256)
    expect(d1.pixelSha256).not.toBe(e1.pixelSha256)
  })

  it('guidance on uses the negative prompt; guidance off (scale ≤ 1) runs unconditioned-free and ignores it', async () => {
    const on = await i64.generate(baseRequest)
    const onNeg = await i64.generate({ ...baseRequest, negativePrompt: 'blurry, low quality' })
    expect(onNeg.pixelSha256).not.toBe(on.pixelSha256)
    const off = await i64.generate({ ...baseRequest, guidanceScale: 1 })
    const offNeg = await i64.generate({ ...baseRequest, guidanceScale: 1, negativePrompt: 'blurry, low quality' })
    const off0 = await i64.generate({ ...baseRequest, guidanceScale: 0 })
    expect(off.pixelSha256).not.toBe(on.pixelSha256)
    expect(offNeg.pixelSha256).toBe(off.pixelSha256)
    expect(off0.pixelSha256).toBe(off.pixelSha256)
    const other = await i64.generate({ ...baseRequest, guidanceScale: 3 })
    expect(other.pixelSha256).not.toBe(on.pixelSha256)
  })

  it('another prompt gives another image', async () => {
    const a = await i64.generate(baseRequest)
    const b = await i64.generate({ ...baseRequest, prompt: 'a landscape with mountains' })
    expect(b.pixelSha256).not.toBe(a.pixelSha256)
  })

  it('reports progress per step and timings per stage; an aborted job stops with IMAGE_ABORTED', async () => {
    const seen: number[] = []
    const r = await i64.generate({ ...baseRequest, steps: 5 }, { onProgress: s => seen.push(s) })
    expect(seen).toEqual([1, 2, 3, 4, 5])
    for (const v of Object.values(r.stages)) expect(v).toBeGreaterThanOrEqual(0)
    const ac = new AbortController()
    const p = i64.generate({ ...baseRequest, steps: 10 }, { signal: ac.signal, onProgress: s => { if (s === 2) ac.abort() } })
    await expect(p).rejects.toMatchObject({ code: 'IMAGE_ABORTED' })
  })

  it('an empty prompt is allowed and says so', async () => {
    const r = await i64.generate({ ...baseRequest, prompt: '' })
    expect(r.warnings.some(w => w.startsWith('empty prompt'))).toBe(true)
    expect(r.pixels.length).toBe(64 * 64 * 3)
  })
})

describe('bad input', () => {
  it('width or height not a multiple of 8, or over the bound, is a usage error', async () => {
    for (const bad of [{ width: 60 }, { height: 65 }, { width: 2048 }, { height: 0 }]) {
      await expect(i64.generate({ ...baseRequest, ...bad })).rejects.toMatchObject({ code: 'IMAGE_BAD_SIZE', usage: true })
    }
  })

  it('steps over the bound (or zero) is a usage error; so are a bad guidance, seed or scheduler', async () => {
    await expect(i64.generate({ ...baseRequest, steps: 101 })).rejects.toMatchObject({ code: 'IMAGE_BAD_STEPS', usage: true })
    await expect(i64.generate({ ...baseRequest, steps: 0 })).rejects.toMatchObject({ code: 'IMAGE_BAD_STEPS', usage: true })
    await expect(i64.generate({ ...baseRequest, guidanceScale: 31 })).rejects.toMatchObject({ code: 'IMAGE_BAD_GUIDANCE', usage: true })
    await expect(i64.generate({ ...baseRequest, seed: -1 })).rejects.toMatchObject({ code: 'IMAGE_BAD_SEED', usage: true })
    await expect(i64.generate({ ...baseRequest, scheduler: 'pndm' as never })).rejects.toMatchObject({ code: 'IMAGE_BAD_SCHEDULER', usage: true })
  })

  it('a model folder missing a file is a runtime error naming the file', async () => {
    for (const f of ['unet/model.onnx', 'tokenizer/merges.txt']) {
      const dir = await variant(root, `missing-${f.split('/')[0] ?? ''}`)
      await rm(join(dir, f))
      const err = await engine.load(dir).catch((e: unknown) => e)
      expect(isHeuristError(err, 'IMAGE_MODEL_MISSING_FILE')).toBe(true)
      expect((err as Error).message).toContain(f)
      expect((err as { usage: boolean }).usage).toBe(false)
    }
  })

  it('a model whose tensors have unexpected shapes is refused at load', async () => {
    const three = await variant(root, 'three-channels', { latentChannels: 3 })
    await expect(engine.load(three)).rejects.toMatchObject({ code: 'IMAGE_MODEL_BAD_SHAPE', usage: false })
    await expect(engine.load(three)).rejects.toThrow(/sample has shape \[batch,3,height,width\]|has shape/)
    const mismatch = await variant(root, 'hidden-mismatch', { unetHiddenSize: 16 })
    await expect(engine.load(mismatch)).rejects.toMatchObject({ code: 'IMAGE_MODEL_BAD_SHAPE' })
  })

  it('a model whose output shape is wrong only at run time (VAE ×4, declared symbolic) fails the job with IMAGE_MODEL_BAD_SHAPE', async () => {
    const m = await engine.load(await variant(root, 'vae-x4', { vaeScale: 4 }))
    await expect(m.generate({ ...baseRequest, steps: 2 })).rejects.toMatchObject({ code: 'IMAGE_MODEL_BAD_SHAPE', usage: false })
    await expect(m.generate({ ...baseRequest, steps: 2 })).rejects.toThrow(/vae_decoder output has shape \[1,3,32,32\], expected \[1,3,64,64\]/)
    await m.dispose()
    await expect(m.generate(baseRequest)).rejects.toMatchObject({ code: 'IMAGE_MODEL_DISPOSED' })
  })

  it('a corrupt ONNX file is a runtime error', async () => {
    const dir = await variant(root, 'corrupt')
    const { writeFile } = await import('node:fs/promises')
    await writeFile(join(dir, 'vae_decoder/model.onnx'), (await readFile(join(dir, 'vae_decoder/model.onnx'))).subarray(0, 100))
    await expect(engine.load(dir)).rejects.toMatchObject({ code: 'IMAGE_MODEL_BAD_FILE', usage: false })
  })
})
