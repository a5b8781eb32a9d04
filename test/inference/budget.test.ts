import { describe, expect, it } from 'vitest'
import { imageJobBytes, kvBytesPerToken, modelNeedBytes, planPlacement, usableBytes, type ModelDemand } from '../../src/inference/budget.js'

const GiB = 1024 ** 3
const MiB = 1024 ** 2

const llm = (id: string, weightsGiB: number, over: Partial<ModelDemand> = {}): ModelDemand => ({ id, name: id, kind: 'llm', weightsBytes: weightsGiB * GiB, kvBytesPerToken: 0, contextSize: 0, parallel: 1, jobBytes: 0, ...over })

describe('memory need of a model', () => {
  it('adds weights, the KV cache of its context × parallel sequences and per-job memory, plus 10 %', () => {
    // 4 GiB weights + 1 MiB/token × 2048 tokens × 2 sequences (4 GiB) = 8 GiB, × 1.1
    expect(modelNeedBytes(llm('a', 4, { kvBytesPerToken: MiB, contextSize: 2048, parallel: 2 }))).toBe(Math.ceil(8 * GiB * 1.1))
    // an image model: 2 GiB of weights + 3 jobs × 1 GiB = 5 GiB, × 1.1
    expect(modelNeedBytes({ id: 'i', name: 'i', kind: 'image', weightsBytes: 2 * GiB, kvBytesPerToken: 0, contextSize: 0, parallel: 3, jobBytes: GiB })).toBe(Math.ceil(5 * GiB * 1.1))
  })

  it('the KV cache per token of a llama-shaped GGUF: 2 (K, V) × layers × kv width × 2 bytes', () => {
    // Llama-2-7B: 32 layers, 4096 wide, 32 heads, no GQA → 512 KiB per token
    expect(kvBytesPerToken(32, 4096, 32, 32)).toBe(512 * 1024)
    // Llama-3-8B: 8 KV heads of 32 → a quarter
    expect(kvBytesPerToken(32, 4096, 32, 8)).toBe(128 * 1024)
  })

  it("an image job's working memory grows with the square of its latent pixels", () => {
    expect(imageJobBytes(1024, 1024)).toBeGreaterThan(imageJobBytes(512, 512) * 8)
    expect(imageJobBytes(512, 512, false) * 2).toBe(imageJobBytes(512, 512, true))
    // 512×512 with guidance: 2 × (8 × 4096² × 4 + 64 × 320 × 4096 × 4) bytes
    expect(imageJobBytes(512, 512)).toBe(2 * (8 * 4096 * 4096 * 4 + 64 * 320 * 4096 * 4))
  })

  it('keeps a reserve back from what is free', () => {
    expect(usableBytes(10 * GiB, 2 * GiB)).toBe(8 * GiB)
    expect(usableBytes(GiB, 2 * GiB)).toBe(0)
  })
})

describe('placement planner', () => {
  it('puts two models on two budgets, one on each, when neither budget holds both', () => {
    const a = llm('a', 5)
    const b = llm('b', 5)
    const plan = planPlacement([a, b], [{ device: 'gpu0', freeBytes: 8 * GiB }, { device: 'gpu1', freeBytes: 8 * GiB }])
    expect(plan.refused).toEqual([])
    expect(plan.placed).toEqual([
      { id: 'a', name: 'a', device: 'gpu0', needBytes: Math.ceil(5 * GiB * 1.1) },
      { id: 'b', name: 'b', device: 'gpu1', needBytes: Math.ceil(5 * GiB * 1.1) }
    ])
    expect(plan.left).toEqual({ gpu0: 8 * GiB - Math.ceil(5.5 * GiB), gpu1: 8 * GiB - Math.ceil(5.5 * GiB) })
  })

  it('puts a model on the device with the most room left, so two small ones share the bigger budget', () => {
    const plan = planPlacement([llm('a', 1), llm('b', 1), llm('c', 3)], [{ device: 'gpu0', freeBytes: 4 * GiB }, { device: 'gpu1', freeBytes: 6 * GiB }])
    expect(plan.placed.map(p => [p.id, p.device])).toEqual([['a', 'gpu1'], ['b', 'gpu1'], ['c', 'gpu0']])
    expect(plan.refused).toEqual([])
  })

  it('refuses a model larger than every budget, saying what it needs and the most room there is', () => {
    const big = llm('big', 3, { kvBytesPerToken: 256 * 1024, contextSize: 4096, parallel: 2 })
    const plan = planPlacement([big], [{ device: 'cpu', freeBytes: 4 * GiB }])
    expect(plan.placed).toEqual([])
    expect(plan.refused).toHaveLength(1)
    const r = plan.refused[0]!
    expect(r.id).toBe('big')
    // 3 GiB + 256 KiB × 4096 × 2 (2 GiB) = 5 GiB, × 1.1 = 5.5 GiB
    expect(r.needBytes).toBe(Math.ceil(5.5 * GiB))
    expect(r.reason).toBe('big needs 5.50 GiB (weights 3.00 GiB + KV cache 2.00 GiB for 4096 tokens × 2 sequences + 10 %); the most room left is 4.00 GiB on cpu (of 4.00 GiB free at start)')
    expect(plan.left).toEqual({ cpu: 4 * GiB })
  })

  it('places in the order given: a later model that no longer fits is refused, an earlier one is not displaced', () => {
    const plan = planPlacement([llm('first', 3), llm('second', 3), llm('small', 0.5)], [{ device: 'cpu', freeBytes: 4 * GiB }])
    expect(plan.placed.map(p => p.id)).toEqual(['first', 'small'])
    expect(plan.refused.map(r => r.id)).toEqual(['second'])
    expect(plan.refused[0]!.reason).toContain('the most room left is 0.70 GiB on cpu')
  })

  it('keeps a model to the devices it may run on', () => {
    const img = { ...llm('img', 1), kind: 'image' as const, devices: ['cpu'] }
    const plan = planPlacement([img], [{ device: 'gpu0', freeBytes: 80 * GiB }, { device: 'cpu', freeBytes: 2 * GiB }])
    expect(plan.placed).toEqual([{ id: 'img', name: 'img', device: 'cpu', needBytes: Math.ceil(1.1 * GiB) }])
    const none = planPlacement([{ ...img, devices: ['gpu3'] }], [{ device: 'gpu0', freeBytes: 80 * GiB }])
    expect(none.refused[0]!.reason).toBe('img may run on gpu3, and this miner has none of them (has gpu0)')
  })
})

describe('inference.gpus: the GPUs one identity serves', () => {
  it('all, none, or a list of indices; indices the machine lacks are dropped', async () => {
    const { selectGpus } = await import('../../src/cli/mesh.js')
    expect(selectGpus('all', 4)).toEqual([0, 1, 2, 3])
    expect(selectGpus('none', 4)).toEqual([])
    expect(selectGpus('2,0', 4)).toEqual([2, 0])
    expect(selectGpus('1,1,7', 2)).toEqual([1])
    expect(selectGpus('all', 0)).toEqual([])
  })

  it('two models on two GPUs of one miner, each GPU budgeted on its own', () => {
    const plan = planPlacement([llm('llm-70b-q4', 40), { ...llm('sd15', 2), kind: 'image' as const, jobBytes: imageJobBytes(512, 512), parallel: 2 }], [{ device: 'gpu0', freeBytes: 47 * GiB }, { device: 'gpu1', freeBytes: 47 * GiB }])
    expect(plan.placed.map(p => [p.id, p.device])).toEqual([['llm-70b-q4', 'gpu0'], ['sd15', 'gpu1']])
    expect(plan.left.gpu1).toBe(47 * GiB - Math.ceil((2 * GiB + 2 * imageJobBytes(512, 512)) * 1.1))
  })
})
