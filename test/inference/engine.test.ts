import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { createLlamaEngine, ensureTinyModels, probeHardware, type CachedModel, type LlamaEngine, type SamplingParams } from '../../src/inference/index.js'
import { isHeuristError } from '../../src/core/errors.js'
import { tempDir } from '../helpers.js'

// Real llama.cpp (prebuilt CPU binary) on the generated tiny models; one thread, as the suite shares 2 cores.
const base: SamplingParams = { seed: 7, temperature: 0.8, topP: 0.95, topK: 40, maxTokens: 24, stop: [] }

describe('llama engine on the tiny models', () => {
  let dir: string
  let cleanup: () => Promise<void>
  let a: CachedModel
  let b: CachedModel
  let engine: LlamaEngine

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir())
    const made = await ensureTinyModels(join(dir, 'models'), { names: ['tiny-llama', 'tiny-llama-b'] })
    a = made.find(m => m.name === 'tiny-llama')!
    b = made.find(m => m.name === 'tiny-llama-b')!
    engine = createLlamaEngine({ gpu: 'cpu', threads: 1, parallel: 2, maxQueue: 1 })
    await engine.load(a.path, { id: a.id, name: a.name })
    await engine.load(b.path, { id: b.id, name: b.name })
  })
  afterAll(async () => {
    await engine?.stop()
    await cleanup()
  })

  it('gives the same text for the same seed, and other text for another seed or another model', async () => {
    const r1 = await engine.generate({ modelId: a.id, input: 'hello', sampling: base })
    const r2 = await engine.generate({ modelId: a.id, input: 'hello', sampling: base })
    const r3 = await engine.generate({ modelId: a.id, input: 'hello', sampling: { ...base, seed: 8 } })
    const r4 = await engine.generate({ modelId: b.id, input: 'hello', sampling: base })
    expect(r1.text.length).toBeGreaterThan(0)
    expect(r2.text).toBe(r1.text)
    expect(r2.tokens).toEqual(r1.tokens)
    expect(r3.text).not.toBe(r1.text)
    expect(r4.text).not.toBe(r1.text)
    expect(r1.finishReason).toBe('length')
    expect(r1.usage.outputTokens).toBe(24)
    expect(r1.usage.promptTokens).toBe(6) // BOS + 5 bytes
    expect(r1.usage.ttftMs).toBeGreaterThan(0)
    expect(r1.usage.tokensPerSecond).toBeGreaterThan(0)
    // output detokenizes to the text and tokenizes back to the same tokens (validators rely on it)
    expect(engine.detokenize(a.id, r1.tokens)).toBe(r1.text)
    expect(engine.tokenize(a.id, r1.text)).toEqual(r1.tokens)
  })

  it('streams the text through onToken', async () => {
    let streamed = ''
    const r = await engine.generate({ modelId: a.id, input: 'stream', sampling: base }, { onToken: t => { streamed += t } })
    expect(streamed).toBe(r.text)
  })

  it('formats chat messages with the model\'s template', async () => {
    const r = await engine.generate({ modelId: a.id, input: [{ role: 'system', content: 'be brief' }, { role: 'user', content: 'hi' }], sampling: base })
    const expected = engine.tokenize(a.id, '<|im_start|>system\nbe brief<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n', true)
    expect(r.usage.promptTokens).toBeGreaterThanOrEqual(expected.length)
    expect(engine.promptTokens(a.id, [{ role: 'user', content: 'hi' }]).tokens).toContain(engine.tokenize(a.id, '<|im_start|>', true)[0])
    expect(r.usage.outputTokens).toBe(24)
  })

  it('cuts at a stop string and never emits it', async () => {
    const full = await engine.generate({ modelId: a.id, input: 'hello', sampling: { ...base, maxTokens: 40 } })
    const stop = full.text.slice(10, 12)
    const first = full.text.indexOf(stop)
    let streamed = ''
    const r = await engine.generate({ modelId: a.id, input: 'hello', sampling: { ...base, maxTokens: 40, stop: [stop] } }, { onToken: t => { streamed += t } })
    expect(r.finishReason).toBe('stop')
    expect(r.text).toBe(full.text.slice(0, first))
    expect(streamed).toBe(r.text)
  })

  it('stops when cancelled and reports fewer tokens than asked', async () => {
    const ac = new AbortController()
    let n = 0
    const r = await engine.generate({ modelId: a.id, input: 'hello', sampling: { ...base, maxTokens: 500 } }, {
      signal: ac.signal,
      onToken: () => { if (++n === 5) ac.abort() }
    })
    expect(r.finishReason).toBe('abort')
    expect(r.usage.outputTokens).toBeLessThan(500)
    expect(r.usage.outputTokens).toBeGreaterThanOrEqual(5)
    const pre = await engine.generate({ modelId: a.id, input: 'hello', sampling: base }, { signal: AbortSignal.abort() })
    expect(pre).toMatchObject({ finishReason: 'abort', tokens: [] })
  })

  it('runs two jobs at once on one model, each as if alone', async () => {
    const s1 = { ...base, seed: 11, maxTokens: 40 }
    const s2 = { ...base, seed: 12, maxTokens: 40 }
    const alone1 = await engine.generate({ modelId: a.id, input: 'one', sampling: s1 })
    const alone2 = await engine.generate({ modelId: a.id, input: 'two', sampling: s2 })
    let inFlight = 0
    let maxInFlight = 0
    const run = async (input: string, sampling: SamplingParams): Promise<string> => {
      let started = false
      const r = await engine.generate({ modelId: a.id, input, sampling }, {
        onToken: () => { if (!started) { started = true; maxInFlight = Math.max(maxInFlight, ++inFlight) } }
      })
      inFlight--
      return r.text
    }
    const [t1, t2] = await Promise.all([run('one', s1), run('two', s2)])
    expect(t1).toBe(alone1.text)
    expect(t2).toBe(alone2.text)
    expect(maxInFlight).toBe(2)
  })

  it('queues up to maxQueue jobs and answers INFERENCE_BUSY beyond', async () => {
    const s = { ...base, maxTokens: 30 }
    const jobs = [0, 1, 2, 3].map(async i => await engine.generate({ modelId: a.id, input: `job ${i}`, sampling: s }).then(r => r, (e: unknown) => e))
    const results = await Promise.all(jobs)
    // parallel 2 + maxQueue 1: three complete, the fourth is busy
    const busy = results.filter(r => isHeuristError(r, 'INFERENCE_BUSY'))
    const done = results.filter(r => !(r instanceof Error))
    expect(busy).toHaveLength(1)
    expect((busy[0] as Error).message).toMatch(/busy: 2 jobs running and 1 waiting/)
    expect(done).toHaveLength(3)
    expect(engine.queueDepth(a.id)).toBe(0)
  })

  it('rejects a prompt longer than the context (policy: reject, never truncate)', async () => {
    const long = 'x'.repeat(2000)
    const e = await engine.generate({ modelId: a.id, input: long, sampling: base }).then(() => null, (err: unknown) => err)
    expect(isHeuristError(e, 'INFERENCE_PROMPT_TOO_LONG')).toBe(true)
    expect((e as Error).message).toMatch(/2001 tokens.*holds 1024.*policy: reject/)
    // a prompt that fits but leaves less room than max_tokens is clamped to the room left
    const r = await engine.generate({ modelId: a.id, input: 'x'.repeat(1010), sampling: { ...base, maxTokens: 100 } })
    expect(r).toMatchObject({ finishReason: 'length' })
    expect(r.usage.outputTokens).toBe(1024 - 1011)
  })

  it('rejects bad sampling params before they reach native code', async () => {
    for (const bad of [{ temperature: -1 }, { topP: 0 }, { maxTokens: 1.5 }, { seed: -3 }, { stop: [''] }]) {
      const e = await engine.generate({ modelId: a.id, input: 'x', sampling: { ...base, ...bad } }).then(() => null, (err: unknown) => err)
      expect(isHeuristError(e, 'INFERENCE_BAD_SAMPLING'), JSON.stringify(bad)).toBe(true)
    }
  })

  it('teacher-forces output tokens: the claimed model gives them high probability, another model lower', async () => {
    const r = await engine.generate({ modelId: a.id, input: 'hello', sampling: base })
    const pa = await engine.tokenProbabilities(a.id, 'hello', r.tokens, base)
    const pb = await engine.tokenProbabilities(b.id, 'hello', r.tokens, base)
    expect(pa).toHaveLength(r.tokens.length)
    for (const p of pa) expect(p).toBeGreaterThan(0) // every sampled token is inside the support
    const ll = (ps: number[]): number => ps.reduce((s, p) => s + Math.log(Math.max(p, 1e-12)), 0)
    expect(ll(pa)).toBeGreaterThan(ll(pb))
    // greedy: only the argmax has probability, so the greedy output gets exactly 1 everywhere
    const greedy = { ...base, temperature: 0 }
    const g = await engine.generate({ modelId: a.id, input: 'hello', sampling: greedy })
    expect(await engine.tokenProbabilities(a.id, 'hello', g.tokens, greedy)).toEqual(g.tokens.map(() => 1))
  })

  it('refuses a truncated GGUF or a wrong magic with a clear error, and an unknown model id', async () => {
    const bytes = await readFile(a.path)
    const trunc = join(dir, 'trunc.gguf')
    await writeFile(trunc, bytes.subarray(0, bytes.length >> 1))
    const e1 = await engine.load(trunc).then(() => null, (err: unknown) => err)
    expect(isHeuristError(e1, 'INFERENCE_BAD_GGUF')).toBe(true)
    const magic = join(dir, 'magic.gguf')
    await writeFile(magic, Buffer.concat([Buffer.from('NOPE'), bytes.subarray(4)]))
    const e2 = await engine.load(magic).then(() => null, (err: unknown) => err)
    expect(isHeuristError(e2, 'INFERENCE_BAD_GGUF')).toBe(true)
    const e3 = await engine.generate({ modelId: 'f'.repeat(64), input: 'x', sampling: base }).then(() => null, (err: unknown) => err)
    expect(isHeuristError(e3, 'INFERENCE_MODEL_NOT_LOADED')).toBe(true)
  })
})

describe('hardware probe', () => {
  it('reports the backend, RAM and cores; an explicit backend either runs or is a clear INFERENCE_NO_BINARY', async () => {
    const hw = await probeHardware({ gpu: 'cpu', threads: 0 })
    expect(hw).toMatchObject({ gpu: 'cpu', gpuNames: [], vramTotalBytes: 0 })
    expect(hw.cpuCores).toBeGreaterThan(0)
    expect(hw.threads).toBe(hw.cpuCores)
    expect(hw.ramTotalBytes).toBeGreaterThan(hw.ramFreeBytes)
    for (const gpu of ['cuda', 'metal'] as const) {
      const r = await probeHardware({ gpu }).then(h => h, (e: unknown) => e)
      if (isHeuristError(r)) expect(r.code).toBe('INFERENCE_NO_BINARY')
      else expect((r as { gpu: string }).gpu).toBe(gpu)
    }
  })
})
