import { z } from 'zod'
import { HeuristError } from '../core/errors.js'
import { inputHashOf, outputHashOf, paramsHashOf, vectorFromBase64, vectorToBase64, type JobOutput, type JobRequest, type SignedReceipt } from '../p2p/index.js'
// the job frame's own schemas, so a transcript accepts exactly what a job request does
import { constraintSchema, imageParamsSchema, samplingSchema } from '../p2p/messages.js'

/**
 * A transcript as validators fetch it (`/heurist/transcript/1.0.0`): the job as the gateway
 * asked for it and the output as the miner returned it. Before anything is re-run, it must
 * match the miner's receipt hash for hash; a transcript that does not blames whoever served
 * it (the gateway), never the miner, so nothing is slashed on it.
 */

export const MAX_TRANSCRIPT_BYTES = 8 * 1024 * 1024

const hex32 = z.string().regex(/^0x[0-9a-f]{64}$/)
const modelId = z.string().regex(/^[0-9a-f]{64}$/)
const chatMessage = z.object({ role: z.enum(['system', 'user', 'assistant']), content: z.string().max(256 * 1024) }).strict()

export const llmTranscriptSchema = z.object({
  v: z.literal(1),
  kind: z.literal('llm'),
  jobId: hex32,
  modelId,
  input: z.union([z.string().max(256 * 1024), z.array(chatMessage).min(1).max(256)]),
  sampling: samplingSchema,
  constraint: constraintSchema.optional(),
  output: z.object({
    text: z.string().max(4 * 1024 * 1024),
    tokens: z.array(z.number().int().min(0).max(2 ** 31 - 1)).max(65_536),
    finishReason: z.enum(['stop', 'length', 'abort']),
    /** The miner's context (tokens), as it signed it (part of the output hash). */
    contextSize: z.number().int().min(0).max(2 ** 31 - 1).optional()
  }).strict()
}).strict()

export const imageTranscriptSchema = z.object({
  v: z.literal(1),
  kind: z.literal('image'),
  jobId: hex32,
  modelId,
  image: imageParamsSchema,
  output: z.object({
    pngBase64: z.string().max(MAX_TRANSCRIPT_BYTES),
    pixelSha256: z.string().regex(/^[0-9a-f]{64}$/),
    width: z.number().int().min(1).max(4096),
    height: z.number().int().min(1).max(4096),
    /** What the miner ran with (determinism contract); defaults 1 and `basic`. */
    threads: z.number().int().min(1).max(256).optional(),
    optimizationLevel: z.enum(['disabled', 'basic', 'extended', 'all']).optional()
  }).strict()
}).strict()

export const embeddingTranscriptSchema = z.object({
  v: z.literal(1),
  kind: z.literal('embedding'),
  jobId: hex32,
  modelId,
  input: z.array(z.string().min(1).max(32 * 1024)).min(1).max(64),
  /** The vectors as the miner returned them: little-endian float32, base64 (the output hash is over these). */
  output: z.object({ vectors: z.array(z.string().max(88_000)).min(1).max(64) }).strict()
}).strict()

export const transcriptSchema = z.discriminatedUnion('kind', [llmTranscriptSchema, imageTranscriptSchema, embeddingTranscriptSchema])
export type ValidationTranscript = z.infer<typeof transcriptSchema>
export type LlmTranscript = z.infer<typeof llmTranscriptSchema>
export type ImageTranscript = z.infer<typeof imageTranscriptSchema>
export type EmbeddingTranscript = z.infer<typeof embeddingTranscriptSchema>

/** Total decoder of a transcript from outside: size bound, JSON, schema. */
export function decodeTranscript (bytes: Uint8Array): ValidationTranscript {
  if (bytes.byteLength > MAX_TRANSCRIPT_BYTES) throw new HeuristError('VALIDATION_TRANSCRIPT_TOO_LARGE', `transcript of ${bytes.byteLength} bytes, limit ${MAX_TRANSCRIPT_BYTES}`)
  let raw: unknown
  try { raw = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes)) } catch { throw new HeuristError('VALIDATION_BAD_TRANSCRIPT', 'transcript: not UTF-8 JSON') }
  const parsed = transcriptSchema.safeParse(raw)
  if (!parsed.success) {
    const i = parsed.error.issues[0]
    throw new HeuristError('VALIDATION_BAD_TRANSCRIPT', `transcript: ${i === undefined ? 'invalid' : `${i.path.join('.')}: ${i.message}`}`)
  }
  return parsed.data
}

export function jobRequestOf (t: ValidationTranscript): JobRequest {
  if (t.kind === 'embedding') return { kind: 'embedding', modelId: t.modelId, input: t.input }
  return t.kind === 'llm'
    ? { kind: 'llm', modelId: t.modelId, input: t.input, sampling: t.sampling, ...(t.constraint === undefined ? {} : { constraint: t.constraint }) }
    : { kind: 'image', modelId: t.modelId, image: t.image }
}

/** Builds the transcript of a job a miner ran (gateway side, and tests). */
export function transcriptOf (jobId: string, request: JobRequest, out: JobOutput): ValidationTranscript {
  if (request.kind === 'llm' && out.kind === 'llm') {
    const r = out.result
    return { v: 1, kind: 'llm', jobId, modelId: request.modelId, input: request.input, sampling: request.sampling, ...(request.constraint === undefined ? {} : { constraint: request.constraint }), output: { text: r.text, tokens: r.tokens, finishReason: r.finishReason, ...(r.contextSize === undefined ? {} : { contextSize: r.contextSize }) } }
  }
  if (request.kind === 'embedding' && out.kind === 'embedding') {
    return { v: 1, kind: 'embedding', jobId, modelId: request.modelId, input: request.input, output: { vectors: out.result.vectors.map(vectorToBase64) } }
  }
  if (request.kind === 'image' && out.kind === 'image') {
    return { v: 1, kind: 'image', jobId, modelId: request.modelId, image: request.image, output: { pngBase64: Buffer.from(out.result.png).toString('base64'), pixelSha256: out.result.pixelSha256, width: out.result.width, height: out.result.height, threads: out.result.threads, optimizationLevel: out.result.optimizationLevel as 'basic' } }
  }
  throw new HeuristError('VALIDATION_KIND_MISMATCH', `a ${request.kind} job with a ${out.kind} output`)
}

/**
 * Why the transcript does not match the receipt, or null when it does: job id, model, input,
 * params and output hashes (the output hash is over text, token ids, finish reason and context
 * size for LLMs, the pixel hash for images: see `outputHashOf`).
 */
export function transcriptMismatch (t: ValidationTranscript, signed: SignedReceipt): string | null {
  const r = signed.receipt
  if (t.jobId !== r.jobId) return 'job id differs'
  if ('0x' + t.modelId !== r.modelId) return 'model id differs'
  const req = jobRequestOf(t)
  if (inputHashOf(req) !== r.inputHash) return 'input hash differs'
  if (paramsHashOf(req) !== r.paramsHash) return 'params hash differs'
  const out: JobOutput = t.kind === 'embedding'
    ? { kind: 'embedding', result: { vectors: t.output.vectors.map(vectorFromBase64), promptTokens: 0 } }
    : t.kind === 'llm'
    ? { kind: 'llm', result: { ...t.output, usage: { promptTokens: 0, outputTokens: 0, ttftMs: 0, tokensPerSecond: 0, totalMs: 0 } } }
    : { kind: 'image', result: { png: new Uint8Array(0), pixelSha256: t.output.pixelSha256, width: t.output.width, height: t.output.height, ms: 0, threads: 1, optimizationLevel: 'basic' } }
  if (outputHashOf(out) !== r.outputHash) return 'output hash differs'
  return null
}
