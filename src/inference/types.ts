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

/**
 * A JSON schema in the subset llama.cpp grammars are built from (node-llama-cpp's
 * GbnfJsonSchema: type, properties, required, additionalProperties, items, prefixItems,
 * min/maxItems, enum, const, oneOf, $defs/$ref, string min/maxLength and format). The gateway
 * normalizes and bounds what clients send (gateway/constraints.ts); miners and validators
 * build the same grammar from it.
 */
export type JsonSchema = { [key: string]: unknown }

/** What output the sampler may produce: text that parses as JSON valid under `schema`. */
export interface OutputConstraint { type: 'json_schema', schema: JsonSchema }

/**
 * The grammar built from a schema ends the JSON with four newlines (node-llama-cpp's JSON
 * schema grammar); the engine stops there as at a stop string (the text is cut before it), and
 * validators accept that end as one.
 */
export const GRAMMAR_END = '\n\n\n\n'

/** The stop strings a job ends on: its own, and the grammar's end when it is constrained. */
export function stopStrings (stop: readonly string[], constraint: OutputConstraint | undefined): string[] {
  return constraint === undefined ? [...stop] : [...stop, GRAMMAR_END]
}

export interface LlmRequest {
  modelId: string
  /** A string is plain completion; messages use the model's own chat template. */
  input: string | ChatMessage[]
  sampling: SamplingParams
  /** Grammar the output must follow (the sampler masks every other token). Absent: free text. */
  constraint?: OutputConstraint
  /** Report each sampled token's log-probability, with this many alternatives (0..20). Absent: none. */
  logprobs?: number
}

/** One sampled token's log-probability under the miner's sampler, with the most likely alternatives. */
export interface TokenLogprob {
  token: string
  logprob: number
  top: Array<{ token: string, logprob: number }>
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
  /** When asked for (`LlmRequest.logprobs`): one per output token. The miner's report, not validated. */
  logprobs?: TokenLogprob[]
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
