import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { createLlamaEngine, ensureTinyModels, type LlamaEngine, type ModelInfo } from '../../src/inference/index.js'
import { engineExecutor } from '../../src/cli/mesh.js'
import { receiptSigner, type HeuristNode } from '../../src/p2p/index.js'
import { tempDir } from '../helpers.js'
import { testNode } from './util.js'

describe('a job on the real tiny llama model over the mesh', () => {
  let miner: HeuristNode
  let client: HeuristNode
  let engine: LlamaEngine
  let info: ModelInfo
  let cleanup: () => Promise<void>

  beforeAll(async () => {
    const t = await tempDir()
    cleanup = t.cleanup
    const [m] = await ensureTinyModels(t.dir, { names: ['tiny-llama'] })
    engine = createLlamaEngine({ threads: 1, parallel: 1, gpu: 'cpu' })
    info = await engine.load(m!.path, { id: m!.id, name: m!.name })
    miner = await testNode()
    client = await testNode()
    await miner.serveJobs(engineExecutor(engine, new Map(), [info]))
    await client.dial(miner.multiaddrs()[0]!)
  })
  afterAll(async () => {
    await Promise.allSettled([client.stop(), miner.stop()])
    await engine.stop()
    await cleanup()
  })

  it('streams the same text the engine produces locally, with a receipt signed by the miner', async () => {
    const sampling = { seed: 7, temperature: 0.8, topP: 0.95, topK: 40, maxTokens: 24, stop: [] }
    const local = await engine.generate({ modelId: info.id, input: 'the mesh', sampling })
    const pieces: string[] = []
    const r = await client.runJob(miner.peerId, { kind: 'llm', modelId: info.id, input: 'the mesh', sampling }, { onToken: t => { pieces.push(t) } })
    expect(r.output.kind).toBe('llm')
    const text = r.output.kind === 'llm' ? r.output.result.text : ''
    expect(text).toBe(local.text)
    expect(pieces.join('')).toBe(text)
    expect(pieces.length).toBeGreaterThan(1)
    expect(r.receiptValid).toBe(true)
    expect(receiptSigner(r.receipt)).toBe(miner.address)
  })
})
