import { randomInt } from 'node:crypto'
import sharp from 'sharp'
import { HeuristError, usageError } from '../core/errors.js'
import { pixelSha256, quantizedSiblingName, type ImageModel, type LlamaEngine, type ModelInfo, type TinyQuant } from '../inference/index.js'
import type { JobExecutor, JobOutput } from '../p2p/index.js'

/**
 * Cheating miners, a testing aid for validators (`heurist mine --cheat MODE`, refused unless
 * the chain is the devnet): each mode returns something cheaper or other than what the job
 * asked for, and still signs a receipt for it, as a dishonest miner would.
 *
 * - `wrong-model`: runs another loaded LLM (the second tiny model) while claiming the asked one
 * - `high-temperature`: samples at twice the asked temperature (at least 1.5)
 * - `random-tokens`: random text of the asked length, no model run at all
 * - `truncate`: stops at half the asked tokens and claims a natural stop
 * - `quantized-q8`, `quantized-q4`: runs the Q8_0 or Q4_0 copy of the claimed model (its
 *   quantized sibling, `tiny-llama-q8`/`-q4`, must be loaded too): the cheat that pays in
 *   practice, since a quantized model is smaller and faster and its text reads the same.
 *   Two modes, not one, because how fast it is caught depends on the bits kept.
 * - `ignore-constraint`: runs a constrained job (JSON schema, tools) without its grammar and
 *   signs it as constrained: the cheat of a miner whose engine has no grammar support, or
 *   that saves the grammar's cost (unconstrained jobs are served honestly)
 * - `wrong-embedding`: (embeddings) another loaded model's vectors (same dimension), or random
 *   unit vectors: the cheat of a miner serving a cheaper embedding model under the claimed id
 * - `wrong-seed`: (images) draws with seed + 1
 * - `blank`: (images) a black image, no model run at all
 */
export const CHEAT_MODES = ['wrong-model', 'high-temperature', 'random-tokens', 'truncate', 'quantized-q8', 'quantized-q4', 'ignore-constraint', 'wrong-embedding', 'wrong-seed', 'blank'] as const
export type CheatMode = typeof CHEAT_MODES[number]
export const LLM_CHEATS: readonly CheatMode[] = ['wrong-model', 'high-temperature', 'random-tokens', 'truncate', 'quantized-q8', 'quantized-q4', 'ignore-constraint']

/** The quantization a quantized cheat serves, or null for the other modes. */
export function cheatQuant (mode: CheatMode): TinyQuant | null {
  return mode === 'quantized-q8' ? 'q8_0' : mode === 'quantized-q4' ? 'q4_0' : null
}
export const IMAGE_CHEATS: readonly CheatMode[] = ['wrong-seed', 'blank']

export function parseCheatMode (value: string): CheatMode {
  if (!(CHEAT_MODES as readonly string[]).includes(value)) throw usageError('VALIDATION_BAD_CHEAT', `--cheat must be one of ${CHEAT_MODES.join(', ')}, got ${JSON.stringify(value)}`)
  return value as CheatMode
}

/** Refuses cheating anywhere but a devnet (chain id 31337, the embedded EDR chain, or no chain). */
export function assertCheatAllowed (mode: CheatMode, chainId: number | bigint | null): void {
  if (chainId !== null && BigInt(chainId) !== 31337n) {
    throw usageError('VALIDATION_CHEAT_REFUSED', `--cheat ${mode} is a testing aid for the devnet only; this chain has id ${chainId}`)
  }
}

/** What the cheats need: the LLM engine, the image models, and the honest executor for jobs the mode leaves alone. */
export interface CheatEngines {
  llm: LlamaEngine | null
  images: Map<string, ImageModel>
  models: ModelInfo[]
  honest: JobExecutor
}

export function cheatingExecutor (mode: CheatMode, e: CheatEngines): JobExecutor {
  return {
    models: () => e.models,
    async execute (job, o): Promise<JobOutput> {
      if (job.kind === 'llm') {
        const llm = e.llm
        if (llm === null || !LLM_CHEATS.includes(mode)) return await e.honest.execute(job, o)
        const s = job.sampling
        switch (mode) {
          case 'ignore-constraint':
            if (job.constraint === undefined) return await e.honest.execute(job, o)
            // no grammar, same sampling: the text looks like the model's own, but not its schema
            return { kind: 'llm', result: await llm.generate({ modelId: job.modelId, input: job.input, sampling: s }, { signal: o.signal, onToken: o.onToken }) }
          case 'wrong-model': {
            // another model, not a quantized copy of the claimed one (that is the quantized cheats)
            const claimedName = llm.loaded().find(m => m.id === job.modelId)?.name ?? ''
            const copies = (['q8_0', 'q4_0'] as const).map(q => quantizedSiblingName(claimedName, q))
            const other = llm.loaded().find(m => m.id !== job.modelId && !copies.includes(m.name))
            if (other === undefined) throw new HeuristError('VALIDATION_CHEAT_UNAVAILABLE', 'wrong-model needs a second LLM loaded (the built-in tiny-llama-b)')
            return { kind: 'llm', result: await llm.generate({ modelId: other.id, input: job.input, sampling: s }, { signal: o.signal, onToken: o.onToken }) }
          }
          case 'quantized-q8':
          case 'quantized-q4': {
            const claimed = llm.loaded().find(m => m.id === job.modelId)
            const want = claimed === undefined ? null : quantizedSiblingName(claimed.name, cheatQuant(mode)!)
            const sibling = llm.loaded().find(m => m.name === want)
            if (sibling === undefined) throw new HeuristError('VALIDATION_CHEAT_UNAVAILABLE', `${mode} needs the quantized copy of the claimed model loaded (${want ?? 'unknown model'})`)
            return { kind: 'llm', result: await llm.generate({ modelId: sibling.id, input: job.input, sampling: s }, { signal: o.signal, onToken: o.onToken }) }
          }
          case 'high-temperature':
            return { kind: 'llm', result: await llm.generate({ modelId: job.modelId, input: job.input, sampling: { ...s, temperature: Math.min(10, Math.max(1.5, 2 * s.temperature)) } }, { signal: o.signal, onToken: o.onToken }) }
          case 'truncate': {
            const r = await llm.generate({ modelId: job.modelId, input: job.input, sampling: { ...s, maxTokens: Math.max(1, Math.floor(s.maxTokens / 2)) } }, { signal: o.signal, onToken: o.onToken })
            return { kind: 'llm', result: { ...r, finishReason: 'stop' } }
          }
          default: {
            // random printable bytes, tokenized by the claimed model so the tokens are well formed
            const chars = Array.from({ length: s.maxTokens }, () => String.fromCharCode(randomInt(32, 127))).join('')
            const tokens = llm.tokenize(job.modelId, chars).slice(0, s.maxTokens)
            const text = llm.detokenize(job.modelId, tokens)
            o.onToken?.(text, tokens.at(-1) ?? 0)
            return { kind: 'llm', result: { text, tokens, finishReason: 'length', usage: { promptTokens: 0, outputTokens: tokens.length, ttftMs: 1, tokensPerSecond: 1e6, totalMs: 1 } } }
          }
        }
      }
      if (job.kind === 'embedding') {
        const llm = e.llm
        if (llm === null || mode !== 'wrong-embedding') return await e.honest.execute(job, o)
        // another loaded model's vectors (when one has the same dimension), else random unit vectors
        const honest = await llm.embed(job.modelId, job.input, { signal: o.signal })
        const dims = honest.vectors[0]?.length ?? 0
        for (const other of llm.loaded().filter(m => m.id !== job.modelId)) {
          const v = await llm.embed(other.id, job.input, { signal: o.signal }).catch(() => null)
          if (v !== null && v.vectors[0]?.length === dims) return { kind: 'embedding', result: { vectors: v.vectors, promptTokens: honest.promptTokens } }
        }
        const vectors = honest.vectors.map(x => { const r = Float32Array.from(x, () => randomInt(0, 2 ** 16) / 2 ** 15 - 1); const n = Math.hypot(...r); return r.map(y => y / n) })
        return { kind: 'embedding', result: { vectors, promptTokens: honest.promptTokens } }
      }
      const model = e.images.get(job.modelId)
      if (model === undefined || !IMAGE_CHEATS.includes(mode)) return await e.honest.execute(job, o)
      if (mode === 'wrong-seed') {
        const g = await model.generate({ modelId: job.modelId, ...job.image, seed: (job.image.seed + 1) % 2 ** 32 }, { signal: o.signal, onProgress: o.onProgress })
        return { kind: 'image', result: { png: g.png, pixelSha256: g.pixelSha256, width: g.width, height: g.height, ms: g.ms, threads: g.threads, optimizationLevel: g.optimizationLevel } }
      }
      const { width, height } = job.image
      const pixels = new Uint8Array(width * height * 3)
      const png = new Uint8Array(await sharp(pixels, { raw: { width, height, channels: 3 } }).png().toBuffer())
      return { kind: 'image', result: { png, pixelSha256: pixelSha256(pixels), width, height, ms: 1, threads: 1, optimizationLevel: 'basic' } }
    }
  }
}
