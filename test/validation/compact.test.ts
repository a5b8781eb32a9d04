import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { tempDir } from '../helpers.js'
import { createLlamaEngine, ensureTinyModels, tinyBpeVocabulary, TINY_BPE_EOG, compactOf, type CachedModel, type LlamaEngine, type SamplingParams } from '../../src/inference/index.js'
import { scoreLlmJob, scorePosition, scoreCompact, windowTest, defaultLlmCheckOptions, type LlmJobScore } from '../../src/validation/index.js'
import { compactScorer } from '../../src/validation/llm-check.js'

// Top-k off (the gateway's default) on a real vocabulary: the validator reads O(k) numbers per
// position (`compactDistributions`), not the whole vocabulary. Real llama.cpp, one thread.
const defaults: SamplingParams = { seed: 1, temperature: 1, topP: 1, topK: 0, maxTokens: 32, stop: [] }

/** A real one-thread engine with the named tiny model loaded, built in its own temp dir. */
async function loadTinyEngine (name: string): Promise<{ engine: LlamaEngine, model: CachedModel, cleanup: () => Promise<void> }> {
  const d = await tempDir()
  const [model] = await ensureTinyModels(d.dir, { names: [name] }) as [CachedModel]
  const engine = createLlamaEngine({ gpu: 'cpu', threads: 1, parallel: 1, maxQueue: 8 })
  await engine.load(model.path, { id: model.id, name: model.name })
  return { engine, model, cleanup: d.cleanup }
}

describe('compact teacher forcing on tiny-llama (262 tokens)', () => {
  let cleanup: () => Promise<void>
  let engine: LlamaEngine
  let a: CachedModel

  beforeAll(async () => {
    ;({ engine, model: a, cleanup } = await loadTinyEngine('tiny-llama'))
  })
  afterAll(async () => {
    await engine?.stop()
    await cleanup?.()
  })

  it('with the whole vocabulary listed, scores every position as the full distribution does', async () => {
    const eog = engine.eogTokens(a.id)
    for (const s of [defaults, { ...defaults, temperature: 1.3, topP: 0.8 }, { ...defaults, temperature: 0.7 }]) {
      const r = await engine.generate({ modelId: a.id, input: 'compact', sampling: s })
      const full = (await engine.tokenDistributions(a.id, 'compact', r.tokens)).distributions
      const compact = (await engine.compactDistributions(a.id, 'compact', r.tokens, { top: 1000, ...(s.temperature !== 1 ? { temperature: s.temperature } : {}) })).distributions
      expect(compact).toHaveLength(r.tokens.length + 1)
      const check = (i: number, tok: number): void => {
        const x = scorePosition(full[i]!, tok, s)
        const y = scoreCompact(compact[i]!, tok, s)
        expect(y.inSupport).toBe(x.inSupport)
        expect(Math.abs(y.u - x.u)).toBeLessThan(1e-5)
        if (Number.isFinite(x.logP)) expect(Math.abs(y.logP - x.logP)).toBeLessThan(1e-4)
        else expect(y.logP).toBe(x.logP)
        // the same from a whole distribution reduced in JavaScript (the fallback path)
        const z = scoreCompact(compactOf(full[i]!, 1000, [tok], s.temperature), tok, s)
        expect(Math.abs(z.u - x.u)).toBeLessThan(1e-9)
      }
      r.tokens.forEach((tok, i) => check(i, tok))
      for (const e of eog) check(r.tokens.length, e)
    }
  })

  it('a scorer kept for one position (its sums taken once) scores every token exactly as a fresh one does, in every branch', async () => {
    let scored = 0
    // heads of 3 and 8: nuclei longer than the head; 128: inside it; top-p 1 at T 1 and 0.5: the tail category
    for (const top of [3, 8, 128]) {
      for (const x of [{ temperature: 1, topP: 1 }, { temperature: 0.5, topP: 1 }, { temperature: 0.7, topP: 0.9 }, { temperature: 1.3, topP: 0.5 }]) {
        const s = { ...defaults, ...x, seed: 60 + top, maxTokens: 16 }
        const r = await engine.generate({ modelId: a.id, input: 'scorer', sampling: s })
        const { distributions } = await engine.compactDistributions(a.id, 'scorer', r.tokens, { top, ...(s.temperature !== 1 ? { temperature: s.temperature } : {}) })
        for (const c of distributions) {
          const kept = compactScorer(c, s)
          // the head, the listed tokens and tokens outside both, in an order that reuses the sums
          for (const t of [...c.extraTokens, ...c.tokens, 5, 100, 261, ...c.tokens.slice(0, 2)]) {
            expect(kept(t)).toEqual(scoreCompact(c, t, s))
            scored++
          }
        }
      }
    }
    expect(scored).toBeGreaterThan(1000)
  })

  it('with a short head (8 tokens) honest jobs still pass and their windows stay inside the bound', async () => {
    const scores: LlmJobScore[] = []
    for (let i = 0; i < 40; i++) {
      const s = { ...defaults, seed: 500 + i, ...(i % 2 === 1 ? { temperature: 0.8, topP: 0.9 } : {}) }
      const input = `short head ${i}`
      const r = await engine.generate({ modelId: a.id, input, sampling: s })
      scores.push(await scoreLlmJob(engine, { modelId: a.id, input, sampling: s, output: r }, { compactTop: 8 }))
    }
    expect(scores.filter(x => x.fail)).toEqual([])
    const w = windowTest(scores.slice(-defaultLlmCheckOptions.window))
    expect(w.fail).toBe(false)
  })

  it('catches random tokens at the gateway\'s defaults with a short head (the tail counts as one category)', async () => {
    const scores: LlmJobScore[] = []
    let seed = 7
    const rnd = (): number => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed / 2 ** 31 }
    for (let i = 0; i < 20; i++) {
      const s = { ...defaults, seed: 900 + i }
      const input = `random ${i}`
      const honest = await engine.generate({ modelId: a.id, input, sampling: s })
      // printable ASCII bytes (token 5 + byte), as the model writes, but drawn uniformly
      const tokens = honest.tokens.map(() => 5 + 0x21 + Math.floor(rnd() * 94))
      scores.push(await scoreLlmJob(engine, { modelId: a.id, input, sampling: s, output: { text: engine.detokenize(a.id, tokens), tokens, finishReason: 'length' } }, { compactTop: 8 }))
    }
    const w = windowTest(scores)
    expect(w.fail).toBe(true)
    expect(w.direction).toBe('unlikely')
  })
})

describe('the end statistic at the gateway\'s defaults (tiny-llama)', () => {
  let cleanup: () => Promise<void>
  let engine: LlamaEngine
  let a: CachedModel

  beforeAll(async () => {
    ;({ engine, model: a, cleanup } = await loadTinyEngine('tiny-llama'))
  })
  afterAll(async () => {
    await engine?.stop()
    await cleanup?.()
  })

  it('fails jobs cut at half length and called a natural stop: the end p-value within two jobs, the end statistic alone only over many', async () => {
    const cut: LlmJobScore[] = []
    const honest: LlmJobScore[] = []
    for (let i = 0; i < 20; i++) {
      const s = { ...defaults, seed: 300 + i }
      const input = `cut ${i}`
      const full = await engine.generate({ modelId: a.id, input, sampling: s })
      honest.push(await scoreLlmJob(engine, { modelId: a.id, input, sampling: s, output: full }))
      // the truncate cheat: half the tokens, finish reason 'stop' (at top-k off every end is in the support)
      const tokens = full.tokens.slice(0, 16)
      const sc = await scoreLlmJob(engine, { modelId: a.id, input, sampling: s, output: { text: engine.detokenize(a.id, tokens), tokens, finishReason: 'stop' } })
      expect(sc.outsideSupport).toBe(0)
      // tiny-llama almost never ends (q ≈ 1e-13 … 5e-8 per position): A · q · e^0.1 with A = 32
      expect(sc.endP).toBeLessThan(1e-5)
      // failed alone exactly when its end p-value is at most α
      expect(sc.fail).toBe(sc.endP! <= defaultLlmCheckOptions.alpha)
      cut.push(sc)
    }
    // two such jobs: Fisher's combination fails the window; the end statistic (Σ 1{end} − q ≈ 2
    // against a bound near 17) does not see them yet
    const two = windowTest(cut.slice(0, 2))
    expect(two.endP?.fail).toBe(true)
    expect(two.end?.fail).toBe(false)
    expect(Math.abs(two.d)).toBeLessThan(two.threshold)
    expect(two.direction).toBe('unlikely')
    const w = windowTest(cut)
    expect(w.end?.fail).toBe(true)
    expect(w.endP?.fail).toBe(true)
    expect(w.direction).toBe('unlikely')
    // the same jobs uncut ended at max tokens: end p-value 1, window inside every bound
    expect(honest.map(x => x.endP)).toEqual(honest.map(() => 1))
    const h = windowTest(honest)
    expect(h.end).not.toBeNull()
    expect(h.endP).toMatchObject({ jobs: 20, s: 0, p: 1, fail: false })
    expect(h.fail).toBe(false)
  })
})

describe('tiny-llama-128k: a GPT-2-style BPE vocabulary of 128,256 tokens and four end tokens', () => {
  let cleanup: () => Promise<void>
  let engine: LlamaEngine
  let m: CachedModel

  beforeAll(async () => {
    ;({ engine, model: m, cleanup } = await loadTinyEngine('tiny-llama-128k'))
  })
  afterAll(async () => {
    await engine?.stop()
    await cleanup?.()
  })

  it('declares every end token to llama.cpp and tokenizes text with the BPE merges', () => {
    const v = tinyBpeVocabulary()
    expect(v.tokens).toHaveLength(128_256)
    expect(engine.eogTokens(m.id)).toEqual(TINY_BPE_EOG.map(n => v.specials[n]).sort((x, y) => x! - y!))
    // " ab" is one token (the pair "Ġa" + "b"), "abc" two ("ab" + "c": no such triple)
    const ids = engine.tokenize(m.id, ' ab')
    expect(ids).toHaveLength(1)
    expect(v.tokens[ids[0]!]).toBe('\u0120ab')
    expect(engine.tokenize(m.id, 'abc').map(t => v.tokens[t])).toEqual(['ab', 'c'])
    expect(engine.detokenize(m.id, engine.tokenize(m.id, 'hello, world'))).toBe('hello, world')
  })

  it('honest jobs at the gateway\'s defaults end on the model\'s end tokens, as `stop`, and all pass; O(k) numbers per position', async () => {
    const scores: LlmJobScore[] = []
    let stopped = 0
    for (let i = 0; i < 12; i++) {
      const s = { ...defaults, seed: 40 + i, maxTokens: 64 }
      const input = i % 3 === 2 ? [{ role: 'user' as const, content: `question ${i}` }] : `prompt ${i}:`
      const r = await engine.generate({ modelId: m.id, input, sampling: s })
      if (r.finishReason === 'stop') { stopped++; expect(r.tokens.length).toBeLessThan(64) } else expect(r.tokens).toHaveLength(64)
      const sc = await scoreLlmJob(engine, { modelId: m.id, input, sampling: s, output: r })
      expect(sc.truncated).toBe(false)
      // an end drawn by the model has a real end p-value (A · q, capped at 1), above α
      expect(sc.endP).toBeGreaterThan(defaultLlmCheckOptions.alpha)
      scores.push(sc)
      if (i === 0) {
        const c = await engine.compactDistributions(m.id, input, r.tokens, { top: defaultLlmCheckOptions.compactTop })
        for (const d of c.distributions) expect(d.tokens.length + d.extraTokens.length).toBeLessThanOrEqual(defaultLlmCheckOptions.compactTop + 1 + c.eogTokens.length)
      }
    }
    expect(stopped).toBeGreaterThan(0)
    expect(scores.filter(x => x.fail)).toEqual([])
    const w = windowTest(scores)
    // the end statistic is there (every end token's probability known) and inside its bound
    expect(w.end).not.toBeNull()
    expect(w.fail).toBe(false)
  })

  it('with node-llama-cpp\'s internals unavailable, the public path reads O(k) numbers per position and scores every job as the fast path does', async () => {
    const pub = createLlamaEngine({ gpu: 'cpu', threads: 1, parallel: 1, maxQueue: 8, nativeTeacherForcing: false })
    try {
      await pub.load(m.path, { id: m.id, name: m.name })
      const top = defaultLlmCheckOptions.compactTop
      for (let i = 0; i < 4; i++) {
        const s = { ...defaults, seed: 70 + i, maxTokens: 40, ...(i % 2 === 1 ? { temperature: 0.7, topP: 0.9 } : {}) }
        const input = `fallback ${i}:`
        const r = await engine.generate({ modelId: m.id, input, sampling: s })
        const t = s.temperature !== 1 ? { temperature: s.temperature } : {}
        const f = (await engine.compactDistributions(m.id, input, r.tokens, { top, ...t })).distributions
        const p = (await pub.compactDistributions(m.id, input, r.tokens, { top, ...t })).distributions
        expect(p).toHaveLength(r.tokens.length + 1)
        expect(f).toHaveLength(p.length)
        for (let j = 0; j < p.length; j++) {
          const a = f[j]!
          const b = p[j]!
          expect(b.tokens.length).toBe(top)
          expect(b.extraTokens.length).toBeLessThanOrEqual(1 + TINY_BPE_EOG.length)
          expect([...b.tokens]).toEqual([...a.tokens])
          expect([...b.logits]).toEqual([...a.logits])
          expect([...b.extraTokens]).toEqual([...a.extraTokens])
          expect([...b.extraLogits]).toEqual([...a.extraLogits])
          // Σ exp(logit − max) over 128,256 floats, in float32 and in another order (a top-k of 0 in the public chain): ~1e-4 apart
          expect(Math.abs(b.lse - a.lse)).toBeLessThan(1e-3)
          if (s.temperature !== 1) expect(Math.abs(b.lseT! - a.lseT!)).toBeLessThan(1e-3)
        }
        const x = await scoreLlmJob(engine, { modelId: m.id, input, sampling: s, output: r })
        const y = await scoreLlmJob(pub, { modelId: m.id, input, sampling: s, output: r })
        expect(y.fail).toBe(x.fail)
        expect(y.tokens).toBe(x.tokens)
        expect(y.outsideSupport).toBe(x.outsideSupport)
        expect(Math.abs(y.pitSum - x.pitSum)).toBeLessThan(1e-3)
      }
    } finally {
      await pub.stop()
    }
  })
})
