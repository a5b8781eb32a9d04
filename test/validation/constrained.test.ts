import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { tempDir } from '../helpers.js'
import { scoreLlmJob, windowTest } from '../../src/validation/index.js'
import { normalizeSchema, type OutputConstraint } from '../../src/inference/index.js'
import type { JobRequest } from '../../src/p2p/index.js'
import { loadTinyLlms, minerExecutor, run, sampling, type TinyLlms } from './fixtures.js'

/**
 * Constrained jobs (a JSON schema turned into a llama.cpp grammar) on the real tiny model: an
 * honest miner samples under the grammar's mask and the validator, teacher-forcing under the
 * same grammar, passes it every time (tokens the model finds unlikely but the grammar forces do
 * not count against it); a miner that ignores the grammar is caught on each job by the token
 * the grammar forbids.
 */
const schema = normalizeSchema({
  type: 'object',
  properties: { city: { type: 'string', enum: ['Paris', 'Rome', 'Oslo'] }, ok: { type: 'boolean' }, tags: { type: 'array', items: { type: 'string', enum: ['a', 'b'] }, maxItems: 3 } },
  required: ['city', 'ok', 'tags'],
  additionalProperties: false
})
const constraint: OutputConstraint = { type: 'json_schema', schema }

function job (modelId: string, i: number): Extract<JobRequest, { kind: 'llm' }> {
  const variants = [{}, { temperature: 1.0, topK: 0, topP: 1 }, { temperature: 0.6, topK: 20, topP: 0.9 }, { temperature: 0 }]
  return { kind: 'llm', modelId, input: [{ role: 'user', content: `answer ${i} in JSON` }], sampling: { ...sampling, ...variants[i % variants.length], maxTokens: 120, seed: 500 + i }, constraint }
}

describe('LLM check under a grammar', () => {
  let cleanup: () => Promise<void>
  let t: TinyLlms

  beforeAll(async () => {
    const d = await tempDir()
    cleanup = d.cleanup
    t = await loadTinyLlms(d.dir)
  })
  afterAll(async () => {
    await t?.engine.stop()
    await cleanup?.()
  })

  it('an honest constrained miner: output parses under the schema, every job passes, the window too', async () => {
    const scores = []
    for (let i = 0; i < 8; i++) {
      const j = job(t.a.id, i)
      const out = await run(minerExecutor(t, 'honest'), j)
      if (out.kind !== 'llm') throw new Error('llm expected')
      expect(out.result.finishReason).toBe('stop')
      const parsed = JSON.parse(out.result.text) as { city: string, ok: boolean, tags: string[] }
      expect(['Paris', 'Rome', 'Oslo']).toContain(parsed.city)
      expect(typeof parsed.ok).toBe('boolean')
      expect(Object.keys(parsed).sort()).toEqual(['city', 'ok', 'tags'])
      const s = await scoreLlmJob(t.engine, { modelId: t.a.id, input: j.input, sampling: j.sampling, constraint, output: out.result })
      expect(s, `job ${i}`).toMatchObject({ outsideSupport: 0, truncated: false, fail: false })
      scores.push(s)
    }
    expect(windowTest(scores).fail).toBe(false)
  })

  it('a greedy honest output checked without the grammar fails: the mask is what makes it pass', async () => {
    const j = job(t.a.id, 3)
    expect(j.sampling.temperature).toBe(0)
    const out = await run(minerExecutor(t, 'honest'), j)
    if (out.kind !== 'llm') throw new Error('llm expected')
    const withMask = await scoreLlmJob(t.engine, { modelId: t.a.id, input: j.input, sampling: j.sampling, constraint, output: out.result })
    const without = await scoreLlmJob(t.engine, { modelId: t.a.id, input: j.input, sampling: j.sampling, output: out.result })
    expect(withMask.fail).toBe(false)
    // unmasked, the model's argmax is not what the grammar forced
    expect(without.fail).toBe(true)
    expect(without.outsideSupport).toBeGreaterThan(0)
  })

  it('a miner that ignores the grammar is caught on every job, at a token the grammar forbids', async () => {
    for (let i = 0; i < 4; i++) {
      const j = job(t.a.id, i)
      const out = await run(minerExecutor(t, 'ignore-constraint'), j)
      if (out.kind !== 'llm') throw new Error('llm expected')
      const s = await scoreLlmJob(t.engine, { modelId: t.a.id, input: j.input, sampling: j.sampling, constraint, output: out.result })
      expect(s.fail, `job ${i}`).toBe(true)
      expect(s.outsideSupport).toBeGreaterThan(0)
    }
  })

  it('one forbidden token spliced into an honest output fails at that index', async () => {
    const j = job(t.a.id, 2)
    const out = await run(minerExecutor(t, 'honest'), j)
    if (out.kind !== 'llm') throw new Error('llm expected')
    const tokens = [...out.result.tokens]
    const x = t.engine.tokenize(t.a.id, 'x')[0]!
    tokens[1] = x // right after '{' only whitespace or '"' may come
    const text = t.engine.detokenize(t.a.id, tokens)
    const s = await scoreLlmJob(t.engine, { modelId: t.a.id, input: j.input, sampling: j.sampling, constraint, output: { ...out.result, tokens, text } })
    expect(s.fail).toBe(true)
    expect(s.firstOutside).toBe(1)
  })
})
