import { buildTinySd, createImageEngine, type ImageEngine, type ImageRequest, type TinySdOptions } from '../../../src/inference/image/index.js'
import { join } from 'node:path'

export const baseRequest: ImageRequest = { modelId: '', prompt: 'a cat', negativePrompt: '', width: 64, height: 64, steps: 20, guidanceScale: 7.5, seed: 1, scheduler: 'euler' }

/** Builds a tiny SD folder variant under `root`. */
export async function variant (root: string, name: string, options: TinySdOptions = {}): Promise<string> {
  return await buildTinySd(join(root, name), options)
}

/** The engine every test uses: CPU, one thread, fixed optimization level. */
export function testEngine (): ImageEngine {
  return createImageEngine({ executionProvider: 'cpu', threads: 1, optimizationLevel: 'basic' })
}
