// Structured-output benchmark (issue 18): on the same model (tiny-llama, one thread, real
// llama.cpp), side by side per run:
// - generation tokens/s (decode, median of 8 jobs per run) under a grammar (a JSON schema; a
//   tool-call envelope) ÷ without one, per run;
// - validation time ÷ generation time for constrained jobs (teacher forcing under the grammar)
//   beside the same ratio for unconstrained jobs;
// - honest constrained jobs failed (must be 0) and ignore-constraint jobs caught alone.
// Medians over the runs. Prints JSON.
//
// - embeddings (the built-in tiny-embed): validation (re-embedding) ÷ the miner's embedding,
//   both on one thread; the cosine an honest miner gets from a validator on
//   another thread count (the drift the 0.99 threshold must absorb) beside what the cheats get
//   (another model of the same dimension, unrelated text, random vectors): the calibration; and
//   a near-duplicate text, which no cosine check can tell apart.
//
//   npx tsc -p . && node bench/structured.mjs [--runs 7] [--jobs 40] [--tokens 160]
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createLlamaEngine, ensureTinyModels, normalizeSchema } from '../dist/inference/index.js'
import { scoreLlmJob, cheatingExecutor, cosine, scoreEmbeddings, EMBEDDING_COSINE_THRESHOLD } from '../dist/validation/index.js'

const args = process.argv.slice(2)
const flag = (name, def) => { const i = args.indexOf(`--${name}`); return i >= 0 ? Number(args[i + 1]) : def }
const RUNS = flag('runs', 7)
const JOBS = flag('jobs', 40)
const TOKENS = flag('tokens', 160)
const median = xs => { const s = [...xs].sort((a, b) => a - b); return s.length === 0 ? null : s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2 }
const r3 = x => x === null ? null : Math.round(x * 1000) / 1000

const schemas = {
  object: normalizeSchema({ type: 'object', properties: { city: { type: 'string', enum: ['Paris', 'Rome', 'Oslo'] }, note: { type: 'string', maxLength: 40 }, tags: { type: 'array', items: { type: 'string', enum: ['a', 'b', 'c'] }, maxItems: 6 } }, required: ['city', 'note', 'tags'], additionalProperties: false }),
  toolCall: normalizeSchema({ type: 'object', properties: { tool_calls: { type: 'array', minItems: 1, maxItems: 8, items: { type: 'object', properties: { name: { const: 'get_weather' }, arguments: { type: 'object', properties: { city: { type: 'string', maxLength: 24 } }, required: ['city'], additionalProperties: false } }, required: ['name', 'arguments'], additionalProperties: false } } }, required: ['tool_calls'], additionalProperties: false })
}
const sampling = (i) => ({ seed: 7000 + i, temperature: 0.8, topP: 0.95, topK: 40, maxTokens: TOKENS, stop: [] })
const frame = job => ({ v: 1, type: 'request', jobId: '0x' + '00'.repeat(32), timeoutMs: 600_000, ...job })
const signal = new AbortController().signal

const dir = await mkdtemp(join(tmpdir(), 'heurist-bench-structured-'))
try {
  const made = await ensureTinyModels(join(dir, 'models'), { names: ['tiny-llama', 'tiny-embed'] })
  const a = made.find(m => m.name === 'tiny-llama')
  const emb = made.find(m => m.name === 'tiny-embed')
  const engine = createLlamaEngine({ gpu: 'cpu', threads: 1, parallel: 1, maxQueue: 8 })
  await engine.load(a.path, { id: a.id, name: a.name })
  const job = (i, constraint) => ({ kind: 'llm', modelId: a.id, input: [{ role: 'user', content: `answer ${i}` }], sampling: sampling(i), ...(constraint === undefined ? {} : { constraint }) })
  const gen = async j => await engine.generate({ modelId: j.modelId, input: j.input, sampling: j.sampling, ...(j.constraint === undefined ? {} : { constraint: j.constraint }) })
  const score = async (j, out) => await scoreLlmJob(engine, { modelId: j.modelId, input: j.input, sampling: j.sampling, ...(j.constraint === undefined ? {} : { constraint: j.constraint }), output: out })
  // warm up (grammar build, caches)
  for (const c of [undefined, { type: 'json_schema', schema: schemas.object }, { type: 'json_schema', schema: schemas.toolCall }]) await score(job(0, c), await gen(job(0, c)))

  // ---- tokens/s: constrained ÷ unconstrained, side by side per run (same prompts and seeds) ----
  const speed = { plain: [], object: [], toolCall: [] }
  const ratios = { object: [], toolCall: [] }
  for (let r = 0; r < RUNS; r++) {
    const perRun = {}
    for (const [name, c] of [['plain', undefined], ['object', { type: 'json_schema', schema: schemas.object }], ['toolCall', { type: 'json_schema', schema: schemas.toolCall }]]) {
      // decode speed (tokens after the first over their time, the engine's measure): prompt
      // evaluation, the same for both, is left out, so outputs of different lengths compare
      const speeds = []
      for (let i = 0; i < 8; i++) speeds.push((await gen(job(r * 100 + i, c))).usage.tokensPerSecond)
      perRun[name] = median(speeds)
      speed[name].push(perRun[name])
    }
    ratios.object.push(perRun.object / perRun.plain)
    ratios.toolCall.push(perRun.toolCall / perRun.plain)
  }

  // ---- validation ÷ generation, honest false positives, and the cheat, per job ----
  const vg = { plain: [], constrained: [] }
  let honestFailed = 0
  let constrainedTokens = 0
  let stopped = 0
  let unparsable = 0
  for (let i = 0; i < JOBS; i++) {
    for (const [name, c] of [['plain', undefined], ['constrained', { type: 'json_schema', schema: i % 2 ? schemas.object : schemas.toolCall }]]) {
      const j = job(10_000 + i, c)
      const t0 = performance.now()
      const out = await gen(j)
      const t1 = performance.now()
      const s = await score(j, out)
      const t2 = performance.now()
      vg[name].push((t2 - t1) / (t1 - t0))
      if (name === 'constrained') {
        constrainedTokens += out.tokens.length
        if (s.fail) honestFailed++
        // a JSON end within max_tokens must parse; a `length` end is cut JSON, as with any API
        if (out.finishReason === 'stop') { stopped++; try { JSON.parse(out.text) } catch { unparsable++ } }
      }
    }
  }
  const cheat = cheatingExecutor('ignore-constraint', { llm: engine, images: new Map(), models: engine.loaded(), honest: { models: () => engine.loaded(), execute: async (f) => ({ kind: 'llm', result: await gen(f) }) } })
  let caught = 0
  for (let i = 0; i < JOBS; i++) {
    const j = job(20_000 + i, { type: 'json_schema', schema: i % 2 ? schemas.object : schemas.toolCall })
    const out = await cheat.execute(frame(j), { signal })
    if ((await score(j, out.result)).fail) caught++
  }
  await engine.stop()

  // ---- embeddings: a miner on 2 threads, a validator on 1 ----
  // timed side by side on one thread each; the drift is measured against a 2-thread engine (untimed)
  const minerEngine = createLlamaEngine({ gpu: 'cpu', threads: 1, parallel: 1 })
  const validatorEngine = createLlamaEngine({ gpu: 'cpu', threads: 1, parallel: 1 })
  const otherThreads = createLlamaEngine({ gpu: 'cpu', threads: 2, parallel: 1 })
  for (const e of [minerEngine, validatorEngine, otherThreads]) { await e.load(emb.path, { id: emb.id, name: emb.name }); await e.load(a.path, { id: a.id, name: a.name }) }
  const texts = i => Array.from({ length: 8 }, (_, k) => `document ${i}-${k}: ` + 'lorem ipsum dolor sit amet '.repeat(1 + (k % 4)))
  await minerEngine.embed(emb.id, texts(0)); await validatorEngine.embed(emb.id, texts(0))
  const embRatios = []
  const honestCos = []
  const otherModelCos = []
  const otherTextCos = []
  const nearDuplicateCos = []
  const driftCos = []
  const randomCos = []
  let embHonestFailed = 0
  for (let i = 1; i <= JOBS; i++) {
    const t = texts(i)
    const t0 = performance.now()
    const mined = (await minerEngine.embed(emb.id, t)).vectors
    const t1 = performance.now()
    const own = (await validatorEngine.embed(emb.id, t)).vectors
    const t2 = performance.now()
    embRatios.push((t2 - t1) / (t1 - t0))
    const s = scoreEmbeddings(mined, own)
    if (s.fail) embHonestFailed++
    honestCos.push(s.minCosine)
    const other = (await minerEngine.embed(a.id, t)).vectors
    otherModelCos.push(Math.max(...other.map((v, k) => cosine(v, own[k]))))
    const drift = (await otherThreads.embed(emb.id, t)).vectors
    driftCos.push(Math.min(...drift.map((v, k) => cosine(v, own[k]))))
    // unrelated texts (what a miner caching or guessing would return), and a near duplicate
    // (the same text but its first words): the limit of any cosine check
    const unrelated = (await minerEngine.embed(emb.id, t.map((_, k) => `unrelated ${k} ${i}: the quick brown fox jumps`))).vectors
    otherTextCos.push(Math.max(...unrelated.map((v, k) => cosine(v, own[k]))))
    const near = (await minerEngine.embed(emb.id, t.map(x => x.replace(/^document \d+/, 'document 0')))).vectors
    nearDuplicateCos.push(Math.max(...near.map((v, k) => cosine(v, own[k]))))
    const rnd = own.map(v => { const r = Float32Array.from(v, () => Math.random() * 2 - 1); return r })
    randomCos.push(Math.max(...rnd.map((v, k) => cosine(v, own[k]))))
  }
  await minerEngine.stop()
  await validatorEngine.stop()
  await otherThreads.stop()

  console.log(JSON.stringify({
    bench: 'structured',
    config: { model: 'tiny-llama', threads: 1, runs: RUNS, jobsPerRun: 8, jobs: JOBS, maxTokens: TOKENS, sampling: { temperature: 0.8, topP: 0.95, topK: 40 } },
    tokensPerSecond: {
      unconstrained: r3(median(speed.plain)),
      jsonSchema: r3(median(speed.object)),
      toolCallEnvelope: r3(median(speed.toolCall)),
      jsonSchemaOverUnconstrained: { median: r3(median(ratios.object)), runs: ratios.object.map(r3) },
      toolCallOverUnconstrained: { median: r3(median(ratios.toolCall)), runs: ratios.toolCall.map(r3) }
    },
    validationOverGeneration: { constrained: r3(median(vg.constrained)), unconstrained: r3(median(vg.plain)), meanConstrainedTokens: r3(constrainedTokens / JOBS) },
    honestConstrainedJobsFailed: honestFailed,
    constrainedJobsEndedInJson: `${stopped}/${JOBS}`,
    endedInJsonButUnparsable: unparsable,
    ignoreConstraintJobsCaughtAlone: `${caught}/${JOBS}`,
    embeddings: {
      model: 'tiny-embed', inputsPerJob: 8, jobs: JOBS, threads: 1, threshold: EMBEDDING_COSINE_THRESHOLD,
      validationOverEmbedding: r3(median(embRatios)),
      honestJobsFailed: embHonestFailed,
      honestMinCosine: Math.min(...honestCos),
      honestMinCosineAgainst2Threads: Math.min(...driftCos),
      cheatMaxCosine: { anotherModelSameDimension: r3(Math.max(...otherModelCos)), unrelatedText: r3(Math.max(...otherTextCos)), randomVectors: r3(Math.max(...randomCos)) },
      nearDuplicateTextMaxCosine: r3(Math.max(...nearDuplicateCos))
    }
  }, null, 2))
} finally {
  await rm(dir, { recursive: true, force: true })
}
