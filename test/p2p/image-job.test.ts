import { describe, it, expect } from 'vitest'
import { createImageEngine, ensureTinyModels, pixelSha256 } from '../../src/inference/index.js'
import { engineExecutor } from '../../src/cli/mesh.js'
import { receiptSigner } from '../../src/p2p/index.js'
import { tempDir } from '../helpers.js'
import { testNode } from './util.js'
import sharp from 'sharp'

describe('an image job on the built-in tiny-sd model over the mesh', () => {
  it('streams progress, returns the PNG whose pixels match the receipt, signed by the miner', async () => {
    const t = await tempDir()
    const engine = createImageEngine({ threads: 1 })
    const miner = await testNode()
    const client = await testNode()
    try {
      const [m] = await ensureTinyModels(t.dir, { names: ['tiny-sd'] })
      const model = await engine.load(m!.path, { id: m!.id, name: m!.name })
      await miner.serveJobs(engineExecutor(null, new Map([[model.info.id, model]]), [model.info]))
      await client.dial(miner.multiaddrs()[0]!)
      const steps: number[] = []
      const r = await client.runJob(miner.peerId, { kind: 'image', modelId: model.info.id, image: { prompt: 'a red cube', negativePrompt: '', width: 64, height: 64, steps: 3, guidanceScale: 7, seed: 42, scheduler: 'euler' } }, { onProgress: s => { steps.push(s) }, timeoutMs: 60_000 })
      expect(r.output.kind).toBe('image')
      if (r.output.kind !== 'image') return
      expect(steps.length).toBeGreaterThan(0)
      const raw = await sharp(Buffer.from(r.output.result.png)).removeAlpha().raw().toBuffer({ resolveWithObject: true })
      expect(raw.info.width).toBe(64)
      expect(pixelSha256(new Uint8Array(raw.data))).toBe(r.output.result.pixelSha256)
      expect(r.receipt.receipt.outputHash).toBe('0x' + r.output.result.pixelSha256)
      expect(r.receipt.receipt.pool).toBe(1)
      expect(r.receiptValid).toBe(true)
      expect(receiptSigner(r.receipt)).toBe(miner.address)
    } finally {
      await Promise.allSettled([client.stop(), miner.stop()])
      await engine.dispose()
      await t.cleanup()
    }
  })
})
