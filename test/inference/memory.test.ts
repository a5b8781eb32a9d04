import { describe, expect, it } from 'vitest'
import { createImageEngine, demandOf, ensureTinyModels, imageJobBytes, imageJobScale, jobOverBudget, MemoryBudget, modelNeedBytes, type DemandSettings } from '../../src/inference/index.js'
import { engineExecutor } from '../../src/cli/mesh.js'
import { budgetAdmission } from '../../src/p2p/index.js'
import { isHeuristError } from '../../src/core/errors.js'
import { tempDir } from '../helpers.js'
import { testNode } from '../p2p/util.js'

const MiB = 1024 ** 2
const settings: DemandSettings = { contextSize: 0, parallel: 2, imageMaxSide: 64, llmDevices: ['cpu'], imageDevices: ['cpu'] }

describe('memory budget on the built-in tiny models', () => {
  it('reads each model\'s demand from its files, places what fits and refuses, with the reason, what does not', async () => {
    const t = await tempDir()
    try {
      const [llm, sd] = await ensureTinyModels(t.dir, { names: ['tiny-llama', 'tiny-sd'] })
      const dl = await demandOf(llm!, settings)
      const ds = await demandOf(sd!, settings)
      // the LLM's KV cache comes from its GGUF header: context × 2 sequences of it, beside the weights
      expect(dl.kind).toBe('llm')
      expect(dl.weightsBytes).toBe(llm!.sizeBytes)
      expect(dl.kvBytesPerToken).toBeGreaterThan(0)
      expect(dl.contextSize).toBeGreaterThan(0)
      // working memory: SD 1.5's at 64 px, scaled by the model's size relative to SD 1.5 (tiny-sd is a few hundred KB)
      expect(ds).toMatchObject({ kind: 'image', weightsBytes: sd!.sizeBytes, jobBytes: Math.ceil(imageJobBytes(64, 64) * imageJobScale(sd!.sizeBytes)), parallel: 2 })
      expect(imageJobScale(sd!.sizeBytes)).toBeLessThan(0.001)
      const needL = modelNeedBytes(dl)
      const needS = modelNeedBytes(ds)

      // a budget smaller than the LLM: refused with what it needs; the image model still fits beside nothing else
      const small = new MemoryBudget([{ device: 'cpu', freeBytes: needL - 1 }])
      const r = small.reserve(dl)
      expect('refused' in r && r.refused.reason).toMatch(/^tiny-llama needs .* MiB \(weights .* \+ KV cache .* for \d+ tokens × 2 sequences \+ 10 %\); the most room left is .* on cpu/)
      expect(() => small.require(dl)).toThrow(expect.objectContaining({ code: 'INFERENCE_OVER_BUDGET' }))
      expect(small.remaining()).toEqual({ cpu: needL - 1 })

      // room for both: both placed; a second reserve of the same model does not count it twice; release frees it
      const both = new MemoryBudget([{ device: 'cpu', freeBytes: needL + needS }])
      expect('placed' in both.reserve(dl)).toBe(true)
      expect('placed' in both.reserve(ds)).toBe(true)
      expect('placed' in both.reserve(ds)).toBe(true)
      expect(both.remaining()).toEqual({ cpu: 0 })
      expect(both.byDevice()).toEqual({ cpu: [llm!.id, sd!.id] })
      both.release(llm!.id)
      expect(both.remaining()).toEqual({ cpu: needL })
    } finally {
      await t.cleanup()
    }
  })

  it('a job larger than its model was budgeted for is refused before it starts, with a typed rejection', async () => {
    const t = await tempDir()
    const engine = createImageEngine({ threads: 1, executionProvider: 'cpu' })
    const miner = await testNode()
    const client = await testNode()
    try {
      const [m] = await ensureTinyModels(t.dir, { names: ['tiny-sd'] })
      const budget = new MemoryBudget([{ device: 'cpu', freeBytes: 512 * MiB }])
      const placed = budget.require(await demandOf(m!, settings))
      expect(placed.device).toBe('cpu')
      const model = await engine.load(m!.path, { id: m!.id, name: m!.name })
      const base = engineExecutor(null, new Map([[model.info.id, model]]), [model.info])
      let started = 0
      const executor = { models: base.models, async execute (...a: Parameters<typeof base.execute>) { started++; return await base.execute(...a) } }
      await miner.serveJobs(executor, { admit: budgetAdmission((job, info) => jobOverBudget(job, budget.placement(info.id)?.demand)) })
      await client.dial(miner.multiaddrs()[0]!)
      const image = { prompt: 'a red cube', negativePrompt: '', steps: 2, guidanceScale: 7, seed: 1, scheduler: 'euler' as const }
      // within the planned 64 px: served
      const ok = await client.runJob(miner.peerId, { kind: 'image', modelId: model.info.id, image: { ...image, width: 64, height: 64 } }, { timeoutMs: 60_000 })
      expect(ok.output.kind).toBe('image')
      expect(started).toBe(1)
      // 128 px needs more working memory than was budgeted per job: refused, never started
      const err = await client.runJob(miner.peerId, { kind: 'image', modelId: model.info.id, image: { ...image, width: 128, height: 128 } }, { timeoutMs: 60_000 }).then(() => null, (e: unknown) => e)
      expect(isHeuristError(err)).toBe(true)
      const code = isHeuristError(err) ? String(err.details?.code ?? err.code) : ''
      expect(code).toBe('INFERENCE_OVER_BUDGET')
      expect((err as Error).message).toMatch(/a 128×128 image needs .* MiB of working memory, over the .* MiB this miner budgeted per job for tiny-sd/)
      expect(started).toBe(1)
    } finally {
      await Promise.allSettled([client.stop(), miner.stop()])
      await engine.dispose()
      await t.cleanup()
    }
  })
})
