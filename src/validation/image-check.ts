import sharp from 'sharp'
import { comparePixels, defaultCompareThresholds, pixelSha256, type CompareThresholds, type ImageRequest, type RgbImage } from '../inference/index.js'
import type { ImageTranscript } from './transcript.js'

/**
 * The image check (DESIGN.md §7): images are deterministic given the seed, so the validator
 * re-runs the job with the same seed and params, on the same thread count and optimization
 * level the miner recorded. An equal pixel hash passes. Otherwise the miner's pixels (decoded
 * from the transcript's PNG, which must hash to the receipt's pixel hash) are compared by SSIM
 * and dHash: within the calibrated thresholds (float drift across hardware) passes, beyond
 * them fails.
 */

/** Re-runs a job; the validator's image engine, keyed by the recorded determinism settings. */
export type ImageRerun = (request: ImageRequest, settings: { threads: number, optimizationLevel: string }, signal?: AbortSignal) => Promise<{ pixels: Uint8Array, pixelSha256: string, width: number, height: number }>

/** What `imageRerun` needs of a loaded image model. */
export interface RerunModel {
  generate: (request: ImageRequest, options?: { signal?: AbortSignal }) => Promise<{ pixels: Uint8Array, pixelSha256: string, width: number, height: number }>
}

/**
 * The validator's re-run on its own loaded models, whatever thread count the miner recorded:
 * miners serve on all their cores (inference.imageThreads), and the thread count changes how
 * reductions split and so the low bits, so a re-run on other threads is compared by SSIM and
 * dHash within the calibrated thresholds rather than refused. (Measured on tiny-sd, 20 steps,
 * 32 to 512 px: 1 vs 2 threads identical; 1 vs 8 threads at most 1 LSB apart, SSIM 1.0000, dHash 0.)
 */
export function imageRerun (models: ReadonlyMap<string, RerunModel>, onMissing: (modelId: string) => Error): ImageRerun {
  return async (request, _settings, signal) => {
    const model = models.get(request.modelId)
    if (model === undefined) throw onMissing(request.modelId)
    return await model.generate(request, { signal })
  }
}

export interface ImageJobScore {
  /** The re-run gave the same pixels. */
  identical: boolean
  ssim: number
  dhashDistance: number
  fail: boolean
  /** The PNG in the transcript does not decode to the receipt's pixel hash: the gateway's fault. */
  transcriptMismatch: boolean
}

export async function decodePng (png: Uint8Array): Promise<RgbImage> {
  const { data, info } = await sharp(png, { limitInputPixels: 4096 * 4096 }).removeAlpha().raw().toBuffer({ resolveWithObject: true })
  return { width: info.width, height: info.height, pixels: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) }
}

export async function scoreImageJob (rerun: ImageRerun, t: ImageTranscript, thresholds: CompareThresholds = defaultCompareThresholds, signal?: AbortSignal): Promise<ImageJobScore> {
  const settings = { threads: t.output.threads ?? 1, optimizationLevel: t.output.optimizationLevel ?? 'basic' }
  const mine = await rerun({ modelId: t.modelId, ...t.image }, settings, signal)
  if (mine.pixelSha256 === t.output.pixelSha256) return { identical: true, ssim: 1, dhashDistance: 0, fail: false, transcriptMismatch: false }
  let theirs: RgbImage
  try {
    theirs = await decodePng(Buffer.from(t.output.pngBase64, 'base64'))
  } catch {
    return { identical: false, ssim: 0, dhashDistance: 64, fail: false, transcriptMismatch: true }
  }
  if (pixelSha256(theirs.pixels) !== t.output.pixelSha256) return { identical: false, ssim: 0, dhashDistance: 64, fail: false, transcriptMismatch: true }
  if (theirs.width !== mine.width || theirs.height !== mine.height) return { identical: false, ssim: 0, dhashDistance: 64, fail: true, transcriptMismatch: false }
  const c = comparePixels(theirs, { width: mine.width, height: mine.height, pixels: mine.pixels }, thresholds)
  return { identical: false, ssim: c.ssim, dhashDistance: c.dhashDistance, fail: !c.match, transcriptMismatch: false }
}
