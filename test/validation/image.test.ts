import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { join } from 'node:path'
import { Wallet } from 'ethers'
import { tempDir } from '../helpers.js'
import { buildTinySd, createImageEngine, type ImageEngine, type ImageModel, type ImageRequest } from '../../src/inference/index.js'
import type { JobExecutor, JobRequest } from '../../src/p2p/index.js'
import { cheatingExecutor, imageRerun, scoreImageJob, transcriptMismatch, transcriptOf, type ImageRerun } from '../../src/validation/index.js'
import { receiptFor, run } from './fixtures.js'

const domain = { chainId: 31337, verifyingContract: '0x' + '11'.repeat(20) }
const params: Omit<ImageRequest, 'modelId'> = { prompt: 'a cat', negativePrompt: '', width: 32, height: 32, steps: 4, guidanceScale: 7.5, seed: 3, scheduler: 'euler' }

// The real ONNX pipeline on the built-in tiny-sd graphs, one thread, optimization level basic.
describe('image check on tiny-sd', () => {
  let cleanup: () => Promise<void>
  let engine: ImageEngine
  let model: ImageModel
  let honest: JobExecutor
  let rerun: ImageRerun
  const miner = Wallet.createRandom()

  beforeAll(async () => {
    const d = await tempDir()
    cleanup = d.cleanup
    engine = createImageEngine({ executionProvider: 'cpu', threads: 1, optimizationLevel: 'basic' })
    model = await engine.load(await buildTinySd(join(d.dir, 'tiny-sd')))
    honest = {
      models: () => [model.info],
      async execute (job, o) {
        if (job.kind !== 'image') throw new Error('image only')
        const g = await model.generate({ modelId: job.modelId, ...job.image }, { signal: o.signal })
        return { kind: 'image', result: g }
      }
    }
    rerun = async (request, settings) => {
      expect(settings).toEqual({ threads: 1, optimizationLevel: 'basic' })
      return await model.generate(request)
    }
  })
  afterAll(async () => {
    await engine?.dispose()
    await cleanup?.()
  })

  const job = (seed: number): JobRequest => ({ kind: 'image', modelId: model.info.id, image: { ...params, seed } })

  it('passes an honest image (same pixel hash on re-run)', async () => {
    const out = await run(honest, job(3))
    const t = transcriptOf('0x' + 'ab'.repeat(32), job(3), out)
    const s = await scoreImageJob(rerun, t as never)
    expect(s).toMatchObject({ identical: true, fail: false, transcriptMismatch: false })
  })

  it('passes an image with small float drift (SSIM within the calibrated threshold)', async () => {
    const g = await model.generate({ modelId: model.info.id, ...params })
    const pixels = Uint8Array.from(g.pixels, (v, i) => Math.max(0, Math.min(255, v + ((i % 3) - 1) * 2)))
    const sharp = (await import('sharp')).default
    const png = new Uint8Array(await sharp(pixels, { raw: { width: g.width, height: g.height, channels: 3 } }).png().toBuffer())
    const { pixelSha256 } = await import('../../src/inference/index.js')
    const t = transcriptOf('0x' + 'ab'.repeat(32), job(3), { kind: 'image', result: { ...g, png, pixelSha256: pixelSha256(pixels) } })
    const s = await scoreImageJob(rerun, t as never)
    expect(s.identical).toBe(false)
    expect(s.ssim).toBeGreaterThan(0.95)
    expect(s.fail).toBe(false)
  })

  for (const mode of ['wrong-seed', 'blank'] as const) {
    it(`fails ${mode} images`, async () => {
      const ex = cheatingExecutor(mode, { llm: null, images: new Map([[model.info.id, model]]), models: [model.info], honest })
      const out = await run(ex, job(3))
      const signed = await receiptFor(miner, job(3), out, domain)
      const t = transcriptOf(signed.receipt.jobId, job(3), out)
      expect(transcriptMismatch(t, signed)).toBeNull() // the receipt is the miner's own lie, consistently
      const s = await scoreImageJob(rerun, t as never)
      expect(s.transcriptMismatch).toBe(false)
      expect(s.fail).toBe(true)
      expect(s.ssim).toBeLessThan(0.95)
    })
  }

  it('blames the transcript, not the miner, when the PNG does not match the receipt', async () => {
    const out = await run(cheatingExecutor('wrong-seed', { llm: null, images: new Map([[model.info.id, model]]), models: [model.info], honest }), job(3))
    const real = await run(honest, job(3))
    if (out.kind !== 'image' || real.kind !== 'image') throw new Error('image expected')
    // claims the honest pixel hash but carries another picture: a tampered transcript
    const t = transcriptOf('0x' + 'ab'.repeat(32), job(3), { kind: 'image', result: { ...out.result, pixelSha256: 'ff'.repeat(32) } })
    const s = await scoreImageJob(rerun, t as never)
    expect(s).toMatchObject({ transcriptMismatch: true, fail: false })
    const signed = await receiptFor(miner, job(3), real, domain)
    expect(transcriptMismatch(transcriptOf(signed.receipt.jobId, job(3), out), signed)).toBe('output hash differs')
  })

  it('passes results a miner made on several threads (the validator re-runs on 1 and compares by SSIM/dHash)', async () => {
    // a miner serving on 8 onnxruntime threads (inference.imageThreads); the validator's model runs on 1
    const d = await tempDir()
    const minerEngine = createImageEngine({ executionProvider: 'cpu', threads: 8, optimizationLevel: 'basic' })
    try {
      const minerModel = await minerEngine.load(await buildTinySd(join(d.dir, 'tiny-sd')))
      expect(minerModel.info.id).toBe(model.info.id)
      const validatorRerun = imageRerun(new Map([[model.info.id, model]]), id => new Error(`no ${id}`))
      for (const seed of [1, 2, 3]) {
        const req = { kind: 'image' as const, modelId: model.info.id, image: { ...params, width: 64, height: 64, steps: 20, seed } }
        const g = await minerModel.generate({ modelId: req.modelId, ...req.image })
        expect(g.threads).toBe(8)
        const t = transcriptOf('0x' + 'cd'.repeat(32), req, { kind: 'image', result: g })
        expect(t.kind === 'image' && t.output.threads).toBe(8)
        const s = await scoreImageJob(validatorRerun, t as never)
        expect(s.transcriptMismatch).toBe(false)
        expect(s.fail).toBe(false)
        expect(s.ssim).toBeGreaterThanOrEqual(0.95)
        expect(s.dhashDistance).toBeLessThanOrEqual(6)
      }
      // and another seed made on 8 threads still fails: the thresholds still bite across thread counts
      const cheat = await minerModel.generate({ modelId: model.info.id, ...params, width: 64, height: 64, steps: 20, seed: 9 })
      const asked = { kind: 'image' as const, modelId: model.info.id, image: { ...params, width: 64, height: 64, steps: 20, seed: 1 } }
      const s = await scoreImageJob(validatorRerun, transcriptOf('0x' + 'cd'.repeat(32), asked, { kind: 'image', result: cheat }) as never)
      expect(s.fail).toBe(true)
    } finally {
      await minerEngine.dispose()
      await d.cleanup()
    }
  })
})
