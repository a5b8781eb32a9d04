import { readdir, readFile, stat } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import ort from 'onnxruntime-node'
import sharp from 'sharp'
import type { Logger } from '../../core/logger.js'
import { HeuristError, usageError } from '../../core/errors.js'
import type { ImageOptions, ImageRequest, ImageResult, ModelInfo } from '../types.js'
import { CONTEXT_LENGTH, ClipTokenizer } from './tokenizer.js'
import { createScheduler, SCHEDULERS } from './schedulers.js'
import { gaussianNoise } from './prng.js'
import { pixelSha256 } from './compare.js'
import { float32ToHalfArray, halfArrayToFloat32 } from '../float16.js'
import { folderId } from '../cache.js'
import { encodeOnnxModel } from './onnx-writer.js'

/** SD's VAE scaling factor: latents are divided by it before decoding. */
export const VAE_SCALING = 0.18215

/** Bounds on request parameters (a request outside them is a usage error). */
export const IMAGE_LIMITS = {
  minSide: 8,
  /** 1024 px: 128×128 latents, well past SD 1.5's native 512 and still within a GPU's memory. */
  maxSide: 1024,
  maxSteps: 100,
  maxGuidance: 30,
  maxPromptChars: 8192
} as const

export type OptimizationLevel = 'disabled' | 'basic' | 'extended' | 'all'
export type ExecutionProvider = 'auto' | 'cpu' | 'cuda'

export interface ImageEngineOptions {
  /**
   * onnxruntime intra-op threads. Default 1: the thread count changes how reductions are split
   * and so the output bits; one thread gives the same bits on every machine, and each job
   * records the value it ran with.
   */
  threads: number
  /**
   * onnxruntime graph optimization level. Default `basic`: constant folding and redundant-node
   * removal are exact, while `extended`/`all` fuse kernels and change layouts per CPU, which
   * can change bits between machines.
   */
  optimizationLevel: OptimizationLevel
  /** `cpu` (default when no CUDA provider is installed), `cuda`, or `auto` (CUDA if it loads, else CPU). */
  executionProvider: ExecutionProvider
  logger?: Logger
}

export const defaultImageEngineOptions: ImageEngineOptions = { threads: 1, optimizationLevel: 'basic', executionProvider: 'auto' }

/** What one generation produced, beyond the agreed `ImageResult`. */
export interface ImageGeneration extends ImageResult {
  /** RGB, row-major, width·height·3 bytes: what `pixelSha256` hashes. */
  pixels: Uint8Array
  executionProvider: 'cpu' | 'cuda'
  /** Milliseconds by stage. */
  stages: { textEncoderMs: number, unetMs: number, vaeMs: number, pngMs: number }
  /** Things the caller may want to tell the user (empty prompt, truncated prompt). */
  warnings: string[]
}

/** The dtypes and sizes read from the model's own metadata. */
export interface ImageModelLayout {
  idsType: 'int32' | 'int64'
  timestepType: 'int64' | 'int32' | 'float32' | 'float16'
  /** Shape of the timestep input: scalar, fixed [1], or one per batch row. */
  timestepShape: 'scalar' | 'one' | 'batch'
  /** Text encoder hidden size D (0 until the first run when the export leaves it symbolic). */
  hiddenSize: number
  floatType: 'float32' | 'float16'
}

export interface ImageModel {
  readonly info: ModelInfo
  readonly dir: string
  readonly layout: ImageModelLayout
  readonly executionProvider: 'cpu' | 'cuda'
  generate: (request: ImageRequest, options?: ImageOptions) => Promise<ImageGeneration>
  dispose: () => Promise<void>
}

export interface ImageEngine {
  readonly options: ImageEngineOptions
  /** Loads a model folder in the SD 1.5 ONNX layout. `info` overrides the computed id and name. */
  load: (dir: string, info?: { id?: string, name?: string }, place?: { cudaDeviceId?: number }) => Promise<ImageModel>
  dispose: () => Promise<void>
}

export const REQUIRED_FILES = ['text_encoder/model.onnx', 'unet/model.onnx', 'vae_decoder/model.onnx', 'tokenizer/vocab.json', 'tokenizer/merges.txt'] as const

/** Checks a request's parameters; throws a usage error (exit 2) naming the bad one. */
export function validateImageRequest (r: Omit<ImageRequest, 'modelId'>): void {
  for (const [name, v] of [['width', r.width], ['height', r.height]] as const) {
    if (!Number.isInteger(v) || v < IMAGE_LIMITS.minSide || v > IMAGE_LIMITS.maxSide || v % 8 !== 0) {
      throw usageError('IMAGE_BAD_SIZE', `${name} must be a multiple of 8 from ${IMAGE_LIMITS.minSide} to ${IMAGE_LIMITS.maxSide}, got ${String(v)}`)
    }
  }
  if (!Number.isInteger(r.steps) || r.steps < 1 || r.steps > IMAGE_LIMITS.maxSteps) throw usageError('IMAGE_BAD_STEPS', `steps must be an integer from 1 to ${IMAGE_LIMITS.maxSteps}, got ${String(r.steps)}`)
  if (!Number.isFinite(r.guidanceScale) || r.guidanceScale < 0 || r.guidanceScale > IMAGE_LIMITS.maxGuidance) throw usageError('IMAGE_BAD_GUIDANCE', `guidance scale must be from 0 to ${IMAGE_LIMITS.maxGuidance}, got ${String(r.guidanceScale)}`)
  if (!Number.isSafeInteger(r.seed) || r.seed < 0) throw usageError('IMAGE_BAD_SEED', `seed must be an integer from 0 to ${Number.MAX_SAFE_INTEGER}, got ${String(r.seed)}`)
  if (!SCHEDULERS.includes(r.scheduler)) throw usageError('IMAGE_BAD_SCHEDULER', `scheduler must be one of ${SCHEDULERS.join(', ')}, got ${JSON.stringify(r.scheduler)}`)
  if (typeof r.prompt !== 'string' || r.prompt.length > IMAGE_LIMITS.maxPromptChars) throw usageError('IMAGE_PROMPT_TOO_LONG', `prompt must be a string of at most ${IMAGE_LIMITS.maxPromptChars} characters`)
  if (typeof r.negativePrompt !== 'string' || r.negativePrompt.length > IMAGE_LIMITS.maxPromptChars) throw usageError('IMAGE_PROMPT_TOO_LONG', `negative prompt must be a string of at most ${IMAGE_LIMITS.maxPromptChars} characters`)
}

type Meta = ort.InferenceSession.ValueMetadata
type TensorMeta = Extract<Meta, { isTensor: true }>

function badModel (message: string, details?: Record<string, unknown>): HeuristError {
  return new HeuristError('IMAGE_MODEL_BAD_SHAPE', message, { details })
}

function findMeta (list: readonly Meta[], name: string, part: string): TensorMeta {
  const m = list.find(x => x.name === name)
  if (m === undefined || !m.isTensor) throw badModel(`${part}/model.onnx has no tensor named ${name} (has: ${list.map(x => x.name).join(', ')})`)
  return m
}

/** Checks rank and fixed dims of a tensor's declared shape (symbolic or unknown dims pass). */
function checkShape (m: TensorMeta, part: string, expected: Array<number | null>): void {
  const shape = m.shape
  if (shape.length === 0) return // the export left the shape out
  const ok = shape.length === expected.length && expected.every((e, i) => e === null || typeof shape[i] !== 'number' || shape[i] === e)
  if (!ok) throw badModel(`${part}/model.onnx: ${m.name} has shape [${shape.join(',')}], expected [${expected.map(e => e ?? '?').join(',')}]`)
}

function checkFloat (m: TensorMeta, part: string): 'float32' | 'float16' {
  if (m.type !== 'float32' && m.type !== 'float16') throw badModel(`${part}/model.onnx: ${m.name} is ${m.type}, expected float32 or float16`)
  return m.type
}

function floatTensor (type: 'float32' | 'float16', data: Float32Array, dims: number[]): ort.Tensor {
  return type === 'float16' ? new ort.Tensor('float16', float32ToHalfArray(data), dims) : new ort.Tensor('float32', data, dims)
}

function readFloats (t: ort.Tensor | undefined, what: string, dims: number[]): Float32Array {
  if (t === undefined) throw badModel(`${what} produced no output`)
  if (t.dims.length !== dims.length || t.dims.some((d, i) => d !== dims[i])) throw badModel(`${what} output has shape [${t.dims.join(',')}], expected [${dims.join(',')}]`)
  const d = t.data as unknown
  if (d instanceof Float32Array) return d
  if (d instanceof Uint16Array) return halfArrayToFloat32(d)
  if (ArrayBuffer.isView(d) && !(d instanceof DataView) && !(d instanceof BigInt64Array) && !(d instanceof BigUint64Array)) return Float32Array.from(d as unknown as ArrayLike<number>)
  throw badModel(`${what} output is ${t.type}, expected float`)
}

/** Tokenizer files are read whole, so they are bounded (SD 1.5's are 1.1 MB and 0.5 MB). */
const MAX_TOKENIZER_FILE_BYTES = 16 * 1024 * 1024

/** Checks the layout's files and returns their total size. */
async function requireFiles (dir: string): Promise<number> {
  let total = 0
  for (const f of REQUIRED_FILES) {
    let size: number
    try {
      const s = await stat(join(dir, f))
      if (!s.isFile()) throw new Error('not a file')
      size = s.size
    } catch {
      throw new HeuristError('IMAGE_MODEL_MISSING_FILE', `model folder ${dir} is missing ${f} (expected the SD 1.5 ONNX layout: ${REQUIRED_FILES.join(', ')})`)
    }
    if (f.startsWith('tokenizer/') && size > MAX_TOKENIZER_FILE_BYTES) throw new HeuristError('IMAGE_MODEL_BAD_TOKENIZER', `${f} is ${size} bytes, over the ${MAX_TOKENIZER_FILE_BYTES}-byte bound`)
    total += size
  }
  return total + await externalDataBytes(dir)
}

/** Graph folders whose other files (external data) onnxruntime reads beside `model.onnx`. */
const GRAPH_PARTS = ['text_encoder', 'unet', 'vae_decoder'] as const
/** Entries read per graph folder (an export has a handful; a folder with more is not a model). */
const MAX_PART_ENTRIES = 4096

/**
 * The bytes of every other file in the graph folders: the external data large exports keep
 * beside `model.onnx` (`model.onnx_data`, `weights.pb`, one file per tensor), which onnxruntime
 * loads into memory with the graph, so they count toward the model's memory.
 */
async function externalDataBytes (dir: string): Promise<number> {
  let total = 0
  for (const part of GRAPH_PARTS) {
    const entries = await readdir(join(dir, part), { withFileTypes: true })
    if (entries.length > MAX_PART_ENTRIES) throw new HeuristError('IMAGE_MODEL_BAD_FILE', `${join(dir, part)} has ${entries.length} entries, over the ${MAX_PART_ENTRIES} an export has`)
    for (const e of entries) {
      if (!e.isFile() || e.name === 'model.onnx') continue
      total += (await stat(join(dir, part, e.name))).size
    }
  }
  return total
}

/**
 * Whether onnxruntime-node's CUDA provider libraries are installed. They are not part of the
 * npm package (its install script downloads them, which this project switches off), and asking
 * for CUDA without them makes the native layer print an error, so `auto` checks first.
 */
/** How to get onnxruntime-node's CUDA provider (scripts/preinstall.cjs makes the download opt-in). */
export const CUDA_INSTALL_HINT = 'reinstall with ONNXRUNTIME_NODE_INSTALL=cuda12 set (needs CUDA 12 and cuDNN 9 on the library path)'

export function cudaProviderAvailable (): boolean {
  try {
    const pkg = createRequire(import.meta.url).resolve('onnxruntime-node/package.json')
    const bin = join(dirname(pkg), 'bin', 'napi-v6', process.platform, process.arch)
    return process.platform === 'linux' && existsSync(join(bin, 'libonnxruntime_providers_cuda.so')) && existsSync(join(bin, 'libonnxruntime_providers_shared.so'))
  } catch {
    return false
  }
}

/** What `heurist doctor` reports about onnxruntime's CUDA execution provider. */
export interface CudaProviderProbe {
  /** The provider libraries are in onnxruntime-node's folder (the opt-in install ran). */
  installed: boolean
  /** A one-node graph got a session on the CUDA provider. */
  loads: boolean
  /** Why it does not load (first line of onnxruntime's error), when installed. */
  error?: string
}

/** A one-node float graph (Identity) to try a provider on, without any model files. */
function probeGraph (): Uint8Array {
  return encodeOnnxModel({
    name: 'probe',
    nodes: [{ op: 'Identity', inputs: ['x'], outputs: ['y'] }],
    initializers: [],
    inputs: [{ name: 'x', type: 'float', shape: [1] }],
    outputs: [{ name: 'y', type: 'float', shape: [1] }]
  })
}

/**
 * Whether the CUDA provider is installed and loads: tries a session on it only when its
 * libraries are there (asking without them makes the native layer print errors).
 */
export async function probeCudaProvider (): Promise<CudaProviderProbe> {
  if (!cudaProviderAvailable()) return { installed: false, loads: false }
  try {
    const s = await ort.InferenceSession.create(probeGraph(), { executionProviders: ['cuda'], logSeverityLevel: 3 })
    await s.release()
    return { installed: true, loads: true }
  } catch (e) {
    return { installed: true, loads: false, error: ((e as Error).message.split('\n')[0] ?? '').slice(0, 500) }
  }
}

export function createImageEngine (options: Partial<ImageEngineOptions> = {}): ImageEngine {
  const opts: ImageEngineOptions = { ...defaultImageEngineOptions, ...options }
  if (!Number.isInteger(opts.threads) || opts.threads < 1 || opts.threads > 1024) throw usageError('IMAGE_BAD_THREADS', `image engine threads must be an integer from 1 to 1024, got ${String(opts.threads)}`)
  const models = new Set<ImageModel>()
  let disposed = false

  async function session (path: string, provider: 'cpu' | 'cuda', deviceId: number): Promise<ort.InferenceSession> {
    try {
      return await ort.InferenceSession.create(path, {
        executionProviders: provider === 'cuda' ? [{ name: 'cuda', deviceId }] : ['cpu'],
        intraOpNumThreads: opts.threads,
        interOpNumThreads: 1,
        executionMode: 'sequential',
        graphOptimizationLevel: opts.optimizationLevel,
        logSeverityLevel: 3
      })
    } catch (e) {
      throw new HeuristError('IMAGE_MODEL_BAD_FILE', `cannot load ${path} (${provider}): ${(e as Error).message.split('\n')[0] ?? ''}`, { cause: e })
    }
  }

  async function loadSessions (dir: string, deviceId: number): Promise<{ provider: 'cpu' | 'cuda', te: ort.InferenceSession, unet: ort.InferenceSession, vae: ort.InferenceSession }> {
    const cudaInstalled = opts.executionProvider === 'auto' && cudaProviderAvailable()
    const providers: Array<'cpu' | 'cuda'> = opts.executionProvider === 'cpu' ? ['cpu'] : opts.executionProvider === 'cuda' ? ['cuda'] : cudaInstalled ? ['cuda', 'cpu'] : ['cpu']
    if (opts.executionProvider === 'auto' && !cudaInstalled) opts.logger?.info({ dir }, `onnxruntime's CUDA provider libraries are not installed: image model on the CPU (${CUDA_INSTALL_HINT})`)
    let last: unknown
    for (const provider of providers) {
      try {
        const te = await session(join(dir, 'text_encoder/model.onnx'), provider, deviceId)
        const unet = await session(join(dir, 'unet/model.onnx'), provider, deviceId)
        const vae = await session(join(dir, 'vae_decoder/model.onnx'), provider, deviceId)
        return { provider, te, unet, vae }
      } catch (e) {
        last = e
        if (provider === 'cuda' && opts.executionProvider === 'auto') opts.logger?.warn({ dir, err: (e as Error).message }, 'the CUDA execution provider did not load: image model on the CPU')
      }
    }
    throw last
  }

  return {
    options: opts,
    async load (dir, info = {}, place = {}) {
      if (disposed) throw new HeuristError('IMAGE_ENGINE_DISPOSED', 'the image engine was disposed')
      const memoryBytes = await requireFiles(dir)
      const tokenizer = ClipTokenizer.fromFiles(await readFile(join(dir, 'tokenizer/vocab.json'), 'utf8'), await readFile(join(dir, 'tokenizer/merges.txt'), 'utf8'))
      const deviceId = place.cudaDeviceId ?? 0
      if (!Number.isInteger(deviceId) || deviceId < 0 || deviceId > 255) throw usageError('IMAGE_BAD_DEVICE', `CUDA device id must be an integer from 0 to 255, got ${String(deviceId)}`)
      const { provider, te, unet, vae } = await loadSessions(dir, deviceId)
      const disposeSessions = async (): Promise<void> => { await Promise.allSettled([te.release(), unet.release(), vae.release()]) }
      let layout: ImageModelLayout
      try {
        layout = readLayout(te, unet, vae, tokenizer)
      } catch (e) {
        await disposeSessions()
        throw e
      }
      const modelInfo: ModelInfo = { id: info.id ?? await folderId(dir), name: info.name ?? dir, kind: 'image', contextSize: 0, memoryBytes }
      let released = false
      const model: ImageModel = {
        info: modelInfo,
        dir,
        layout,
        executionProvider: provider,
        async generate (request, runOptions = {}) {
          if (released) throw new HeuristError('IMAGE_MODEL_DISPOSED', 'the image model was disposed')
          return await generate({ te, unet, vae, tokenizer, layout, provider, opts }, request, runOptions)
        },
        async dispose () {
          if (released) return
          released = true
          models.delete(model)
          await disposeSessions()
        }
      }
      models.add(model)
      return model
    },
    async dispose () {
      disposed = true
      await Promise.allSettled([...models].map(async m => { await m.dispose() }))
    }
  }
}

function readLayout (te: ort.InferenceSession, unet: ort.InferenceSession, vae: ort.InferenceSession, tokenizer: ClipTokenizer): ImageModelLayout {
  const ids = findMeta(te.inputMetadata, 'input_ids', 'text_encoder')
  if (ids.type !== 'int32' && ids.type !== 'int64') throw badModel(`text_encoder/model.onnx: input_ids is ${ids.type}, expected int32 or int64`)
  checkShape(ids, 'text_encoder', [null, CONTEXT_LENGTH])
  const hidden = findMeta(te.outputMetadata, 'last_hidden_state', 'text_encoder')
  checkShape(hidden, 'text_encoder', [null, CONTEXT_LENGTH, null])
  const floatType = checkFloat(hidden, 'text_encoder')
  const hiddenSize = typeof hidden.shape[2] === 'number' ? hidden.shape[2] : 0

  const sample = findMeta(unet.inputMetadata, 'sample', 'unet')
  checkShape(sample, 'unet', [null, 4, null, null])
  checkFloat(sample, 'unet')
  const ehs = findMeta(unet.inputMetadata, 'encoder_hidden_states', 'unet')
  checkShape(ehs, 'unet', [null, CONTEXT_LENGTH, hiddenSize === 0 ? null : hiddenSize])
  checkFloat(ehs, 'unet')
  const ts = findMeta(unet.inputMetadata, 'timestep', 'unet')
  if (!['int64', 'int32', 'float32', 'float16'].includes(ts.type)) throw badModel(`unet/model.onnx: timestep is ${ts.type}, expected int64, int32, float32 or float16`)
  if (ts.shape.length > 1) throw badModel(`unet/model.onnx: timestep has shape [${ts.shape.join(',')}], expected a scalar or one dimension`)
  const timestepShape = ts.shape.length === 0 ? 'scalar' : ts.shape[0] === 1 ? 'one' : 'batch'
  const out = findMeta(unet.outputMetadata, 'out_sample', 'unet')
  checkShape(out, 'unet', [null, 4, null, null])

  const latent = findMeta(vae.inputMetadata, 'latent_sample', 'vae_decoder')
  checkShape(latent, 'vae_decoder', [null, 4, null, null])
  checkFloat(latent, 'vae_decoder')
  const img = findMeta(vae.outputMetadata, 'sample', 'vae_decoder')
  checkShape(img, 'vae_decoder', [null, 3, null, null])

  // every token id must index the embedding table; a mismatch shows up as a Gather error later
  if (tokenizer.vocabSize < 3) throw new HeuristError('IMAGE_MODEL_BAD_TOKENIZER', 'tokenizer vocabulary is too small')
  return { idsType: ids.type, timestepType: ts.type as ImageModelLayout['timestepType'], timestepShape, hiddenSize, floatType }
}

interface Parts {
  te: ort.InferenceSession
  unet: ort.InferenceSession
  vae: ort.InferenceSession
  tokenizer: ClipTokenizer
  layout: ImageModelLayout
  provider: 'cpu' | 'cuda'
  opts: ImageEngineOptions
}

function timestepTensor (layout: ImageModelLayout, t: number, batch: number): ort.Tensor {
  const n = layout.timestepShape === 'batch' ? batch : 1
  const dims = layout.timestepShape === 'scalar' ? [] : [n]
  switch (layout.timestepType) {
    case 'int64': return new ort.Tensor('int64', new BigInt64Array(n).fill(BigInt(Math.round(t))), dims)
    case 'int32': return new ort.Tensor('int32', new Int32Array(n).fill(Math.round(t)), dims)
    case 'float32': return new ort.Tensor('float32', new Float32Array(n).fill(t), dims)
    case 'float16': return new ort.Tensor('float16', float32ToHalfArray(new Float32Array(n).fill(t)), dims)
  }
}

function elapsed (from: bigint): number {
  return Number(process.hrtime.bigint() - from) / 1e6
}

async function generate (p: Parts, r: ImageRequest, options: ImageOptions): Promise<ImageGeneration> {
  validateImageRequest(r)
  const started = process.hrtime.bigint()
  const warnings: string[] = []
  if (r.prompt.trim() === '') warnings.push('empty prompt: the image is generated without text conditioning')
  const aborted = (): void => {
    if (options.signal?.aborted === true) throw new HeuristError('IMAGE_ABORTED', 'image generation was aborted')
  }
  aborted()

  // text encoder: [uncond, cond] with guidance, [cond] without
  const guided = r.guidanceScale > 1
  const cond = p.tokenizer.encodeForModel(r.prompt)
  if (cond.truncated) warnings.push(`prompt is longer than ${CONTEXT_LENGTH - 2} tokens and was truncated`)
  const rows = guided ? [p.tokenizer.encodeForModel(r.negativePrompt).ids, cond.ids] : [cond.ids]
  const batch = rows.length
  const flat = rows.flat()
  const idsTensor = p.layout.idsType === 'int64'
    ? new ort.Tensor('int64', BigInt64Array.from(flat, v => BigInt(v)), [batch, CONTEXT_LENGTH])
    : new ort.Tensor('int32', Int32Array.from(flat), [batch, CONTEXT_LENGTH])
  let t0 = process.hrtime.bigint()
  const teOut = await p.te.run({ input_ids: idsTensor })
  const hiddenT = teOut.last_hidden_state
  const d = hiddenT?.dims[2] ?? 0
  if (p.layout.hiddenSize !== 0 && d !== p.layout.hiddenSize) throw badModel(`text_encoder output hidden size ${d} differs from its declared ${p.layout.hiddenSize}`)
  const hidden = readFloats(hiddenT, 'text_encoder', [batch, CONTEXT_LENGTH, d])
  const ehsType = (findMeta(p.unet.inputMetadata, 'encoder_hidden_states', 'unet').type) as 'float32' | 'float16'
  const ehs = floatTensor(ehsType, hidden, [batch, CONTEXT_LENGTH, d])
  const textEncoderMs = elapsed(t0)
  aborted()

  // UNet loop
  const h = r.height / 8
  const w = r.width / 8
  const n = 4 * h * w
  const scheduler = createScheduler(r.scheduler, r.steps)
  const noise = gaussianNoise(r.seed, n)
  let latents: Float32Array = new Float32Array(n)
  for (let i = 0; i < n; i++) latents[i] = (noise[i] ?? 0) * scheduler.initNoiseSigma
  const sampleType = (findMeta(p.unet.inputMetadata, 'sample', 'unet').type) as 'float32' | 'float16'
  t0 = process.hrtime.bigint()
  for (let step = 0; step < scheduler.timesteps.length; step++) {
    const scaled = scheduler.scaleInput(latents, step)
    const input = new Float32Array(n * batch)
    for (let b = 0; b < batch; b++) input.set(scaled, b * n)
    const out = await p.unet.run({
      sample: floatTensor(sampleType, input, [batch, 4, h, w]),
      timestep: timestepTensor(p.layout, scheduler.timesteps[step] ?? 0, batch),
      encoder_hidden_states: ehs
    })
    const pred = readFloats(out.out_sample, 'unet', [batch, 4, h, w])
    let eps: Float32Array
    if (guided) {
      eps = new Float32Array(n)
      const g = r.guidanceScale
      for (let i = 0; i < n; i++) {
        const u = pred[i] ?? 0
        eps[i] = u + g * ((pred[n + i] ?? 0) - u)
      }
    } else {
      eps = pred
    }
    latents = scheduler.step(latents, eps, step)
    options.onProgress?.(step + 1, r.steps)
    aborted()
  }
  const unetMs = elapsed(t0)

  // VAE decode → RGB uint8
  t0 = process.hrtime.bigint()
  const scaledLatents = new Float32Array(n)
  for (let i = 0; i < n; i++) scaledLatents[i] = (latents[i] ?? 0) / VAE_SCALING
  const latentType = (findMeta(p.vae.inputMetadata, 'latent_sample', 'vae_decoder').type) as 'float32' | 'float16'
  const vaeOut = await p.vae.run({ latent_sample: floatTensor(latentType, scaledLatents, [1, 4, h, w]) })
  const image = readFloats(vaeOut.sample, 'vae_decoder', [1, 3, r.height, r.width])
  const plane = r.width * r.height
  const pixels = new Uint8Array(plane * 3)
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < plane; i++) {
      const v = (image[c * plane + i] ?? 0) / 2 + 0.5
      pixels[i * 3 + c] = Math.round((v < 0 ? 0 : v > 1 ? 1 : v) * 255)
    }
  }
  const vaeMs = elapsed(t0)

  t0 = process.hrtime.bigint()
  const png = new Uint8Array(await sharp(pixels, { raw: { width: r.width, height: r.height, channels: 3 } }).png({ compressionLevel: 6 }).toBuffer())
  const pngMs = elapsed(t0)

  return {
    png,
    pixels,
    pixelSha256: pixelSha256(pixels),
    width: r.width,
    height: r.height,
    ms: elapsed(started),
    threads: p.opts.threads,
    optimizationLevel: p.opts.optimizationLevel,
    executionProvider: p.provider,
    stages: { textEncoderMs, unetMs, vaeMs, pngMs },
    warnings
  }
}
