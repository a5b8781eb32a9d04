import { createHash } from 'node:crypto'
import { z } from 'zod'
import { HeuristError } from '../core/errors.js'
import { isNormalSchema } from '../inference/constraint.js'

/**
 * Wire messages of the mesh: gossip payloads (capacity adverts, receipts) and the frames of
 * the `/heurist/job/1.0.0` stream. Each has a version, a zod schema and a size bound, and is
 * decoded by a total function: any bytes give either a typed value or a HeuristError with a
 * `P2P_*` code, never a crash. Encoding is UTF-8 JSON (bigints as decimal strings).
 */

export const PROTOCOL_VERSION = 1
export const JOB_PROTOCOL = '/heurist/job/1.0.0'
export const TOPICS = {
  capacity: 'heurist/1/capacity',
  receipts: 'heurist/1/receipts',
  demand: 'heurist/1/demand',
  /** Validators' co-signatures of epoch reward roots, with the leaves (src/rewards). */
  rewards: 'heurist/1/rewards'
} as const

/**
 * Verdicts are gossiped on VERDICT_SHARDS topics, `heurist/1/verdicts/<shard>`, the shard
 * chosen by the judged miner's address (first two bytes of sha256 of the lowercase 0x-address,
 * modulo the count). A miner subscribes to its own shard only (a 256th of the verdicts);
 * validators and the epochs service to all. The gossip validator rejects a verdict published
 * on another shard than its miner's (validateVerdictGossip). Changing the count is a protocol
 * change: nodes on different counts do not hear each other's verdicts.
 */
export const VERDICT_SHARDS = 256
const VERDICTS_PREFIX = 'heurist/1/verdicts/'
const evmAddress = /^0x[0-9a-fA-F]{40}$/

/** The shard (0 … VERDICT_SHARDS − 1) of a miner's verdicts. Throws on a string that is not an address. */
export function verdictShard (miner: string): number {
  if (!evmAddress.test(miner)) throw new HeuristError('P2P_BAD_ADDRESS', `not an EVM address: ${miner.slice(0, 64)}`)
  return createHash('sha256').update(miner.toLowerCase()).digest().readUInt16BE(0) % VERDICT_SHARDS
}

/** The topic verdicts on this miner's receipts are published on. */
export function verdictTopic (miner: string): string {
  return VERDICTS_PREFIX + String(verdictShard(miner))
}

/** Every verdict topic, shard 0 first: what a validator or the epochs service subscribes to. */
export function allVerdictTopics (): string[] {
  return Array.from({ length: VERDICT_SHARDS }, (_, i) => VERDICTS_PREFIX + String(i))
}

/** Whether a topic is one of the verdict shards. */
export function isVerdictTopic (topic: string): boolean {
  if (!topic.startsWith(VERDICTS_PREFIX)) return false
  const rest = topic.slice(VERDICTS_PREFIX.length)
  return /^(0|[1-9][0-9]{0,2})$/.test(rest) && Number(rest) < VERDICT_SHARDS
}

/** Size bounds, in bytes, of each message kind (checked before parsing). */
export const MAX_BYTES = {
  /** An advert lists at most 32 models and 16 addresses: 16 KiB is ample. */
  advert: 16 * 1024,
  receipt: 4 * 1024,
  /** A request carries the prompt (chat history): 256 KiB. */
  request: 256 * 1024,
  /** Any other frame; a result may carry a PNG (base64). */
  frame: 8 * 1024 * 1024
} as const

const hex32 = z.string().regex(/^0x[0-9a-f]{64}$/, '0x + 64 lowercase hex digits')
const modelId = z.string().regex(/^[0-9a-f]{64}$/, 'a sha256 model id (64 lowercase hex digits)')
const address = z.string().regex(/^0x[0-9a-fA-F]{40}$/, 'an EVM address')
const uintString = z.string().regex(/^(0|[1-9][0-9]{0,77})$/, 'a decimal unsigned integer')
const nonNeg = z.number().finite().min(0)
const int = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER)

export const modelAdvertSchema = z.object({
  id: modelId,
  name: z.string().max(128),
  kind: z.enum(['llm', 'image']),
  contextSize: int,
  /** The model's weight in compute units (GiB of memory, rounded up; economics/compute-units); absent = 1. */
  weightGib: z.number().int().min(1).max(1024).optional()
}).strict()

export const hardwareSchema = z.object({
  gpus: z.array(z.object({
    name: z.string().max(128),
    vramTotal: int,
    vramFree: int,
    /** Per-GPU capacity (absent in adverts from before it): the GPU's index on the miner, */
    index: z.number().int().min(0).max(255).optional(),
    /** the bytes of its memory budget not yet placed (at most vramTotal), */
    budgetFree: int.optional(),
    /** and the models placed on it, as indices into the advert's `models`. */
    models: z.array(z.number().int().min(0).max(31)).max(32).optional()
  }).strict()).max(16),
  cpuCores: int,
  ramBytes: int
}).strict()
export type Hardware = z.infer<typeof hardwareSchema>

export const advertSchema = z.object({
  v: z.literal(PROTOCOL_VERSION),
  type: z.literal('capacity'),
  operator: address,
  /** Monotonic per operator (ms clock): a replayed or older advert is ignored. */
  seq: int,
  /** Publisher's clock, unix ms. */
  ts: int,
  ttlMs: z.number().int().min(1000).max(10 * 60_000),
  hardware: hardwareSchema,
  models: z.array(modelAdvertSchema).max(32),
  queueDepth: int,
  maxJobs: z.number().int().min(0).max(10_000),
  /** Measured speed; 0 = not measured yet. */
  tokensPerSecond: nonNeg.max(1e7),
  imagesPerSecond: nonNeg.max(1e5),
  /** Price per compute unit (economics/compute-units), in wei. */
  price: uintString,
  version: z.string().max(32),
  /** Where the miner can be dialled (the job protocol needs a connection). */
  addrs: z.array(z.string().startsWith('/').max(256)).max(16),
  /** False when the miner runs without a chain (serves unpaid). */
  paid: z.boolean()
}).strict()
export type Advert = z.infer<typeof advertSchema>

/** A receipt as it travels: the EIP-712 fields as strings plus the operator's signature. */
export const receiptWireSchema = z.object({
  jobId: hex32,
  requester: address,
  miner: address,
  modelId: hex32,
  pool: z.number().int().min(0).max(255),
  inputHash: hex32,
  outputHash: hex32,
  paramsHash: hex32,
  computeUnits: uintString,
  startedAt: uintString,
  endedAt: uintString
}).strict()
export type ReceiptWire = z.infer<typeof receiptWireSchema>

export const signedReceiptSchema = z.object({
  receipt: receiptWireSchema,
  signature: z.string().regex(/^0x[0-9a-fA-F]{130}$/, 'a 65-byte signature')
}).strict()
export type SignedReceipt = z.infer<typeof signedReceiptSchema>

export const receiptMessageSchema = z.object({
  v: z.literal(PROTOCOL_VERSION),
  type: z.literal('receipt'),
  signed: signedReceiptSchema,
  /** The chain id and contract of the EIP-712 domain the receipt is signed under. */
  chainId: int,
  verifyingContract: address,
  /**
   * The requester's countersignature: the compute units it measured (and billed) for the job,
   * signed over the receipt's hash (see `countersignDigest`). Points come from these, never
   * from the miner's own `computeUnits`; a receipt without them earns no points.
   */
  measured: z.object({ units: uintString, signature: z.string().regex(/^0x[0-9a-fA-F]{130}$/, 'a 65-byte signature') }).strict().optional()
}).strict()
export type ReceiptMessage = z.infer<typeof receiptMessageSchema>

// ---- job stream frames ----

const chatMessage = z.object({ role: z.enum(['system', 'user', 'assistant']), content: z.string().max(MAX_BYTES.request) }).strict()
export const samplingSchema = z.object({
  seed: z.number().int().min(0).max(2 ** 32 - 1),
  temperature: z.number().finite().min(0).max(10),
  topP: z.number().finite().min(0).max(1),
  topK: z.number().int().min(0).max(100_000),
  maxTokens: z.number().int().min(1).max(32_768),
  stop: z.array(z.string().max(64)).max(8)
}).strict()

export const imageParamsSchema = z.object({
  prompt: z.string().max(4096),
  negativePrompt: z.string().max(4096),
  width: z.number().int().min(8).max(2048),
  height: z.number().int().min(8).max(2048),
  steps: z.number().int().min(1).max(200),
  guidanceScale: z.number().finite().min(0).max(50),
  seed: z.number().int().min(0).max(2 ** 32 - 1),
  scheduler: z.enum(['euler', 'ddim'])
}).strict()

const requestBase = {
  v: z.literal(PROTOCOL_VERSION),
  type: z.literal('request'),
  jobId: hex32,
  modelId,
  /** How long the miner may take, from receiving the request. */
  timeoutMs: z.number().int().min(100).max(60 * 60_000)
}
/**
 * The grammar a job's output must follow: a JSON schema already in the normal form of
 * inference/constraint.ts (bounded in size, depth and keywords), so every miner and validator
 * builds the same grammar from it. Covered by the receipt's paramsHash.
 */
export const constraintSchema = z.object({
  type: z.literal('json_schema'),
  schema: z.record(z.string(), z.unknown()).refine(isNormalSchema, 'a bounded JSON schema in normal form (inference/constraint.ts)')
}).strict()

export const llmRequestFrame = z.object({
  ...requestBase,
  kind: z.literal('llm'),
  input: z.union([z.string().max(MAX_BYTES.request), z.array(chatMessage).min(1).max(256)]),
  sampling: samplingSchema,
  constraint: constraintSchema.optional(),
  /** Report log-probabilities with this many alternatives per token (not validated; not in the receipt). */
  logprobs: z.number().int().min(0).max(20).optional()
}).strict()
export const imageRequestFrame = z.object({
  ...requestBase,
  kind: z.literal('image'),
  image: imageParamsSchema
}).strict()
/** Text to embed: at most 64 inputs of at most 32 KiB each (and the request's 256 KiB in all). */
export const embeddingRequestFrame = z.object({
  ...requestBase,
  kind: z.literal('embedding'),
  input: z.array(z.string().min(1).max(32 * 1024)).min(1).max(64)
}).strict()
export const requestFrameSchema = z.discriminatedUnion('kind', [llmRequestFrame, imageRequestFrame, embeddingRequestFrame])
export type RequestFrame = z.infer<typeof requestFrameSchema>
export type EmbeddingRequestFrame = z.infer<typeof embeddingRequestFrame>
export type LlmRequestFrame = z.infer<typeof llmRequestFrame>
export type ImageRequestFrame = z.infer<typeof imageRequestFrame>

const usageSchema = z.object({ promptTokens: int, outputTokens: int, ttftMs: nonNeg, tokensPerSecond: nonNeg, totalMs: nonNeg }).strict()

export const responseFrameSchema = z.discriminatedUnion('type', [
  z.object({ v: z.literal(PROTOCOL_VERSION), type: z.literal('accepted'), jobId: hex32, queued: int }).strict(),
  z.object({ v: z.literal(PROTOCOL_VERSION), type: z.literal('rejected'), jobId: hex32.or(z.literal('')), code: z.string().max(64), reason: z.string().max(1024) }).strict(),
  /**
   * The miner is full (all its slots running and its queue taken, or this requester holds its
   * fair share): sent at once instead of `accepted`, then the stream closes. Not a failure: the
   * requester tries again after `retryAfterMs` or elsewhere.
   */
  z.object({ v: z.literal(PROTOCOL_VERSION), type: z.literal('busy'), jobId: hex32, running: int.max(100_000), queued: int.max(100_000), capacity: int.max(100_000), retryAfterMs: z.number().int().min(0).max(60_000) }).strict(),
  z.object({ v: z.literal(PROTOCOL_VERSION), type: z.literal('token'), text: z.string().max(64 * 1024), id: z.number().int() }).strict(),
  /** Several tokens in one frame: the miner batches tokens produced within a few ms. */
  z.object({ v: z.literal(PROTOCOL_VERSION), type: z.literal('tokens'), texts: z.array(z.string().max(64 * 1024)).min(1).max(4096), ids: z.array(z.number().int()).max(4096) }).strict(),
  z.object({ v: z.literal(PROTOCOL_VERSION), type: z.literal('progress'), step: int, steps: int }).strict(),
  z.object({
    v: z.literal(PROTOCOL_VERSION),
    type: z.literal('result'),
    kind: z.literal('llm'),
    text: z.string().max(MAX_BYTES.frame),
    tokens: z.array(z.number().int()).max(65_536),
    finishReason: z.enum(['stop', 'length', 'abort']),
    /** The context (tokens) the job ran in; committed to by the receipt's outputHash. */
    contextSize: int.optional(),
    usage: usageSchema,
    logprobs: z.array(z.object({
      token: z.string().max(256),
      logprob: z.number().max(0),
      top: z.array(z.object({ token: z.string().max(256), logprob: z.number().max(0) }).strict()).max(20)
    }).strict()).max(65_536).optional()
  }).strict(),
  z.object({
    v: z.literal(PROTOCOL_VERSION),
    type: z.literal('image-result'),
    kind: z.literal('image'),
    pngBase64: z.string().max(MAX_BYTES.frame),
    pixelSha256: z.string().regex(/^[0-9a-f]{64}$/),
    width: int,
    height: int,
    ms: nonNeg
  }).strict(),
  /** One vector per input: little-endian float32, base64 (at most 16,384 dimensions). */
  z.object({
    v: z.literal(PROTOCOL_VERSION),
    type: z.literal('embedding-result'),
    kind: z.literal('embedding'),
    vectors: z.array(z.string().max(88_000)).min(1).max(64),
    promptTokens: int
  }).strict(),
  z.object({ v: z.literal(PROTOCOL_VERSION), type: z.literal('receipt'), signed: signedReceiptSchema }).strict(),
  z.object({ v: z.literal(PROTOCOL_VERSION), type: z.literal('error'), code: z.string().max(64), message: z.string().max(1024) }).strict()
])
export type ResponseFrame = z.infer<typeof responseFrameSchema>

// ---- codec ----

const utf8 = new TextDecoder('utf-8', { fatal: true })
const enc = new TextEncoder()

export function encodeMessage (value: unknown): Uint8Array {
  return enc.encode(JSON.stringify(value, (_k, v: unknown) => typeof v === 'bigint' ? v.toString() : v))
}

/**
 * Total decoder: size bound, UTF-8, JSON, version, schema. Throws HeuristError with
 * P2P_MESSAGE_TOO_LARGE, P2P_MALFORMED, P2P_BAD_VERSION or P2P_SCHEMA.
 */
export function decodeMessage<T> (bytes: Uint8Array, schema: z.ZodType<T>, maxBytes: number, what: string): T {
  if (bytes.byteLength > maxBytes) throw new HeuristError('P2P_MESSAGE_TOO_LARGE', `${what}: ${bytes.byteLength} bytes, limit ${maxBytes}`)
  let raw: unknown
  try {
    raw = JSON.parse(utf8.decode(bytes))
  } catch {
    throw new HeuristError('P2P_MALFORMED', `${what}: not UTF-8 JSON`)
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new HeuristError('P2P_MALFORMED', `${what}: not a JSON object`)
  const v = (raw as { v?: unknown }).v
  if (v !== PROTOCOL_VERSION) throw new HeuristError('P2P_BAD_VERSION', `${what}: version ${JSON.stringify(v) ?? 'missing'}, this node speaks ${PROTOCOL_VERSION}`)
  const parsed = schema.safeParse(raw)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    throw new HeuristError('P2P_SCHEMA', `${what}: ${issue === undefined ? 'invalid' : `${issue.path.join('.')}: ${issue.message}`}`)
  }
  return parsed.data
}
