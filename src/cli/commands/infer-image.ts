// `heurist infer --image`: infer.ts parses the shared flags and delegates here.
import { writeFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import type { CommandContext } from '../context.js'
import type { InferFlags } from './infer.js'
import { parseIntFlag, parseNumberFlag } from '../flags.js'
import { usageError } from '../../core/errors.js'
import { createImageEngine, ensureTinyModels, IMAGE_LIMITS, isTinySdName, ModelCache, SCHEDULERS, validateImageRequest, type ImageRequest, type SchedulerName } from '../../inference/index.js'

function intOpt (raw: string | undefined, flag: string, def: number, min: number, max: number): number {
  return raw === undefined ? def : parseIntFlag(flag, raw, min, max)
}

/** Maps the parsed flags to an image request; out-of-range values are usage errors (exit 2). */
export function imageRequestFromFlags (prompt: string, opts: InferFlags): Omit<ImageRequest, 'modelId'> {
  const scheduler = opts.scheduler ?? 'euler'
  if (!(SCHEDULERS as readonly string[]).includes(scheduler)) throw usageError('CLI_BAD_FLAG', `--scheduler: expected one of ${SCHEDULERS.join(', ')}, got ${JSON.stringify(scheduler)}`)
  const req = {
    prompt,
    negativePrompt: opts.negative ?? '',
    // size and steps are checked against the engine's bounds below, with the engine's message
    width: intOpt(opts.width, '--width', 512, 0, 1_000_000),
    height: intOpt(opts.height, '--height', 512, 0, 1_000_000),
    steps: intOpt(opts.steps, '--steps', 20, 0, 1_000_000),
    guidanceScale: opts.guidance === undefined ? 7.5 : parseNumberFlag('--guidance', opts.guidance, 0, IMAGE_LIMITS.maxGuidance),
    seed: opts.seed === undefined ? Math.floor(Math.random() * 2 ** 32) : parseIntFlag('--seed', opts.seed, 0, Number.MAX_SAFE_INTEGER),
    scheduler: scheduler as SchedulerName
  }
  validateImageRequest(req)
  return req
}

export async function inferImage (ctx: CommandContext, prompt: string, opts: InferFlags): Promise<void> {
  const request = imageRequestFromFlags(prompt, opts)
  const ref = opts.model ?? 'tiny-sd'
  const cache = await ModelCache.open(ctx.paths.models)
  if (isTinySdName(ref) && !(await cache.list()).some(m => m.name === ref)) {
    ctx.logger.info({ model: ref }, 'building the built-in tiny image model')
    await ensureTinyModels(ctx.paths.models, { names: [ref] })
  }
  const cached = await cache.resolve(ref)
  if (cached.kind !== 'image' || cached.format !== 'folder') throw usageError('INFER_NOT_IMAGE_MODEL', `${ref} is not an image model folder (SD 1.5 ONNX layout)`)
  if (request.prompt.trim() === '') ctx.logger.warn('empty prompt: the image is generated without text conditioning')

  const engine = createImageEngine({ threads: 1, optimizationLevel: 'basic', executionProvider: ctx.config.inference.gpu === 'cpu' ? 'cpu' : 'auto', logger: ctx.logger })
  try {
    const model = await engine.load(cached.path, { id: cached.id, name: cached.name })
    const result = await model.generate({ modelId: cached.id, ...request })
    for (const w of result.warnings) if (!w.startsWith('empty prompt')) ctx.logger.warn(w)
    const out = opts.out
    if (out !== undefined) await writeFile(resolve(out), result.png)
    ctx.print(
      { model: cached.name, seed: request.seed, width: result.width, height: result.height, pixelSha256: result.pixelSha256, ms: Math.round(result.ms * 10) / 10 },
      r => `${out === undefined ? 'image generated (no --out given, PNG not written)' : `wrote ${out}`}: ${String(r.width)}×${String(r.height)}, seed ${String(r.seed)}, pixels sha256 ${String(r.pixelSha256)}, ${String(r.ms)} ms`
    )
  } finally {
    await engine.dispose()
  }
}
