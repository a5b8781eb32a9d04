// Quantized-model cheat, measured longer than bench:validation's 20-job budget: per sampling
// setting (the bench's mixed top-k/top-p variants, and the gateway's defaults: temperature 1,
// top-p 1, top-k 0), N jobs each from an honest miner and from miners serving tiny-llama's
// Q8_0 and Q4_0 copies, all scored against tiny-llama. Reports the jobs that fail alone (a
// token outside the sampler's support) and the window test over all N jobs at once (the
// validator's own window is 20 jobs; this is the most a longer window could see). Real
// llama.cpp on the built-in tiny models, one thread. Prints JSON.
//
//   npx tsc -p . && node bench/quantized.mjs [--jobs 300] [--tokens 32]
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createLlamaEngine, ensureTinyModels } from '../dist/inference/index.js'
import { scoreLlmJob, windowTest, cheatingExecutor, defaultLlmCheckOptions } from '../dist/validation/index.js'

const args = process.argv.slice(2)
const flag = (name, def) => { const i = args.indexOf(`--${name}`); return i >= 0 ? Number(args[i + 1]) : def }
const JOBS = flag('jobs', 300)
const TOKENS = flag('tokens', 32)
const settings = {
  mixed: [{ temperature: 0.8, topK: 40, topP: 0.95 }, { temperature: 1.0, topK: 0, topP: 0.9 }, { temperature: 0.6, topK: 20, topP: 1 }, { temperature: 1.2, topK: 60, topP: 0.98 }],
  gatewayDefaults: [{ temperature: 1, topK: 0, topP: 1 }]
}
const r2 = x => Math.round(x * 100) / 100

const dir = await mkdtemp(join(tmpdir(), 'heurist-bench-quantized-'))
try {
  const made = await ensureTinyModels(join(dir, 'models'), { names: ['tiny-llama', 'tiny-llama-q8', 'tiny-llama-q4'] })
  const engine = createLlamaEngine({ gpu: 'cpu', threads: 1, parallel: 1, maxQueue: 8 })
  for (const m of made) await engine.load(m.path, { id: m.id, name: m.name })
  const a = made.find(m => m.name === 'tiny-llama')
  const models = engine.loaded().filter(m => m.id === a.id)
  const honest = { models: () => models, async execute (job) { return { kind: 'llm', result: await engine.generate({ modelId: job.modelId, input: job.input, sampling: job.sampling }) } } }
  const signal = new AbortController().signal
  const results = {}
  for (const [name, variants] of Object.entries(settings)) {
    results[name] = {}
    for (const mode of ['honest', 'quantized-q8', 'quantized-q4']) {
      const ex = mode === 'honest' ? honest : cheatingExecutor(mode, { llm: engine, images: new Map(), models, honest })
      const scores = []
      for (let i = 0; i < JOBS; i++) {
        const job = { kind: 'llm', modelId: a.id, input: i % 5 === 4 ? [{ role: 'user', content: `question ${i}` }] : `prompt number ${i}:`, sampling: { seed: 7000 + i, maxTokens: TOKENS, stop: [], ...variants[i % variants.length] } }
        const out = await ex.execute({ v: 1, type: 'request', jobId: '0x' + '00'.repeat(32), timeoutMs: 600_000, ...job }, { signal })
        scores.push(await scoreLlmJob(engine, { modelId: a.id, input: job.input, sampling: job.sampling, output: out.result }))
      }
      const w = windowTest(scores)
      let windowsFailed = 0
      for (let k = 0; k + defaultLlmCheckOptions.window <= scores.length; k++) if (windowTest(scores.slice(k, k + defaultLlmCheckOptions.window)).fail) windowsFailed++
      results[name][mode] = {
        jobsFailingAlone: scores.filter(s => s.fail).length,
        windowsOf20Failed: windowsFailed,
        windowOverAllJobs: { tokens: w.n, d: r2(w.d), threshold: r2(w.threshold), fail: w.fail }
      }
    }
  }
  await engine.stop()
  console.log(JSON.stringify({ bench: 'quantized', config: { jobs: JOBS, maxTokens: TOKENS, alpha: defaultLlmCheckOptions.alpha, window: defaultLlmCheckOptions.window, threads: 1 }, results }, null, 2))
} finally {
  await rm(dir, { recursive: true, force: true })
}
