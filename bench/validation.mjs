// Validation benchmark: per cheat mode, the detection rate within 20 sampled jobs and how
// many sampled jobs it took (the quantized-* modes serve tiny-llama's Q8_0/Q4_0 copy; ignore-constraint is run on JSON-schema jobs); false positives on honest jobs; LLM validation time ÷ generation
// time for the same jobs, measured side by side. Real llama.cpp on the built-in tiny models
// (one thread) and the tiny-sd ONNX pipeline. Prints JSON.
//
//   npx tsc -p . && node bench/validation.mjs [--honest 1000] [--trials 200] [--pool 60] [--tokens 32] [--images 6] [--no-memory] [--modes truncate,wrong-model] [--honest128k 200] [--tokens128k 96]
//
// --modes runs only the LLM cheat modes named (a quick look at one check); the full run is the default.
//
// Two sampling profiles, each over its own honest jobs and cheat pools: the gateway's defaults
// (temperature 1, top-p 1, top-k 0) and top-k 40 / top-p 0.95 (temperature 0.8). Half the jobs
// carry stop strings. The last part runs bench/validation-memory.mjs --quick: validator peak
// memory for one 256-token job with top-k off on tiny-llama-128k (a 128,256-token vocabulary).
// `endsOnTinyLlama128k` runs honest and truncating jobs on that model, which ends by itself
// (tiny-llama almost never does): the end checks' false positives where they can happen; its
// honest jobs also give validation ÷ generation time on a 128,256-token vocabulary.
//
// Trials draw the sampled jobs at random (without replacement) from a pool of cheating jobs
// generated and scored once per mode, so many trials cost little; each trial decides after
// every sampled job as a validator does: the job fails alone (support, end, image), or the
// window test over the last 20 of the miner's sampled jobs fails.
import { spawnSync } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createLlamaEngine, ensureTinyModels, buildTinySd, createImageEngine, normalizeSchema } from '../dist/inference/index.js'
import { scoreLlmJob, windowTest, scoreImageJob, cheatingExecutor, transcriptOf, defaultLlmCheckOptions } from '../dist/validation/index.js'

const args = process.argv.slice(2)
const flag = (name, def) => { const i = args.indexOf(`--${name}`); return i >= 0 ? Number(args[i + 1]) : def }
const HONEST = flag('honest', 1000)
const TRIALS = flag('trials', 200)
const POOL = flag('pool', 60)
const TOKENS = flag('tokens', 32)
const IMAGES = flag('images', 6)
const BUDGET = 20
const HONEST128K = flag('honest128k', 200)
// longer jobs there, so more of them reach an end the model draws (about 1e-3 per position)
const TOKENS128K = flag('tokens128k', 96)
const LLM_MODES = ['wrong-model', 'high-temperature', 'random-tokens', 'truncate', 'quantized-q8', 'quantized-q4', 'ignore-constraint']
const modesArg = args.indexOf('--modes')
const MODES = modesArg >= 0 ? String(args[modesArg + 1]).split(',').filter(m => LLM_MODES.includes(m)) : LLM_MODES

let seed = 12345
const rnd = () => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed / 2 ** 31 }
/**
 * A cheater's pool of scored jobs, sampled TRIALS times in random order: how often a job failing
 * alone or the window test catches it within BUDGET jobs, and after how many.
 */
function detectionOf (pool) {
  const took = []
  let detected = 0
  for (let t = 0; t < TRIALS; t++) {
    const order = pool.map((s, i) => [rnd(), i]).sort((x, y) => x[0] - y[0]).map(([, i]) => pool[i])
    const seen = []
    for (let k = 0; k < Math.min(BUDGET, order.length); k++) {
      seen.push(order[k])
      if (order[k].fail || windowTest(seen.slice(-defaultLlmCheckOptions.window)).fail) { detected++; took.push(k + 1); break }
    }
  }
  return { detectionRate: detected / TRIALS, jobsToDetect: { median: median(took), max: took.length ? Math.max(...took) : null }, jobsFailingAlone: pool.filter(s => s.fail).length / pool.length }
}
const median = xs => { const s = [...xs].sort((a, b) => a - b); return s.length === 0 ? null : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2 }
const r3 = x => x === null ? null : Math.round(x * 1000) / 1000

const PROFILES = {
  gatewayDefaults: { temperature: 1, topP: 1, topK: 0 },
  topK40TopP095: { temperature: 0.8, topP: 0.95, topK: 40 }
}
let profile = PROFILES.gatewayDefaults
// stop strings on every other job: one of four characters ends most of those early (the model writes printable ASCII)
const llmJob = (modelId, i) => ({
  kind: 'llm',
  modelId,
  input: i % 5 === 4 ? [{ role: 'user', content: `question ${i}` }] : `prompt number ${i}:`,
  sampling: { seed: 1000 + i, maxTokens: TOKENS, stop: i % 2 === 1 ? ['%', '#', '@', '&'] : [], ...profile }
})
// ignore-constraint is judged on constrained jobs (a JSON schema; unconstrained ones it serves honestly)
const constraint = { type: 'json_schema', schema: normalizeSchema({ type: 'object', properties: { city: { type: 'string', enum: ['Paris', 'Rome', 'Oslo'] }, ok: { type: 'boolean' } }, required: ['city', 'ok'], additionalProperties: false }) }
const constrainedJob = (modelId, i) => ({ ...llmJob(modelId, i), input: [{ role: 'user', content: `answer ${i} in JSON` }], constraint })
const frame = job => ({ v: 1, type: 'request', jobId: '0x' + '00'.repeat(32), timeoutMs: 600_000, ...job })
const signal = new AbortController().signal

const dir = await mkdtemp(join(tmpdir(), 'heurist-bench-validation-'))
try {
  // tiny-llama's quantized copies (Q8_0, Q4_0) serve the quantized-* cheats
  const made = await ensureTinyModels(join(dir, 'models'), { names: ['tiny-llama', 'tiny-llama-b', 'tiny-llama-q8', 'tiny-llama-q4'] })
  const a = made.find(m => m.name === 'tiny-llama')
  const b = made.find(m => m.name === 'tiny-llama-b')
  const engine = createLlamaEngine({ gpu: 'cpu', threads: 1, parallel: 1, maxQueue: 8 })
  await engine.load(a.path, { id: a.id, name: a.name })
  await engine.load(b.path, { id: b.id, name: b.name })
  const models = engine.loaded()
  for (const q of made.filter(m => m.name.endsWith('-q8') || m.name.endsWith('-q4'))) await engine.load(q.path, { id: q.id, name: q.name })
  const honest = { models: () => models, async execute (job) { return { kind: 'llm', result: await engine.generate({ modelId: job.modelId, input: job.input, sampling: job.sampling, ...(job.constraint === undefined ? {} : { constraint: job.constraint }) }) } } }
  const score = async (job, out) => await scoreLlmJob(engine, { modelId: job.modelId, input: job.input, sampling: job.sampling, ...(job.constraint === undefined ? {} : { constraint: job.constraint }), output: out.result })

  const detection = {}
  const llm = {}
  for (const [name, p] of Object.entries(PROFILES)) {
    profile = p
    const det = {}
    // ---- honest jobs: false positives and the time ratio, side by side per job ----
    const honestScores = []
    const ratios = []
    let genMs = 0
    let valMs = 0
    let windowFails = 0
    let endedOnStop = 0
    const windowDs = []
    let windowThreshold = null
    for (let i = 0; i < HONEST; i++) {
      const job = llmJob(a.id, 100_000 + i)
      const t0 = performance.now()
      const out = await honest.execute(frame(job))
      const t1 = performance.now()
      const s = await score(job, out)
      const t2 = performance.now()
      honestScores.push(s)
      if (job.sampling.stop.length > 0 && out.result.finishReason === 'stop') endedOnStop++
      if (i >= 5) { genMs += t1 - t0; valMs += t2 - t1; ratios.push((t2 - t1) / (t1 - t0)) }
      const w = windowTest(honestScores.slice(-defaultLlmCheckOptions.window))
      if (w.fail) windowFails++
      if (honestScores.length >= defaultLlmCheckOptions.window) { windowDs.push(w.d); windowThreshold = w.threshold }
    }
    const jobFails = honestScores.filter(s => s.fail).length
  
    // ---- cheating LLM miners ----
    for (const mode of MODES) {
      const ex = cheatingExecutor(mode, { llm: engine, images: new Map(), models, honest })
      const pool = []
      for (let i = 0; i < POOL; i++) {
        const job = mode === 'ignore-constraint' ? constrainedJob(a.id, 200_000 + i) : llmJob(a.id, 200_000 + i)
        pool.push(await score(job, await ex.execute(frame(job), { signal })))
      }
      det[mode] = detectionOf(pool)
    }
    llm[name] = {
      sampling: p,
      detection: det,
      honest: { jobs: HONEST, withStopStrings: Math.floor(HONEST / 2), endedOnStopString: endedOnStop, jobsFailed: jobFails, windowTestsFailed: windowFails, falsePositiveRate: (jobFails + windowFails) / HONEST, windowD: { median: r3(median(windowDs)), max: r3(Math.max(...windowDs)), threshold: r3(windowThreshold) } },
      time: { llmValidationOverGeneration: { medianPerJob: r3(median(ratios)), total: r3(valMs / genMs) }, generationMsPerJob: r3(genMs / (HONEST - 5)), validationMsPerJob: r3(valMs / (HONEST - 5)) }
    }
  }
  await engine.stop()

  // ---- where jobs end, on a model that ends by itself: tiny-llama-128k (four end tokens) ----
  // tiny-llama almost never draws an end token, so its honest jobs never test the end p-value;
  // this model's do. Honest jobs: false positives of the end checks; truncate: detection.
  const ends128k = {}
  if (HONEST128K > 0) {
    const [big] = await ensureTinyModels(join(dir, 'models'), { names: ['tiny-llama-128k'] })
    const e128 = createLlamaEngine({ gpu: 'cpu', threads: 1, parallel: 1, maxQueue: 8 })
    await e128.load(big.path, { id: big.id, name: big.name })
    const models128 = e128.loaded()
    const honest128 = { models: () => models128, async execute (job) { return { kind: 'llm', result: await e128.generate({ modelId: job.modelId, input: job.input, sampling: job.sampling }) } } }
    const long = job => ({ ...job, sampling: { ...job.sampling, maxTokens: TOKENS128K } })
    const score128 = async (job, out) => await scoreLlmJob(e128, { modelId: job.modelId, input: job.input, sampling: job.sampling, output: out.result })
    for (const [name, p] of Object.entries(PROFILES)) {
      profile = p
      const scores = []
      let onEnd = 0
      let windowFails = 0
      // validation ÷ generation per job, side by side as on tiny-llama (the first 5 jobs warm up)
      const ratios = []
      const genMs = []
      const valMs = []
      for (let i = 0; i < HONEST128K; i++) {
        const job = long(llmJob(big.id, 300_000 + i))
        const t0 = performance.now()
        const out = await honest128.execute(job)
        const t1 = performance.now()
        const s = await score128(job, out)
        const t2 = performance.now()
        if (i >= 5) { ratios.push((t2 - t1) / (t1 - t0)); genMs.push(t1 - t0); valMs.push(t2 - t1) }
        scores.push(s)
        if (out.result.finishReason === 'stop' && s.endP !== undefined && s.endP < 1) onEnd++
        if (windowTest(scores.slice(-defaultLlmCheckOptions.window)).fail) windowFails++
      }
      const ps = scores.map(s => s.endP).filter(x => x !== undefined && x < 1)
      const ex = cheatingExecutor('truncate', { llm: e128, images: new Map(), models: models128, honest: honest128 })
      const pool = []
      for (let i = 0; i < POOL; i++) {
        const job = long(llmJob(big.id, 400_000 + i))
        pool.push(await score128(job, await ex.execute(frame(job), { signal })))
      }
      ends128k[name] = {
        maxTokens: TOKENS128K,
        honest: { jobs: HONEST128K, endedOnEndToken: onEnd, minEndP: ps.length ? Number(Math.min(...ps).toExponential(3)) : null, medianEndP: ps.length ? Number(median(ps).toExponential(3)) : null, jobsFailed: scores.filter(s => s.fail).length, windowTestsFailed: windowFails },
        truncate: detectionOf(pool),
        time: { llmValidationOverGeneration: { medianPerJob: r3(median(ratios)) }, generationMsMedian: r3(median(genMs)), validationMsMedian: r3(median(valMs)) }
      }
    }
    await e128.stop()
  }

  // ---- cheating image miners (re-run with the same seed and settings) ----
  const imageEngine = createImageEngine({ executionProvider: 'cpu', threads: 1, optimizationLevel: 'basic' })
  const model = await imageEngine.load(await buildTinySd(join(dir, 'tiny-sd')))
  const honestImages = { models: () => [model.info], async execute (job) { return { kind: 'image', result: await model.generate({ modelId: job.modelId, ...job.image }) } } }
  const rerun = async (request) => await model.generate(request)
  const imageJob = i => ({ kind: 'image', modelId: model.info.id, image: { prompt: `a cat number ${i}`, negativePrompt: '', width: 32, height: 32, steps: 4, guidanceScale: 7.5, seed: i, scheduler: i % 2 ? 'ddim' : 'euler' } })
  let imageHonestFails = 0
  for (let i = 0; i < IMAGES; i++) {
    const out = await honestImages.execute(frame(imageJob(i)))
    if ((await scoreImageJob(rerun, transcriptOf('0x' + '00'.repeat(32), imageJob(i), out))).fail) imageHonestFails++
  }
  for (const mode of ['wrong-seed', 'blank']) {
    const ex = cheatingExecutor(mode, { llm: null, images: new Map([[model.info.id, model]]), models: [model.info], honest: honestImages })
    let failed = 0
    const ssims = []
    for (let i = 0; i < IMAGES; i++) {
      const out = await ex.execute(frame(imageJob(i)), { signal })
      const s = await scoreImageJob(rerun, transcriptOf('0x' + '00'.repeat(32), imageJob(i), out))
      if (s.fail) failed++
      ssims.push(s.ssim)
    }
    // every job fails on its own, so the first sampled job detects the miner
    detection[mode] = { detectionRate: failed / IMAGES, jobsToDetect: { median: failed === IMAGES ? 1 : null, max: failed === IMAGES ? 1 : null }, jobsFailingAlone: failed / IMAGES, medianSsim: r3(median(ssims)) }
  }
  await imageEngine.dispose()

  // validator memory on a 128,256-token vocabulary, in child processes (peak RSS is per process)
  let memory128k = null
  if (!args.includes('--no-memory')) {
    const c = spawnSync(process.execPath, [fileURLToPath(new URL('./validation-memory.mjs', import.meta.url)), '--quick'], { encoding: 'utf8', timeout: 900_000 })
    memory128k = c.status === 0 ? JSON.parse(c.stdout) : { error: c.stderr.slice(-500) }
  }

  const allRatios = Object.values(llm).map(x => x.time.llmValidationOverGeneration.medianPerJob)
  console.log(JSON.stringify({
    bench: 'validation',
    config: { honestJobsPerProfile: HONEST, trialsPerMode: TRIALS, poolPerMode: POOL, maxTokens: TOKENS, images: IMAGES, budget: BUDGET, window: defaultLlmCheckOptions.window, alpha: defaultLlmCheckOptions.alpha, compactTop: defaultLlmCheckOptions.compactTop, threads: 1 },
    llm,
    endsOnTinyLlama128k: ends128k,
    images: { detection, honestJobs: IMAGES, honestJobsFailed: imageHonestFails },
    memory128k: memory128k === null ? null : { outputTokens: memory128k.outputTokens, runs: memory128k.runs?.map(r => ({ path: r.mode, peakRssGrowthMB: r.peakRssGrowthMB, validationMs: r.validationMs, generationMs: r.generationMs })), error: memory128k.error },
    goals: {
      detectedWithin20In99pct: Object.fromEntries(Object.entries(llm).map(([k, x]) => [k, Object.fromEntries(Object.entries(x.detection).map(([m, d]) => [m, d.detectionRate >= 0.99]))])),
      zeroFalsePositivesIn1000: HONEST >= 1000 && Object.values(llm).every(x => x.honest.jobsFailed + x.honest.windowTestsFailed === 0),
      validationAtMostQuarterOfGeneration: allRatios.every(r => r <= 0.25)
    }
  }, null, 2))
} finally {
  await rm(dir, { recursive: true, force: true })
}
