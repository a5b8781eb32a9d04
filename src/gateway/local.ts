import type { ModelInfo, LlmRequest, LlmResult, GenerateOptions, ImageRequest, ImageResult, ImageOptions } from '../inference/types.js'
import { HeuristError } from '../core/errors.js'
import type { Backend, Candidate, AdvertisedModel } from './types.js'
import { imageComputeUnits, llmComputeUnits, modelWeightGib, promptUnits } from '../economics/index.js'

/**
 * A backend on engines in this process: one "miner" that is the local machine. For a
 * gateway in front of its own hardware, and for measuring the gateway against the engine
 * directly. The engines are anything with the inference surface's `generate`.
 */
export interface LocalLlmEngine {
  generate: (request: LlmRequest, options: GenerateOptions) => Promise<LlmResult>
  embed?: (modelId: string, texts: readonly string[], options: { signal?: AbortSignal }) => Promise<{ vectors: Float32Array[], promptTokens: number }>
}
export interface LocalImageEngine {
  generate: (request: ImageRequest, options: ImageOptions) => Promise<ImageResult>
}

export interface LocalBackendOptions {
  models: ModelInfo[]
  llm?: LocalLlmEngine
  image?: LocalImageEngine
  /** Shown as the miner in headers and metrics. Default 'local'. */
  peerId?: string
  /** Voucher recipient. Default the zero address. */
  address?: string
  /** Price per compute unit in wei. Default 0 (free). */
  pricePerUnit?: bigint
}

export function createLocalBackend (o: LocalBackendOptions): Backend {
  const me = (modelId: string): Candidate => ({ peerId: o.peerId ?? 'local', address: o.address ?? '0x' + '0'.repeat(40), modelLoaded: true, speed: 0, votes: 0n, uptime: 1, pricePerUnit: o.pricePerUnit ?? 0n, weight: weightOf(modelId) })
  const weightOf = (id: string): bigint => modelWeightGib(o.models.find(m => m.id === id)?.memoryBytes ?? 0)
  const served = (m: ModelInfo): boolean => m.kind === 'llm' ? o.llm !== undefined : o.image !== undefined
  return {
    models: (): AdvertisedModel[] => o.models.filter(served).map(m => ({ id: m.id, name: m.name, kind: m.kind, miners: 1 })),
    candidates: (modelId) => o.models.some(m => m.id === modelId && served(m)) ? [me(modelId)] : [],
    async runLlm (_c, request, options) {
      if (o.llm === undefined) throw new HeuristError('GATEWAY_NO_ENGINE', 'no LLM engine in this process')
      const result = await o.llm.generate(request, { signal: options.signal, onToken: (text) => { options.onToken?.(text) } })
      // in process, the engine is measured like a miner: the same units the gateway bills
      return { result, computeUnits: llmComputeUnits(weightOf(request.modelId), promptUnits(request.input), Math.min(result.tokens.length, request.sampling.maxTokens)) }
    },
    async runEmbedding (_c, request, options) {
      if (o.llm?.embed === undefined) throw new HeuristError('GATEWAY_NO_ENGINE', 'no embedding engine in this process')
      const result = await o.llm.embed(request.modelId, request.input, { signal: options.signal })
      return { result, computeUnits: llmComputeUnits(weightOf(request.modelId), promptUnits(request.input.join('\n')), 0) }
    },
    async runImage (_c, request, options) {
      if (o.image === undefined) throw new HeuristError('GATEWAY_NO_ENGINE', 'no image engine in this process')
      const result = await o.image.generate(request, { signal: options.signal, onProgress: () => { options.onToken?.('') } })
      return { result, computeUnits: imageComputeUnits(weightOf(request.modelId), request) }
    }
  }
}
