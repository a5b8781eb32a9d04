import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { join } from 'node:path'
import { tempDir } from '../helpers.js'
import { ensureTinyModels } from '../../src/inference/index.js'
import { cheatingExecutor, scoreLlmJob, windowTest, type LlmJobScore } from '../../src/validation/index.js'
import { isHeuristError } from '../../src/core/errors.js'
import { loadTinyLlms, llmJob, minerExecutor, run, type TinyLlms } from './fixtures.js'

// Real llama.cpp, one thread: tiny-llama and its Q8_0/Q4_0 copies in one engine. The quantized
// cheats serve the copy's text under tiny-llama's id; the validator scores it against tiny-llama.
describe('quantized-model cheats', () => {
  let cleanup: () => Promise<void>
  let t: TinyLlms
  const sibling: Record<string, string> = {}

  beforeAll(async () => {
    const d = await tempDir()
    cleanup = d.cleanup
    t = await loadTinyLlms(d.dir)
    for (const m of await ensureTinyModels(join(d.dir, 'models'), { names: ['tiny-llama-q8', 'tiny-llama-q4'] })) {
      sibling[m.name] = (await t.engine.load(m.path, { id: m.id, name: m.name })).id
    }
  })
  afterAll(async () => {
    await t?.engine.stop()
    await cleanup?.()
  })

  async function score (mode: 'honest' | 'quantized-q8' | 'quantized-q4', i: number): Promise<{ s: LlmJobScore, tokens: number[] }> {
    const job = llmJob(t.a.id, i)
    const out = await run(minerExecutor(t, mode), job)
    if (out.kind !== 'llm') throw new Error('llm expected')
    return { s: await scoreLlmJob(t.engine, { modelId: t.a.id, input: job.input, sampling: job.sampling, output: out.result }), tokens: out.result.tokens }
  }

  it('serves the quantized copy\'s output under the claimed id (not the claimed model\'s, nor tiny-llama-b\'s)', async () => {
    for (const [mode, name] of [['quantized-q8', 'tiny-llama-q8'], ['quantized-q4', 'tiny-llama-q4']] as const) {
      let differsFromHonest = 0
      for (let i = 0; i < 6; i++) {
        const job = llmJob(t.a.id, i)
        const cheat = await run(minerExecutor(t, mode), job)
        const copy = await t.engine.generate({ modelId: sibling[name]!, input: job.input, sampling: job.sampling })
        const honest = await t.engine.generate({ modelId: t.a.id, input: job.input, sampling: job.sampling })
        if (cheat.kind !== 'llm') throw new Error('llm expected')
        expect(cheat.result.tokens, `${mode} job ${i}`).toEqual(copy.tokens)
        if (cheat.result.tokens.join() !== honest.tokens.join()) differsFromHonest++
      }
      // Q4_0 moves the distributions enough that a seeded draw leaves the honest path somewhere
      if (mode === 'quantized-q4') expect(differsFromHonest).toBeGreaterThan(0)
    }
  })

  it('wrong-model still picks the other model, not a quantized copy of the claimed one', async () => {
    const job = llmJob(t.a.id, 3)
    const out = await run(minerExecutor(t, 'wrong-model'), job)
    const b = await t.engine.generate({ modelId: t.b.id, input: job.input, sampling: job.sampling })
    if (out.kind !== 'llm') throw new Error('llm expected')
    expect(out.result.tokens).toEqual(b.tokens)
  })

  it('refuses with VALIDATION_CHEAT_UNAVAILABLE when the copy is not loaded', async () => {
    const job = llmJob(t.b.id, 0) // tiny-llama-b's copies are not loaded here
    const ex = cheatingExecutor('quantized-q4', { llm: t.engine, images: new Map(), models: t.models, honest: minerExecutor(t, 'honest') })
    const e = await run(ex, job).then(() => null, (err: unknown) => err)
    expect(isHeuristError(e, 'VALIDATION_CHEAT_UNAVAILABLE')).toBe(true)
  })

  it('catches quantized-q4 within 20 sampled jobs (a job alone or the window test)', async () => {
    const scores: LlmJobScore[] = []
    let caughtAt = -1
    for (let i = 0; i < 20 && caughtAt < 0; i++) {
      const { s } = await score('quantized-q4', i)
      scores.push(s)
      if (s.fail || windowTest(scores).fail) caughtAt = i + 1
    }
    expect(caughtAt).toBeGreaterThan(0)
  })

  it('never fails an honest job or window, with the copies loaded beside the model', async () => {
    const scores: LlmJobScore[] = []
    for (let i = 0; i < 40; i++) scores.push((await score('honest', 500 + i)).s)
    expect(scores.filter(s => s.fail)).toEqual([])
    for (let k = 0; k + 20 <= scores.length; k += 10) expect(windowTest(scores.slice(k, k + 20)).fail).toBe(false)
  })
})
