// Quantized copies at the gateway's defaults (temperature 1, top-p 1, top-k 0): does a per-job
// log-likelihood statistic see them where the window's PIT does not? Per job, Σ log π(t) −
// Σ E_π[log π] under the claimed model (whole vocabulary listed), for jobs made by tiny-llama,
// its Q8_0 and its Q4_0 copy; the z a 20-job window would reach. Prints JSON.
//
//   npx tsc -p . && node bench/quantized-llr.mjs [jobs=150]
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createLlamaEngine, ensureTinyModels } from '../dist/inference/index.js'
import { scoreLlmJob } from '../dist/validation/index.js'
const dir = await mkdtemp(join(tmpdir(), 'heurist-bench-qllr-'))
const made = await ensureTinyModels(join(dir, 'models'), { names: ['tiny-llama', 'tiny-llama-q8', 'tiny-llama-q4'] })
const engine = createLlamaEngine({ gpu: 'cpu', threads: 1, parallel: 1, maxQueue: 8 })
for (const m of made) await engine.load(m.path, { id: m.id, name: m.name })
const a = made.find(m => m.name === 'tiny-llama')
const N = Number(process.argv[2] ?? 100)
const S = { temperature: 1, topP: 1, topK: 0, maxTokens: 32, stop: [] }
const out = {}
for (const src of ['tiny-llama', 'tiny-llama-q8', 'tiny-llama-q4']) {
  const m = made.find(x => x.name === src)
  const per = []
  let pit = 0, n = 0
  for (let i = 0; i < N; i++) {
    const input = `prompt number ${i}:`
    const sampling = { ...S, seed: 31000 + i }
    const r = await engine.generate({ modelId: m.id, input, sampling })
    const s = await scoreLlmJob(engine, { modelId: a.id, input, sampling, output: r }, { compactTop: 1000 })
    per.push((s.logLikelihood - s.expectedLogLikelihood)); pit += s.pitSum; n += s.tokens
  }
  const mean = per.reduce((x, y) => x + y, 0) / N
  const sd = Math.sqrt(per.reduce((x, y) => x + (y - mean) ** 2, 0) / (N - 1))
  out[src] = { jobs: N, tokens: n, llrPerJobMean: +mean.toFixed(3), llrPerJobSd: +sd.toFixed(3), zOver20Jobs: +(mean / (sd / Math.sqrt(20))).toFixed(2), pitD: +pit.toFixed(1) }
}
console.log(JSON.stringify(out))
await engine.stop()
await rm(dir, { recursive: true, force: true })
