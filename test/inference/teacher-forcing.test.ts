import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import type { LlamaContext, LlamaContextSequence, LlamaModel } from 'node-llama-cpp'
import { tempDir } from '../helpers.js'
import { ensureTinyModels, fastTeacherForcing, getLlamaRuntime, teacherForce, teacherForceCompact, type CompactDistribution, type CompactRequest, type RawDistribution } from '../../src/inference/index.js'

/** The sequence as a node-llama-cpp without the internals the fast path uses would give it (public methods only). */
export function hideInternals (seq: LlamaContextSequence): LlamaContextSequence {
  return new Proxy(seq, {
    get: (t, k) => {
      if (typeof k === 'string' && k.startsWith('_')) return undefined
      const v: unknown = Reflect.get(t, k, t)
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v
    }
  })
}

// Real llama.cpp on the generated tiny model, one thread: the fast teacher-forcing path (one
// decode, sampler calls in flight at once) must give exactly what controlledEvaluate gives.
describe('teacher forcing', () => {
  let cleanup: () => Promise<void>
  let model: LlamaModel
  let context: LlamaContext
  const sequences = new Map<LlamaContext, LlamaContextSequence>()

  beforeAll(async () => {
    const d = await tempDir()
    cleanup = d.cleanup
    const [m] = await ensureTinyModels(d.dir, { names: ['tiny-llama'] })
    const llama = await getLlamaRuntime({ gpu: 'cpu', threads: 1 })
    model = await llama.loadModel({ modelPath: m!.path })
    context = await model.createContext({ contextSize: 512, sequences: 1, threads: 1 })
  })
  afterAll(async () => {
    await context?.dispose()
    await model?.dispose()
    await cleanup?.()
  })

  // one sequence, cleared after each run, as the engine does
  async function run (tokens: number[], first: number, topK: number, native: boolean, lanes = 4, ctx = context): Promise<RawDistribution[]> {
    const seq = sequences.get(ctx) ?? ctx.getSequence()
    sequences.set(ctx, seq)
    try {
      return await teacherForce(seq, model, tokens, first, topK, { native, lanes })
    } finally {
      await seq.clearHistory()
    }
  }

  it('gives the same tokens and probabilities as controlledEvaluate, for top-k on and off and any number of lanes', async () => {
    const tokens = [model.tokens.bos!, ...model.tokenize('teacher forcing reads every position of this text', false)]
    // the installed node-llama-cpp has the internals, so the comparison is not one path with itself
    const probe = context.getSequence()
    sequences.set(context, probe)
    expect(fastTeacherForcing(probe, model)).toBe(true)
    for (const topK of [0, 1, 12]) {
      const reference = await run(tokens, 3, topK, false)
      expect(reference).toHaveLength(tokens.length - 3)
      for (const lanes of [1, 3, 4]) {
        const fast = await run(tokens, 3, topK, true, lanes)
        expect(fast).toHaveLength(reference.length)
        for (let i = 0; i < reference.length; i++) {
          expect(fast[i]!.tokens).toEqual(reference[i]!.tokens)
          expect(fast[i]!.probs).toEqual(reference[i]!.probs)
          if (topK > 0) expect(fast[i]!.tokens.length).toBe(topK); else expect(fast[i]!.tokens.length).toBeGreaterThan(200) // the whole vocabulary
        }
      }
    }
  })

  it('reads positions across several decode batches (input longer than the batch)', async () => {
    const small = await model.createContext({ contextSize: 512, sequences: 1, threads: 1, batchSize: 16 })
    try {
      const tokens = [model.tokens.bos!, ...model.tokenize('a longer text that does not fit in one batch of sixteen tokens, so it takes several', false)]
      expect(tokens.length).toBeGreaterThan(40)
      const fast = await run(tokens, 2, 8, true, 4, small)
      const reference = await run(tokens, 2, 8, false, 4, small)
      expect(fast.map(d => [...d.tokens])).toEqual(reference.map(d => [...d.tokens]))
      expect(fast.map(d => [...d.probs])).toEqual(reference.map(d => [...d.probs]))
    } finally {
      await small.dispose()
    }
  })

  it('compact: with the internals hidden, the public path reads the same O(top) numbers, at temperature 1 and at 0.7', async () => {
    const seq = sequences.get(context) ?? context.getSequence()
    sequences.set(context, seq)
    const hidden = hideInternals(seq)
    expect(fastTeacherForcing(seq, model)).toBe(true)
    expect(fastTeacherForcing(hidden, model)).toBe(false)
    const tokens = [model.tokens.bos!, ...model.tokenize('the fallback reads the head, the listed logits and the sums', false)]
    const eos = model.tokens.eos!
    const compact = async (s: LlamaContextSequence, req: CompactRequest): Promise<CompactDistribution[]> => {
      try { return await teacherForceCompact(s, model, tokens, 4, req) } finally { await seq.clearHistory() }
    }
    for (const req of [{ top: 16, extra: [eos] }, { top: 16, extra: [eos], temperature: 0.7 }, { top: 1000, extra: [eos, 7] }]) {
      const fast = await compact(seq, req)
      const pub = await compact(hidden, req)
      expect(pub).toHaveLength(tokens.length - 4)
      expect(fast).toHaveLength(pub.length)
      for (let i = 0; i < pub.length; i++) {
        const f = fast[i]!
        const p = pub[i]!
        // O(top) numbers per position: the head, the next token and the listed ones
        expect(p.tokens.length).toBe(Math.min(req.top, 262))
        expect(p.extraTokens.length).toBeLessThanOrEqual(req.extra.length + 1)
        expect(p.extraTokens).toContain(eos)
        if (i + 5 <= tokens.length - 1) expect(p.extraTokens).toContain(tokens[i + 5])
        expect([...p.tokens]).toEqual([...f.tokens])
        expect([...p.logits]).toEqual([...f.logits])
        expect([...p.extraTokens]).toEqual([...f.extraTokens])
        expect([...p.extraLogits]).toEqual([...f.extraLogits])
        expect(p.lse).toBe(f.lse)
        // the sum at another temperature: the public chain has a top-k of 0 (no cut, but it may reorder), so float32 sums differ in the last bits
        if (req.temperature === undefined) expect(p.lseT).toBeUndefined(); else expect(Math.abs(p.lseT! - f.lseT!)).toBeLessThan(1e-5)
        if (req.temperature !== undefined) expect(p.lseT).toBeGreaterThan(p.lse) // T < 1 sharpens: Σ exp(l/T) > Σ exp(l) here (logits > 0 at the top)
      }
    }
  })
})
