// bench:llm — our LLM engine vs node-llama-cpp called directly, side by side in one process,
// on the built-in tiny model. Prints JSON: median tokens/s and time to first token for each,
// the ratios (engine / direct; goal >= 0.98 for tokens/s), and peak RSS.
// Run `npx tsc -p .` first. Env: BENCH_ROUNDS (default 15), BENCH_TOKENS (256), BENCH_THREADS (1),
// BENCH_GPU (cpu; auto or cuda on a GPU machine, as bench/gpu.sh runs it).
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir, loadavg } from 'node:os'
import { join } from 'node:path'
import { LlamaCompletion } from 'node-llama-cpp'
import { createLlamaEngine, ensureTinyModels, getLlamaRuntime } from '../dist/inference/index.js'

const rounds = Number(process.env.BENCH_ROUNDS ?? 15)
const maxTokens = Number(process.env.BENCH_TOKENS ?? 256)
const threads = Number(process.env.BENCH_THREADS ?? 1)
const gpu = process.env.BENCH_GPU ?? 'cpu'
const sampling = { seed: 7, temperature: 0.8, topP: 0.95, topK: 40, maxTokens, stop: [] }
const prompt = 'The quick brown fox jumps over the lazy dog. '.repeat(4)

const median = xs => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2 }

const dir = await mkdtemp(join(tmpdir(), 'heurist-bench-llm-'))
try {
  const [tiny] = await ensureTinyModels(join(dir, 'models'), { names: ['tiny-llama'] })

  // ours
  const engine = createLlamaEngine({ gpu, threads, parallel: 1, maxQueue: 0 })
  const info = await engine.load(tiny.path, { id: tiny.id, name: tiny.name })
  const ours = async () => {
    const r = await engine.generate({ modelId: info.id, input: prompt, sampling }, { onToken: () => {} })
    return { ttftMs: r.usage.ttftMs, tps: r.usage.tokensPerSecond, tokens: r.usage.outputTokens }
  }

  // direct: the same prebuilt binary and thread count, node-llama-cpp's own completion API
  const llama = await getLlamaRuntime({ gpu, threads })
  const model = await llama.loadModel({ modelPath: tiny.path })
  const context = await model.createContext({ contextSize: info.contextSize, sequences: 1, threads })
  const sequence = context.getSequence()
  const completion = new LlamaCompletion({ contextSequence: sequence })
  const direct = async () => {
    await sequence.clearHistory()
    const t0 = performance.now()
    let first = 0
    let last = 0
    let n = 0
    await completion.generateCompletion(prompt, {
      maxTokens, temperature: sampling.temperature, topK: sampling.topK, topP: sampling.topP, seed: sampling.seed,
      onToken: tokens => { last = performance.now(); if (first === 0) first = last; n += tokens.length }
    })
    return { ttftMs: first - t0, tps: n > 1 ? (n - 1) / ((last - first) / 1000) : 0, tokens: n }
  }

  await ours(); await direct() // warm-up
  const a = []; const b = []
  for (let i = 0; i < rounds; i++) {
    // alternate the order so that neither side always runs on a warmer cache
    if (i % 2 === 0) { a.push(await ours()); b.push(await direct()) } else { b.push(await direct()); a.push(await ours()) }
  }
  const engineTps = median(a.map(x => x.tps))
  const directTps = median(b.map(x => x.tps))
  const engineTtft = median(a.map(x => x.ttftMs))
  const directTtft = median(b.map(x => x.ttftMs))
  const round = x => Math.round(x * 1000) / 1000
  console.log(JSON.stringify({
    bench: 'llm',
    model: tiny.name,
    threads,
    gpu: llama.gpu === false ? 'cpu' : llama.gpu,
    rounds,
    maxTokens,
    tokensGenerated: { engine: a[0].tokens, direct: b[0].tokens },
    engine: { tokensPerSecond: round(engineTps), ttftMs: round(engineTtft) },
    direct: { tokensPerSecond: round(directTps), ttftMs: round(directTtft) },
    ratio: { tokensPerSecond: round(engineTps / directTps), ttft: round(engineTtft / directTtft) },
    // each round's engine/direct pair ran back to back: the median of those ratios resists load drift
    pairedRatioMedian: { tokensPerSecond: round(median(a.map((x, i) => x.tps / b[i].tps))), ttft: round(median(a.map((x, i) => x.ttftMs / b[i].ttftMs))) },
    loadAverage1m: round(loadavg()[0]),
    perRound: { engineTps: a.map(x => round(x.tps)), directTps: b.map(x => round(x.tps)) },
    peakRssBytes: process.resourceUsage().maxRSS * 1024
  }, null, 2))
  await engine.stop()
  await context.dispose()
  await model.dispose()
} finally {
  await rm(dir, { recursive: true, force: true })
}
