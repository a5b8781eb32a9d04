// Validator peak memory on tiny-llama-128k (GPT-2-style BPE, 128,256 tokens): one job of
// `--tokens` output tokens (default 256) with top-k off, validated through the compact path
// (O(k) per position), through the same compact path on node-llama-cpp's public API only
// (`fallback`: what runs when its internals are missing; O(k) per position too) and, for
// comparison, through whole distributions (O(vocabulary) per position). Each measurement runs
// in its own process (peak RSS is per process). Prints JSON.
//
//   npx tsc -p . && node bench/validation-memory.mjs [--tokens 256] [--quick]
import { spawnSync } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createLlamaEngine, ensureTinyModels } from '../dist/inference/index.js'
import { scoreLlmJob } from '../dist/validation/index.js'

const args = process.argv.slice(2)
const flag = (name, def) => { const i = args.indexOf(`--${name}`); return i >= 0 ? args[i + 1] : def }
const TOKENS = Number(flag('tokens', 256))
// --quick: temperature 1 / top-p 1 only (the gateway's defaults), as bench:validation runs it
const QUICK = args.includes('--quick')

async function measure (dir, mode, temperature, topP) {
  const [m] = await ensureTinyModels(join(dir, 'models'), { names: ['tiny-llama-128k'] })
  const engine = createLlamaEngine({ gpu: 'cpu', threads: 1, parallel: 1, maxQueue: 8, nativeTeacherForcing: mode !== 'fallback' })
  await engine.load(m.path, { id: m.id, name: m.name })
  let r, sampling, input
  // the first seed whose job runs to its length (the model also ends by itself)
  for (let i = 0; i < 64; i++) {
    input = `prompt ${i}`
    sampling = { seed: i, temperature, topP, topK: 0, maxTokens: TOKENS, stop: [] }
    r = await engine.generate({ modelId: m.id, input, sampling })
    if (r.finishReason === 'length') break
  }
  // without compactDistributions the check reads whole distributions, as before
  const model = mode === 'full' ? { tokenDistributions: engine.tokenDistributions.bind(engine), promptTokens: engine.promptTokens.bind(engine), detokenize: engine.detokenize.bind(engine), loaded: engine.loaded.bind(engine) } : engine
  const before = process.resourceUsage().maxRSS
  const t0 = performance.now()
  const s = await scoreLlmJob(model, { modelId: m.id, input, sampling, output: r })
  const ms = performance.now() - t0
  const after = process.resourceUsage().maxRSS
  await engine.stop()
  return { mode, sampling: { temperature, topP, topK: 0 }, tokens: r.tokens.length, generationMs: Math.round(r.usage.totalMs), validationMs: Math.round(ms), peakRssBeforeMB: Math.round(before / 1024), peakRssGrowthMB: Math.round((after - before) / 1024), jobFailed: s.fail }
}

if (flag('child', null) !== null) {
  const [mode, temperature, topP, dir] = flag('child', '').split(',')
  console.log(JSON.stringify(await measure(dir, mode, Number(temperature), Number(topP))))
} else {
  const dir = await mkdtemp(join(tmpdir(), 'heurist-bench-vmem-'))
  try {
    await ensureTinyModels(join(dir, 'models'), { names: ['tiny-llama-128k'] })
    const runs = []
    for (const [t, p] of QUICK ? [[1, 1]] : [[1, 1], [0.7, 0.9]]) {
      for (const mode of ['compact', 'fallback', 'full']) {
        const c = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--tokens', String(TOKENS), '--child', `${mode},${t},${p},${dir}`], { encoding: 'utf8', timeout: 600_000 })
        if (c.status !== 0) throw new Error(`child failed: ${c.stderr}`)
        runs.push(JSON.parse(c.stdout.trim().split('\n').pop()))
      }
    }
    const growth = (mode, t) => runs.find(r => r.mode === mode && r.sampling.temperature === t)?.peakRssGrowthMB
    console.log(JSON.stringify({
      bench: 'validation-memory',
      model: 'tiny-llama-128k (GPT-2-style BPE, 128,256 tokens, 4 end tokens)',
      outputTokens: TOKENS,
      runs,
      ratios: {
        fullOverCompactPeakGrowthT1: growth('compact', 1) > 0 ? Math.round(growth('full', 1) / growth('compact', 1) * 10) / 10 : null,
        fullOverFallbackPeakGrowthT1: growth('fallback', 1) > 0 ? Math.round(growth('full', 1) / growth('fallback', 1) * 10) / 10 : null
      }
    }, null, 2))
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}
