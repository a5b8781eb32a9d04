// Placeholder owned by the image-generation work: `heurist infer --image` delegates here.
import type { CommandContext } from '../context.js'
import { HeuristError } from '../../core/errors.js'

export async function inferImage (_ctx: CommandContext, _prompt: string, _opts: Record<string, unknown>): Promise<void> {
  throw new HeuristError('INFER_IMAGE_UNAVAILABLE', 'image generation is not built yet')
}
