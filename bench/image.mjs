// Image pipeline throughput on the built-in tiny SD models: images per second at 64×64 and
// 512×512, 20 steps, guidance 7.5 (UNet batch of 2), one onnxruntime thread (the determinism
// setting), and the time split by stage. Medians of RUNS runs after one warm-up.
// Run: npx tsc -p . && node bench/image.mjs   (env RUNS, default 7)
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildTinySd, createImageEngine } from '../dist/inference/image/index.js'

const RUNS = Number(process.env.RUNS ?? 7)
const median = xs => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2 }
const round = x => Math.round(x * 100) / 100

const dir = await mkdtemp(join(tmpdir(), 'heurist-bench-image-'))
const engine = createImageEngine({ executionProvider: 'cpu', threads: 1, optimizationLevel: 'basic' })
try {
  const model = await engine.load(await buildTinySd(join(dir, 'tiny-sd')))
  const results = {}
  for (const side of [64, 512]) {
    const req = { modelId: model.info.id, prompt: 'a cat sitting on a chair', negativePrompt: '', width: side, height: side, steps: 20, guidanceScale: 7.5, seed: 1, scheduler: 'euler' }
    await model.generate(req) // warm-up
    const runs = []
    for (let i = 0; i < RUNS; i++) runs.push(await model.generate({ ...req, seed: i }))
    const ms = median(runs.map(r => r.ms))
    results[`${side}x${side}`] = {
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
  process.stdout.write(JSON.stringify({ bench: 'image', model: 'tiny-sd', steps: 20, guidance: 7.5, scheduler: 'euler', threads: 1, optimizationLevel: 'basic', runs: RUNS, node: process.version, results }, null, 2) + '\n')
} finally {
  await engine.dispose()
  await rm(dir, { recursive: true, force: true })
}
