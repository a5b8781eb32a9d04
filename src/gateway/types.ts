import type { ModelKind, LlmRequest, LlmResult, ImageRequest, ImageResult } from '../inference/types.js'
import type { EmbeddingResult } from '../p2p/job.js'

/**
 * What the gateway needs from the network: which models the mesh advertises, which miners
 * can serve one, and a way to run a job on one of them. The mesh backend implements this on
 * libp2p; a local backend implements it on an in-process engine (tests, benchmarks).
 */

/** A model as the gateway lists it: `id` is the sha256 of the weights, `name` what clients send. */
export interface AdvertisedModel {
  id: string
  name: string
  kind: ModelKind
  /** How many live miners advertise it now (loaded or able to load it). */
  miners: number
}

/** One miner that can serve a model, read off its live capacity advert. */
export interface Candidate {
  /** libp2p PeerId string (the breaker and metrics key). */
  peerId: string
  /** The miner's EVM address (voucher recipient). */
  address: string
  /** The model is loaded now (no cold start). */
  modelLoaded: boolean
  /** Measured speed: tokens/s for LLMs, images/s for image models. */
  speed: number
  /** Token votes behind this miner (stHEU wei). */
  votes: bigint
  /** Share of the past this miner was up, 0..1. */
  uptime: number
  /** Price in HEU wei per compute unit (economics/compute-units). */
  pricePerUnit: bigint
  /** Jobs the miner runs at once (its advert's maxJobs); the queue keeps this gateway's load on it in proportion. */
  slots?: number
  /** The model's weight in compute units, from the miner's advert (clamped to 1..1024); absent = 1. */
  weight?: bigint
}

export interface RunOptions {
  signal: AbortSignal
  /** LLM: each piece of text as the miner produces it. */
  onToken?: (text: string) => void
  /** The miner accepted the job into its queue (true) / started it (false): no output is due while it waits. */
  onQueued?: (waiting: boolean) => void
}

/** What a miner returned for one job, with what it is paid for. */
export interface JobOutcome<R> {
  result: R
  /** Units the miner claims (its receipt's computeUnits): a claim, billed only up to what the gateway measured. */
  computeUnits: bigint
  /** The receipt's start and end, unix seconds, when there is a receipt: checked against the gateway's clock. */
  claimedSpan?: { startedAt: bigint, endedAt: bigint }
  /** The miner's signed receipt, as the transport delivered it; opaque to the HTTP layer. */
  receipt?: unknown
  /** The transport's job id (the receipt's), under which the transcript is kept for validators. */
  jobId?: string
}

/**
 * Pods on chain, so a client can name a pod (by name or id) that no miner hosts yet: the
 * gateway then counts the request as demand, which makes miners load it (scale from zero).
 */
export interface PodResolver {
  /**
   * A live (not retired) pod by name or id; undefined when there is none. `deployer` and
   * `revenueBps` are the registry's: a request that names the pod pays them (in the voucher).
   */
  resolve: (ref: string) => { id: string, name: string, kind: ModelKind, deployer?: string, revenueBps?: number } | undefined
}

export interface Backend {
  models: () => AdvertisedModel[]
  candidates: (modelId: string) => Candidate[]
  runLlm: (candidate: Candidate, request: LlmRequest, options: RunOptions) => Promise<JobOutcome<LlmResult>>
  runImage: (candidate: Candidate, request: ImageRequest, options: RunOptions) => Promise<JobOutcome<ImageResult>>
  /** Embeds texts on a text model; absent: this backend serves no embeddings. */
  runEmbedding?: (candidate: Candidate, request: EmbeddingRequest, options: RunOptions) => Promise<JobOutcome<EmbeddingResult>>
}

export interface EmbeddingRequest { modelId: string, input: string[] }

/** A finished, paid job: what the gateway records (transcript) and publishes (receipt). */
export interface CompletedJob {
  /** The HTTP response's id (chatcmpl-…). */
  jobId: string
  /** The receipt's job id when the transport has one (validators look transcripts up by it). */
  receiptJobId?: string
  accountId: string
  modelId: string
  /** Embedding jobs run on text models; their receipts are in the LLM pool. */
  kind: ModelKind | 'embedding'
  miner: Candidate
  input: unknown
  output: unknown
  /** Units paid (billing.ts): what the gateway measured, or less when the receipt asked for less; 0 for a refused receipt. */
  computeUnits: bigint
  /** Wei charged to the key and added to the miner's voucher (0 for a refused receipt). */
  cost: bigint
  /** Why the receipt's claim was refused (nothing paid), or null. */
  overclaim?: string | null
  receipt?: unknown
  startedAt: number
  endedAt: number
}
