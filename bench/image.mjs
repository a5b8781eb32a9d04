// Image pipeline throughput on the built-in tiny SD models: images per second at 64×64 and
// 512×512, 20 steps, guidance 7.5 (UNet batch of 2), on one onnxruntime thread (what validators
// re-run on: the same bits on every machine) and on all the cores (what `mine` serves on), the
// time split by stage, and how close the two outputs are (SSIM, dHash distance, largest pixel
// difference) for the same seeds: the drift a validator's 1-thread re-run must tolerate. On CUDA
// (PROVIDER=auto or cuda where the provider loads) it also compares the GPU's output with a CPU
// 1-thread run (providerVsCpu1), what a validator without a GPU sees.
// Medians of RUNS runs after one warm-up. Env: RUNS (default 7), THREADS (default all cores),
// BENCH_IMAGE_MODEL (an SD 1.5 ONNX folder instead of tiny-sd), SIDES (default 64,512),
// PROVIDER (cpu, cuda or auto; default cpu).
// Run: npx tsc -p . && node bench/image.mjs
import { mkdtemp, rm } from 'node:fs/promises'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildTinySd, comparePixels, createImageEngine } from '../dist/inference/index.js'

const RUNS = Number(process.env.RUNS ?? 7)
const ALL = Number(process.env.THREADS ?? availableParallelism())
const SIDES = (process.env.SIDES ?? '64,512').split(',').map(Number)
const PROVIDER = process.env.PROVIDER ?? 'cpu'
const median = xs => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2 }
const round = (x, d = 2) => Math.round(x * 10 ** d) / 10 ** d

const dir = await mkdtemp(join(tmpdir(), 'heurist-bench-image-'))
const engines = []
try {
  const modelDir = process.env.BENCH_IMAGE_MODEL ?? await buildTinySd(join(dir, 'tiny-sd'))
  const load = async threads => {
    const e = createImageEngine({ executionProvider: PROVIDER, threads, optimizationLevel: 'basic' })
    engines.push(e)
    return await e.load(modelDir)
  }
  const one = await load(1)
  const all = await load(ALL)
  // on CUDA, validators (who re-run on the CPU, 1 thread) see the drift between the providers
  let cpuRef = null
  if (all.executionProvider !== 'cpu') {
    const e = createImageEngine({ executionProvider: 'cpu', threads: 1, optimizationLevel: 'basic' })
    engines.push(e)
    cpuRef = await e.load(modelDir)
  }
  const results = {}
  for (const side of SIDES) {
    const req = { modelId: one.info.id, prompt: 'a cat sitting on a chair', negativePrompt: '', width: side, height: side, steps: 20, guidanceScale: 7.5, seed: 1, scheduler: 'euler' }
    await one.generate(req) // warm-up
    await all.generate(req)
    const runs1 = []
    const runsN = []
    const ssims = []
    const dhashes = []
    const maxDiffs = []
    let identical = 0
    const cross = { ssims: [], dhashes: [], identical: 0 }
    // interleaved, so load on the machine falls on both alike
    for (let i = 0; i < RUNS; i++) {
      const a = await one.generate({ ...req, seed: i })
      const b = await all.generate({ ...req, seed: i })
      runs1.push(a)
      runsN.push(b)
      const c = comparePixels(a, b)
      ssims.push(c.ssim)
      dhashes.push(c.dhashDistance)
      if (c.identical) identical++
      let m = 0
      for (let k = 0; k < a.pixels.length; k++) m = Math.max(m, Math.abs(a.pixels[k] - b.pixels[k]))
      maxDiffs.push(m)
      if (cpuRef !== null) {
        const c2 = comparePixels(await cpuRef.generate({ ...req, seed: i }), b)
        cross.ssims.push(c2.ssim)
        cross.dhashes.push(c2.dhashDistance)
        if (c2.identical) cross.identical++
      }
    }
    const stats = runs => {
      const ms = median(runs.map(r => r.ms))
      return {
        imagesPerSecond: round(1000 / ms),
        msPerImage: round(ms),
        stagesMs: {
          textEncoder: round(median(runs.map(r => r.stages.textEncoderMs))),
          unet20Steps: round(median(runs.map(r => r.stages.unetMs))),
          unetPerStep: round(median(runs.map(r => r.stages.unetMs)) / 20),
          vae: round(median(runs.map(r => r.stages.vaeMs))),
          png: round(median(runs.map(r => r.stages.pngMs)))
        }
      }
    }
    const s1 = stats(runs1)
    const sN = stats(runsN)
    results[`${side}x${side}`] = {
      threads1: s1,
      [`threads${ALL}`]: sN,
      speedupAllVs1: round(sN.imagesPerSecond / s1.imagesPerSecond),
      oneVsAll: {
        identical: `${identical}/${RUNS}`,
        ssimMedian: round(median(ssims), 5),
        ssimMin: round(Math.min(...ssims), 5),
        dhashDistanceMedian: median(dhashes),
        dhashDistanceMax: Math.max(...dhashes),
        maxPixelDiffMedian: median(maxDiffs),
        maxPixelDiffMax: Math.max(...maxDiffs)
      },
      ...(cpuRef === null ? {} : {
        providerVsCpu1: {
          identical: `${cross.identical}/${RUNS}`,
          ssimMedian: round(median(cross.ssims), 5),
          ssimMin: round(Math.min(...cross.ssims), 5),
          dhashDistanceMedian: median(cross.dhashes),
          dhashDistanceMax: Math.max(...cross.dhashes)
        }
      })
    }
  }
  process.stdout.write(JSON.stringify({
    bench: 'image',
    model: process.env.BENCH_IMAGE_MODEL ?? 'tiny-sd',
    executionProvider: one.executionProvider,
    steps: 20,
    guidance: 7.5,
    scheduler: 'euler',
    optimizationLevel: 'basic',
    threads: [1, ALL],
    cpuCores: availableParallelism(),
    runs: RUNS,
    node: process.version,
    results
  }, null, 2) + '\n')
} finally {
  for (const e of engines) await e.dispose()
  await rm(dir, { recursive: true, force: true })
}
