/**
 * The inference surface other areas (p2p, gateway, validation) program against. The llama
 * engine (node-llama-cpp) and the image engine (onnxruntime-node) implement these.
 */

export type ModelKind = 'llm' | 'image'

/** A model as the network names it: `id` is the sha256 (hex) of its weights. */
export interface ModelInfo {
  id: string
  name: string
  kind: ModelKind
  /** Context size in tokens (llm) or 0 (image). */
  contextSize: number
  /** Estimated memory need in bytes, for scheduling and points weighting. */
  memoryBytes: number
}

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant'
  content: string
}

export interface SamplingParams {
  /** Seed of the sampler; the same seed, model and params give the same text on the same build. */
  seed: number
  /** 0 = greedy. */
  temperature: number
  topP: number
  /** 0 = off. */
  topK: number
  maxTokens: number
  stop: string[]
}

export const defaultSamplingParams: SamplingParams = { seed: 0, temperature: 0.8, topP: 0.95, topK: 40, maxTokens: 256, stop: [] }

export interface LlmRequest {
  modelId: string
  /** A string is plain completion; messages use the model's own chat template. */
  input: string | ChatMessage[]
  sampling: SamplingParams
}

export interface LlmUsage {
  promptTokens: number
  outputTokens: number
  ttftMs: number
  tokensPerSecond: number
  totalMs: number
}

export interface LlmResult {
  text: string
  /** Token ids of the output, for validators that teacher-force them. */
  tokens: number[]
  finishReason: 'stop' | 'length' | 'abort'
  /** The context (tokens) the job ran in: with the prompt, it bounds a `length` finish. Part of what the receipt commits to. */
  contextSize?: number
  usage: LlmUsage
}

export interface GenerateOptions {
  signal?: AbortSignal
  /** Called for each piece of text as it is produced. */
  onToken?: (text: string, tokenId: number) => void
}

export interface ImageRequest {
  modelId: string
  prompt: string
  negativePrompt: string
  width: number
  height: number
  steps: number
  guidanceScale: number
  seed: number
  scheduler: 'euler' | 'ddim'
}

export interface ImageResult {
  png: Uint8Array
  /** sha256 (hex) of the decoded RGB pixels: the output's identity (PNG encoders differ). */
  pixelSha256: string
  width: number
  height: number
  ms: number
  /** Determinism contract: what produced these bits. */
  threads: number
  optimizationLevel: string
}

export interface ImageOptions {
  signal?: AbortSignal
  onProgress?: (step: number, steps: number) => void
}
