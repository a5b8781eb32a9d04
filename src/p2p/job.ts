import { randomBytes } from 'node:crypto'
import type { Connection, PeerId, Stream } from '@libp2p/interface'
import type { Wallet } from 'ethers'
import { HeuristError, isHeuristError } from '../core/errors.js'
import { addressFromPeerId } from '../core/identity.js'
import type { Logger } from '../core/logger.js'
import { POOL } from '../core/typed-data.js'
import type { ImageResult, LlmResult, ModelInfo } from '../inference/types.js'
import { FrameStream } from './frames.js'
import type { AdmitJob } from './admission.js'
import { imageComputeUnits, llmComputeUnits, modelWeightGib, promptUnits } from '../economics/index.js'
import {
  JOB_PROTOCOL, MAX_BYTES, PROTOCOL_VERSION, requestFrameSchema, responseFrameSchema,
  type EmbeddingRequestFrame, type ImageRequestFrame, type LlmRequestFrame, type RequestFrame, type ResponseFrame, type SignedReceipt
} from './messages.js'
import { hashJson, receiptSigner, sha256Hex, signReceipt, unpaidReceiptDomain, type ReceiptDomainOptions } from './receipts.js'

/**
 * The job protocol `/heurist/job/1.0.0`: length-prefixed JSON frames,
 * request → accepted | busy | rejected(code, reason) → token or progress frames → result → receipt.
 * The client keeps its writing end open while the job runs; closing or resetting it cancels
 * the job. The miner signs an EIP-712 receipt over the job's hashes.
 */

export type JobRequest = Omit<LlmRequestFrame, 'v' | 'type' | 'jobId' | 'timeoutMs'> | Omit<ImageRequestFrame, 'v' | 'type' | 'jobId' | 'timeoutMs'> | Omit<EmbeddingRequestFrame, 'v' | 'type' | 'jobId' | 'timeoutMs'>

/** Embedding vectors, L2-normalized, one per input. */
export interface EmbeddingResult { vectors: Float32Array[], promptTokens: number }

export type JobOutput = { kind: 'llm', result: LlmResult } | { kind: 'image', result: ImageResult } | { kind: 'embedding', result: EmbeddingResult }

/** A vector as it travels and is committed to: little-endian float32, base64. */
export function vectorToBase64 (v: Float32Array): string {
  const b = Buffer.alloc(v.length * 4)
  for (let i = 0; i < v.length; i++) b.writeFloatLE(v[i]!, i * 4)
  return b.toString('base64')
}

export function vectorFromBase64 (s: string): Float32Array {
  const b = Buffer.from(s, 'base64')
  const v = new Float32Array(b.length >> 2)
  for (let i = 0; i < v.length; i++) v[i] = b.readFloatLE(i * 4)
  return v
}

/** The pool a job's receipt names: embeddings are text compute, in the LLM pool. */
export function poolOf (kind: JobRequest['kind']): number {
  return POOL[kind === 'image' ? 'image' : 'llm']
}

export interface ExecuteOptions {
  signal: AbortSignal
  onToken?: (text: string, tokenId: number) => void
  onProgress?: (step: number, steps: number) => void
}

/** What the job server runs jobs on: the inference engines behind a small interface. */
export interface JobExecutor {
  /** Models this miner serves right now. */
  models: () => ModelInfo[]
  execute: (job: RequestFrame, options: ExecuteOptions) => Promise<JobOutput>
}

// ---- hashes shared by miner and client ----

export function inputHashOf (job: JobRequest | RequestFrame): string {
  if (job.kind === 'embedding') return hashJson({ kind: 'embedding', input: job.input })
  return job.kind === 'llm' ? hashJson({ kind: 'llm', input: job.input }) : hashJson({ kind: 'image', prompt: job.image.prompt, negativePrompt: job.image.negativePrompt })
}

export function paramsHashOf (job: JobRequest | RequestFrame): string {
  // a constrained job's params are the sampling and the grammar's schema: a miner cannot sign
  // a receipt for a job it ran without the constraint
  if (job.kind === 'llm') return hashJson(job.constraint === undefined ? job.sampling : { sampling: job.sampling, constraint: job.constraint })
  if (job.kind === 'embedding') return hashJson({ kind: 'embedding' })
  const { prompt: _p, negativePrompt: _n, ...params } = job.image
  return hashJson(params)
}

/**
 * What the receipt's `outputHash` commits to: exactly what the requester received. LLM: the
 * text, the token ids, the finish reason and the context size the job ran in (a validator
 * judges a `length` end against the miner's own context), so every one of them is the
 * signer's statement and a mismatch among them is the miner's fault. Image: the sha256 of
 * the delivered PNG's decoded RGB pixels (receivers decode the PNG and check it).
 */
export function outputHashOf (out: JobOutput): string {
  if (out.kind === 'image') return '0x' + out.result.pixelSha256
  if (out.kind === 'embedding') return hashJson({ kind: 'embedding', vectors: out.result.vectors.map(vectorToBase64) })
  const r = out.result
  return hashJson({ kind: 'llm', text: r.text, tokens: r.tokens, finishReason: r.finishReason, contextSize: r.contextSize ?? 0 })
}

// ---- server ----

export interface JobServerOptions {
  /** Jobs running at once. Default 1 (one model context on a small machine). */
  maxConcurrentJobs: number
  /** Accepted jobs waiting for a slot; past that (or past a requester's fair share) a request gets a `busy` reply. Default 16. */
  maxQueue: number
  /**
   * Job streams one connection may open beyond the capacity (maxConcurrentJobs + maxQueue):
   * requests not yet read and busy replies on their way out. libp2p resets streams past the
   * total, so this only bounds a stream flood; the capacity is what admits jobs. Default 32.
   */
  streamHeadroom: number
  /** Time a client has to send its request after opening the stream. Default 10 s. */
  requestTimeoutMs: number
  /** EIP-712 domain of receipts. Default chain id 0, zero address (unpaid). */
  receiptDomain: ReceiptDomainOptions
  /**
   * Tokens produced within this many ms of the last frame travel together in one frame: the
   * first token goes out at once, and a fast model does not pay one frame per token. Default 4.
   */
  tokenBatchMs: number
  /** Who is served (p2p/admission.ts): undefined serves every requester (no chain, or mine.serveUnpaid). */
  admit?: AdmitJob
}

export const defaultJobServerOptions: JobServerOptions = {
  maxConcurrentJobs: 1,
  maxQueue: 16,
  streamHeadroom: 32,
  requestTimeoutMs: 10_000,
  tokenBatchMs: 4,
  receiptDomain: unpaidReceiptDomain
}

export interface JobServerStats {
  served: number
  failed: number
  rejected: number
  /** Requests answered `busy` (full, or the requester over its fair share). */
  busy: number
  running: number
  queued: number
  /** Moving average of the last jobs' output tokens per second (0 before the first). */
  tokensPerSecond: number
  imagesPerSecond: number
}

interface Registrar {
  handle: (protocol: string, handler: (stream: Stream, connection: Connection) => void | Promise<void>, options?: { maxInboundStreams?: number, maxOutboundStreams?: number, runOnLimitedConnection?: boolean }) => Promise<void>
  unhandle: (protocol: string) => Promise<void>
}

/** Bounded FIFO semaphore. */
class Slots {
  private running = 0
  private readonly waiting: Array<() => void> = []
  constructor (private readonly max: number, private readonly maxQueue: number) {}
  get active (): number { return this.running }
  get queued (): number { return this.waiting.length }
  get full (): boolean { return this.running >= this.max && this.waiting.length >= this.maxQueue }

  async acquire (signal: AbortSignal): Promise<void> {
    if (this.running < this.max) { this.running++; return }
    await new Promise<void>((resolve, reject) => {
      const go = (): void => { signal.removeEventListener('abort', onAbort); this.running++; resolve() }
      const onAbort = (): void => {
        const i = this.waiting.indexOf(go)
        if (i >= 0) this.waiting.splice(i, 1)
        reject(new HeuristError('P2P_JOB_CANCELLED', 'cancelled while queued'))
      }
      this.waiting.push(go)
      signal.addEventListener('abort', onAbort, { once: true })
    })
  }

  release (): void {
    this.running--
    this.waiting.shift()?.()
  }
}

export class JobServer {
  private readonly o: JobServerOptions
  private readonly slots: Slots
  private readonly running = new Map<string, { done: Promise<void>, abort: AbortController }>()
  private draining = false
  private started = false
  /** Jobs each requester holds (running or queued), for the fair share. */
  private readonly held = new Map<string, number>()
  /** Moving average of a job's time in a slot, ms (for the busy reply's retry hint). */
  private jobMs = 0
  readonly stats: JobServerStats = { served: 0, failed: 0, rejected: 0, busy: 0, running: 0, queued: 0, tokensPerSecond: 0, imagesPerSecond: 0 }

  constructor (private readonly registrar: Registrar, private readonly wallet: Wallet, private readonly executor: JobExecutor, private readonly logger: Logger, init: Partial<JobServerOptions> = {}) {
    this.o = { ...defaultJobServerOptions, ...init }
    this.slots = new Slots(this.o.maxConcurrentJobs, this.o.maxQueue)
  }

  get options (): Readonly<JobServerOptions> { return this.o }
  get queueDepth (): number { return this.slots.active + this.slots.queued }
  /** Jobs this miner holds at most: running plus queued. */
  get capacity (): number { return this.o.maxConcurrentJobs + this.o.maxQueue }

  /**
   * Why a new job from `requester` cannot be taken now, or null when it can. Full: every slot
   * runs and the queue is taken. Over its fair share: with several requesters holding jobs,
   * each may hold capacity / requesters (at least the running slots), so one gateway cannot
   * keep the others out by filling the queue.
   */
  private admission (requester: string): string | null {
    if (this.slots.full || this.queueDepth >= this.capacity) return 'queue full'
    const mine = this.held.get(requester) ?? 0
    const holders = this.held.size + (mine === 0 ? 1 : 0)
    const share = Math.max(this.o.maxConcurrentJobs, Math.ceil(this.capacity / holders))
    return mine >= share ? `requester holds its fair share (${mine} of ${this.capacity})` : null
  }

  private hold (requester: string, delta: number): void {
    const n = (this.held.get(requester) ?? 0) + delta
    if (n <= 0) this.held.delete(requester)
    else this.held.set(requester, n)
  }

  /** When a slot is likely free: the queue ahead drained at the running jobs' pace. Bounded 20 ms … 5 s. */
  private retryAfterMs (): number {
    const per = this.jobMs > 0 ? this.jobMs : 500
    return Math.round(Math.min(5000, Math.max(20, per * (this.slots.queued + 1) / Math.max(1, this.o.maxConcurrentJobs))))
  }

  private busy (frames: FrameStream, jobId: string, reason: string): void {
    this.stats.busy++
    this.logger.debug({ jobId, reason }, 'busy')
    frames.write({ v: PROTOCOL_VERSION, type: 'busy', jobId, running: this.slots.active, queued: this.slots.queued, capacity: this.capacity, retryAfterMs: this.retryAfterMs() })
  }

  async start (): Promise<void> {
    if (this.started) return
    this.started = true
    await this.registrar.handle(JOB_PROTOCOL, (stream, connection) => { this.serve(stream, connection.remotePeer).catch(err => { this.logger.warn({ err }, 'job stream failed') }) }, {
      maxInboundStreams: this.capacity + this.o.streamHeadroom,
      maxOutboundStreams: 1,
      // miners behind NAT are reached over relayed (limited) connections until DCUtR upgrades them
      runOnLimitedConnection: true
    })
  }

  /**
   * Stops taking jobs (new requests get P2P_DRAINING), waits for running ones up to `graceMs`,
   * then cancels what is left. Idempotent.
   */
  async drain (graceMs: number): Promise<void> {
    this.draining = true
    const all = [...this.running.values()]
    if (all.length > 0) {
      this.logger.info({ running: all.length, graceMs }, 'waiting for running jobs')
      let timer: NodeJS.Timeout | undefined
      const late = new Promise<'late'>(resolve => { timer = setTimeout(() => { resolve('late') }, graceMs) })
      const r = await Promise.race([Promise.allSettled(all.map(a => a.done)).then(() => 'done' as const), late])
      clearTimeout(timer)
      if (r === 'late') {
        this.logger.warn({ left: this.running.size }, 'grace period over: cancelling running jobs')
        for (const a of this.running.values()) a.abort.abort(new HeuristError('P2P_DRAINING', 'miner shutting down'))
        await Promise.allSettled([...this.running.values()].map(a => a.done))
      }
    }
  }

  async stop (): Promise<void> {
    if (!this.started) return
    this.started = false
    await this.drain(0)
    await this.registrar.unhandle(JOB_PROTOCOL).catch(() => {})
  }

  private reject (frames: FrameStream, jobId: string, code: string, reason: string): void {
    this.stats.rejected++
    frames.write({ v: PROTOCOL_VERSION, type: 'rejected', jobId, code, reason })
  }

  private async serve (stream: Stream, peer: PeerId): Promise<void> {
    const frames = new FrameStream(stream, MAX_BYTES.request)
    const requester = addressFromPeerId(peer)
    const finish = async (): Promise<void> => {
      await frames.flush().catch(() => {})
      await stream.close().catch(() => { stream.abort(new Error('close failed')) })
      // a client that never closes its end must not hold one of its few stream slots
      if (stream.status === 'open' || stream.status === 'closing') setTimeout(() => { if (stream.status !== 'closed') stream.abort(new Error('client did not close')) }, 2000).unref()
    }
    if (requester === null) { this.reject(frames, '', 'P2P_BAD_KEY', 'requester key is not secp256k1'); await finish(); return }

    let timer: NodeJS.Timeout | undefined
    let request: RequestFrame | null
    try {
      const timeout = new Promise<never>((_resolve, rej) => { timer = setTimeout(() => { rej(new HeuristError('P2P_TIMEOUT', 'no request in time')) }, this.o.requestTimeoutMs) })
      request = await Promise.race([frames.next(requestFrameSchema, MAX_BYTES.request, 'job request'), timeout])
    } catch (e) {
      clearTimeout(timer)
      const code = isHeuristError(e) ? e.code : 'P2P_MALFORMED'
      if (code === 'P2P_STREAM_CLOSED') return
      this.logger.debug({ peer: peer.toString(), code }, 'bad job request')
      this.reject(frames, '', code, (e as Error).message)
      await finish()
      return
    }
    clearTimeout(timer)
    if (request === null) { await finish(); return }

    const jobId = request.jobId
    if (this.draining) { this.reject(frames, jobId, 'P2P_DRAINING', 'miner is shutting down'); await finish(); return }
    const model = this.executor.models().find(m => m.id === request.modelId)
    if (model === undefined) { this.reject(frames, jobId, 'P2P_UNKNOWN_MODEL', `model ${request.modelId} is not loaded here`); await finish(); return }
    // embeddings are served by the text models (GGUF) a miner has loaded
    if (model.kind !== (request.kind === 'embedding' ? 'llm' : request.kind)) { this.reject(frames, jobId, 'P2P_UNSUPPORTED_KIND', `model ${request.modelId} is ${model.kind}, not ${request.kind}`); await finish(); return }
    // who is served (p2p/admission.ts); awaited before the checks below, which must run in the
    // same turn as the job taking its place
    const admitted = this.o.admit === undefined ? undefined : await this.o.admit(requester, request, model)
    if (admitted !== undefined && typeof admitted !== 'function') { this.logger.info({ jobId, peer: peer.toString(), code: admitted.code, reason: admitted.reason }, 'job refused'); this.reject(frames, jobId, admitted.code, admitted.reason); await finish(); return }
    if (this.draining && admitted !== undefined) { admitted(); this.reject(frames, jobId, 'P2P_DRAINING', 'miner is shutting down'); await finish(); return }
    if (this.running.has(jobId)) { admitted?.(); this.reject(frames, jobId, 'P2P_DUPLICATE', 'job id already running'); await finish(); return }
    const full = this.admission(requester)
    if (full !== null) { admitted?.(); this.busy(frames, jobId, full); await finish(); return }

    const abort = new AbortController()
    let resolveDone!: () => void
    const done = new Promise<void>(resolve => { resolveDone = resolve })
    this.running.set(jobId, { done, abort })
    this.hold(requester, 1)
    this.stats.queued = this.slots.queued
    const deadline = setTimeout(() => { abort.abort(new HeuristError('P2P_TIMEOUT', `job over its ${request.timeoutMs} ms deadline`)) }, request.timeoutMs)
    // Anything more from the client, its end of stream, or a reset cancels the job.
    const onClose = (): void => { abort.abort(new HeuristError('P2P_JOB_CANCELLED', 'client closed the stream')) }
    let tokensSent = false
    stream.addEventListener('close', onClose)
    frames.nextBytes().then(() => { onClose() }, () => { onClose() })

    try {
      const queuedAhead = this.slots.active >= this.o.maxConcurrentJobs ? this.slots.queued + 1 : 0
      frames.write({ v: PROTOCOL_VERSION, type: 'accepted', jobId, queued: queuedAhead })
      await this.slots.acquire(abort.signal)
      // a queued job says when it starts: the requester's first-token clock runs from here
      if (queuedAhead > 0) frames.write({ v: PROTOCOL_VERSION, type: 'accepted', jobId, queued: 0 })
      let out: JobOutput
      const startedAt = Date.now()
      const slotAt = performance.now()
      let texts: string[] = []
      let ids: number[] = []
      let lastFlush = 0
      let flushTimer: NodeJS.Timeout | undefined
      const flushTokens = (): void => {
        clearTimeout(flushTimer)
        flushTimer = undefined
        if (texts.length === 0) return
        tokensSent = true
        frames.write(texts.length === 1 ? { v: PROTOCOL_VERSION, type: 'token', text: texts[0], id: ids[0] } : { v: PROTOCOL_VERSION, type: 'tokens', texts, ids })
        texts = []
        ids = []
        lastFlush = performance.now()
      }
      try {
        this.stats.running = this.slots.active
        out = await this.executor.execute(request, {
          signal: abort.signal,
          onToken: (text, id) => {
            texts.push(text)
            ids.push(id)
            if (texts.length >= 4096 || performance.now() - lastFlush >= this.o.tokenBatchMs) flushTokens()
            else flushTimer ??= setTimeout(flushTokens, this.o.tokenBatchMs)
          },
          onProgress: (step, steps) => { frames.write({ v: PROTOCOL_VERSION, type: 'progress', step, steps }) }
        })
      } finally {
        flushTokens()
        this.slots.release()
        const ms = performance.now() - slotAt
        this.jobMs = this.jobMs === 0 ? ms : 0.8 * this.jobMs + 0.2 * ms
        this.stats.running = this.slots.active
      }
      const endedAt = Date.now()
      if (abort.signal.aborted) throw abort.signal.reason
      if (out.kind === 'llm') {
        // the context the job ran in is part of the signed output (the engine reports it; else the model's)
        out = { kind: 'llm', result: { ...out.result, contextSize: out.result.contextSize ?? model.contextSize } }
        const r = out.result
        frames.write({ v: PROTOCOL_VERSION, type: 'result', kind: 'llm', text: r.text, tokens: r.tokens, finishReason: r.finishReason, contextSize: r.contextSize ?? 0, usage: r.usage, ...(r.logprobs === undefined || request.kind !== 'llm' || request.logprobs === undefined ? {} : { logprobs: r.logprobs.map(l => ({ token: l.token.slice(0, 256), logprob: Math.min(0, l.logprob), top: l.top.slice(0, request.logprobs).map(t => ({ token: t.token.slice(0, 256), logprob: Math.min(0, t.logprob) })) })) }) })
        if (r.usage.tokensPerSecond > 0) this.stats.tokensPerSecond = this.stats.tokensPerSecond === 0 ? r.usage.tokensPerSecond : 0.8 * this.stats.tokensPerSecond + 0.2 * r.usage.tokensPerSecond
      } else if (out.kind === 'embedding') {
        frames.write({ v: PROTOCOL_VERSION, type: 'embedding-result', kind: 'embedding', vectors: out.result.vectors.map(vectorToBase64), promptTokens: out.result.promptTokens })
      } else {
        const r = out.result
        frames.write({ v: PROTOCOL_VERSION, type: 'image-result', kind: 'image', pngBase64: Buffer.from(r.png).toString('base64'), pixelSha256: r.pixelSha256, width: r.width, height: r.height, ms: r.ms })
        if (r.ms > 0) this.stats.imagesPerSecond = 1000 / r.ms
      }
      // compute units (economics/compute-units): the delivered output weighted by the model's
      // memory, counted as the gateway counts them, so an honest receipt is paid in full
      const weight = modelWeightGib(model.memoryBytes)
      const signed = await signReceipt(this.wallet, {
        jobId,
        requester,
        miner: this.wallet.address,
        modelId: '0x' + request.modelId,
        pool: poolOf(request.kind),
        inputHash: inputHashOf(request),
        outputHash: outputHashOf(out),
        paramsHash: paramsHashOf(request),
        computeUnits: out.kind === 'embedding' ? llmComputeUnits(weight, promptUnits(request.kind === 'embedding' ? request.input.join('\n') : ''), 0) : out.kind === 'llm' ? llmComputeUnits(weight, promptUnits(request.kind === 'llm' ? request.input : ''), Math.min(out.result.tokens.length, request.kind === 'llm' ? request.sampling.maxTokens : 0)) : imageComputeUnits(weight, request.kind === 'image' ? request.image : { width: 0, height: 0, steps: 0 }),
        startedAt: BigInt(Math.floor(startedAt / 1000)),
        endedAt: BigInt(Math.floor(endedAt / 1000))
      }, this.o.receiptDomain)
      frames.write({ v: PROTOCOL_VERSION, type: 'receipt', signed })
      await frames.flush()
      this.stats.served++
      this.logger.info({ jobId, kind: request.kind, model: request.modelId.slice(0, 12), ms: endedAt - startedAt, ...(out.kind === 'llm' ? { tokens: out.result.usage.outputTokens } : {}) }, 'job served')
      await stream.close().catch(() => {})
    } catch (e) {
      const code = isHeuristError(e) ? e.code : 'P2P_JOB_FAILED'
      if (code === 'INFERENCE_BUSY' && !tokensSent) {
        // the engine's own queue (a pod's, shared with other work) is full: the same busy answer
        this.busy(frames, jobId, 'engine queue full')
        await finish()
        return
      }
      this.stats.failed++
      this.logger.info({ jobId, code, peer: peer.toString() }, 'job ended without a result')
      if (code !== 'P2P_JOB_CANCELLED') {
        frames.write({ v: PROTOCOL_VERSION, type: 'error', code, message: String((e as Error).message ?? e).slice(0, 1024) })
        await finish()
      } else {
        stream.abort(new Error('cancelled'))
      }
    } finally {
      clearTimeout(deadline)
      stream.removeEventListener('close', onClose)
      this.running.delete(jobId)
      this.hold(requester, -1)
      this.stats.queued = this.slots.queued
      admitted?.()
      resolveDone()
    }
  }
}

// ---- client ----

export interface RunJobOptions {
  signal?: AbortSignal
  onToken?: (text: string, tokenId: number) => void
  onProgress?: (step: number, steps: number) => void
  /** The miner accepted the job: `queued` > 0 while it waits behind others, then 0 once it runs. */
  onAccepted?: (queued: number) => void
  /** Whole job, dial included. Default 120 s. */
  timeoutMs?: number
  /** Domain the receipt must be signed under. Default chain id 0 (unpaid). */
  receiptDomain?: ReceiptDomainOptions
  /** Job id (0x + 64 hex); default random. */
  jobId?: string
}

export interface RunJobResult {
  jobId: string
  miner: string
  peerId: string
  output: JobOutput
  receipt: SignedReceipt
  /** Signed by the miner we talked to, and every field matches the job we asked for. */
  receiptValid: boolean
  /** Why the receipt is invalid, when it is. */
  receiptProblem?: string
  ttftMs: number
}

interface Dialer {
  dialProtocol: (peer: PeerId, protocols: string, options?: { signal?: AbortSignal }) => Promise<Stream>
  peerId: PeerId
}

/**
 * How far a miner's receipt times (unix seconds, its clock) may lie outside the requester's own
 * view of the job (its clock). Clocks of NTP-synced hosts agree to well under a second; 30 s
 * leaves room for a sloppy one. The bound matters on chain: Slashing refuses receipts that
 * started by the miner's last exit, so a receipt backdated past it would be unslashable.
 */
export const RECEIPT_CLOCK_SKEW_S = 30n

/** Checks a receipt against the job we asked for; returns the problem or null. */
export function checkReceipt (signed: SignedReceipt, expect: { jobId: string, requester: string, miner: string, job: JobRequest, output: JobOutput, domain?: ReceiptDomainOptions, window?: { fromS: bigint, toS: bigint } }): string | null {
  const r = signed.receipt
  const signer = receiptSigner(signed, expect.domain)
  if (signer === null) return 'signature does not parse'
  if (signer.toLowerCase() !== expect.miner.toLowerCase()) return `signed by ${signer}, not the serving miner ${expect.miner}`
  if (r.miner.toLowerCase() !== expect.miner.toLowerCase()) return 'miner field is not the serving miner'
  if (r.jobId !== expect.jobId) return 'job id differs'
  if (r.requester.toLowerCase() !== expect.requester.toLowerCase()) return 'requester differs'
  if (r.modelId !== '0x' + expect.job.modelId) return 'model id differs'
  if (r.pool !== poolOf(expect.job.kind)) return 'pool differs'
  if (r.inputHash !== inputHashOf(expect.job)) return 'input hash differs'
  if (r.paramsHash !== paramsHashOf(expect.job)) return 'params hash differs'
  if (r.outputHash !== outputHashOf(expect.output)) return 'output hash differs'
  if (BigInt(r.endedAt) < BigInt(r.startedAt)) return 'ends before it starts'
  const w = expect.window
  if (w !== undefined && (BigInt(r.startedAt) < w.fromS - RECEIPT_CLOCK_SKEW_S || BigInt(r.endedAt) > w.toS + RECEIPT_CLOCK_SKEW_S)) return `times ${r.startedAt}–${r.endedAt} lie outside the job (${w.fromS}–${w.toS}, ±${RECEIPT_CLOCK_SKEW_S} s)`
  return null
}

/**
 * Runs one job on `peer` over `/heurist/job/1.0.0`. Streams tokens (or progress) to the
 * callbacks and returns the result with the miner's receipt, checked. A rejection throws
 * P2P_JOB_REJECTED (details.code = the miner's reason code); aborting `signal` cancels the job
 * on the miner.
 */
export async function runJob (node: Dialer, peer: PeerId, job: JobRequest, options: RunJobOptions = {}): Promise<RunJobResult> {
  const miner = addressFromPeerId(peer)
  if (miner === null) throw new HeuristError('P2P_BAD_KEY', 'miner PeerId is not a secp256k1 key')
  const requester = addressFromPeerId(node.peerId)
  if (requester === null) throw new HeuristError('P2P_BAD_KEY', 'our PeerId is not a secp256k1 key')
  const timeoutMs = options.timeoutMs ?? 120_000
  const jobId = options.jobId ?? '0x' + randomBytes(32).toString('hex')
  const signal = options.signal === undefined ? AbortSignal.timeout(timeoutMs) : AbortSignal.any([options.signal, AbortSignal.timeout(timeoutMs)])
  const t0 = performance.now()
  const wallStartS = BigInt(Math.floor(Date.now() / 1000))
  let stream: Stream
  try {
    stream = await node.dialProtocol(peer, JOB_PROTOCOL, { signal })
  } catch (e) {
    throw new HeuristError('P2P_DIAL_FAILED', `cannot open a job stream to ${peer.toString()}: ${(e as Error).message}`, { cause: e })
  }
  const onAbort = (): void => { stream.abort(new Error('job cancelled by the client')) }
  signal.addEventListener('abort', onAbort, { once: true })
  const frames = new FrameStream(stream, MAX_BYTES.frame)
  const request = { v: PROTOCOL_VERSION, type: 'request', jobId, timeoutMs: Math.min(timeoutMs, 60 * 60_000), ...job } as RequestFrame
  try {
    frames.write(request)
    await frames.flush()
    let ttftMs = -1
    let output: JobOutput | undefined
    // what reached the caller's onToken: the receipt must commit to exactly this text
    let streamed = ''
    for (;;) {
      let f: ResponseFrame | null
      try {
        f = await frames.next(responseFrameSchema, MAX_BYTES.frame, 'job frame')
      } catch (e) {
        if (signal.aborted) throw new HeuristError('P2P_JOB_CANCELLED', options.signal?.aborted === true ? 'job cancelled' : `job over its ${timeoutMs} ms deadline`)
        throw e
      }
      if (f === null) throw new HeuristError('P2P_PROTOCOL', 'miner closed the stream before sending a receipt')
      switch (f.type) {
        case 'accepted': options.onAccepted?.(f.queued); break
        case 'busy': throw new HeuristError('P2P_BUSY', `miner is busy: ${f.running} running, ${f.queued} queued of ${f.capacity}`, { details: { retryAfterMs: f.retryAfterMs, running: f.running, queued: f.queued, capacity: f.capacity } })
        case 'rejected':
          // a miner from before the busy frame answered a full queue this way
          if (f.code === 'P2P_BUSY') throw new HeuristError('P2P_BUSY', `miner is busy: ${f.reason}`, { details: { retryAfterMs: 0 } })
          throw new HeuristError('P2P_JOB_REJECTED', `miner rejected the job: ${f.code}: ${f.reason}`, { details: { code: f.code } })
        case 'error': throw new HeuristError('P2P_JOB_FAILED', `miner failed the job: ${f.code}: ${f.message}`, { details: { code: f.code } })
        case 'token':
          if (ttftMs < 0) ttftMs = performance.now() - t0
          streamed += f.text
          options.onToken?.(f.text, f.id)
          break
        case 'tokens':
          if (ttftMs < 0) ttftMs = performance.now() - t0
          for (let i = 0; i < f.texts.length; i++) { streamed += f.texts[i]!; options.onToken?.(f.texts[i]!, f.ids[i] ?? -1) }
          break
        case 'progress':
          if (ttftMs < 0) ttftMs = performance.now() - t0
          options.onProgress?.(f.step, f.steps)
          break
        case 'result':
          if (job.kind !== 'llm') throw new HeuristError('P2P_PROTOCOL', 'text result for an image job')
          output = { kind: 'llm', result: { text: f.text, tokens: f.tokens, finishReason: f.finishReason, ...(f.contextSize === undefined ? {} : { contextSize: f.contextSize }), usage: f.usage, ...(f.logprobs === undefined ? {} : { logprobs: f.logprobs }) } }
          break
        case 'embedding-result':
          if (job.kind !== 'embedding') throw new HeuristError('P2P_PROTOCOL', 'embedding result for another job')
          if (f.vectors.length !== job.input.length) throw new HeuristError('P2P_PROTOCOL', `${f.vectors.length} vectors for ${job.input.length} inputs`)
          output = { kind: 'embedding', result: { vectors: f.vectors.map(vectorFromBase64), promptTokens: f.promptTokens } }
          break
        case 'image-result': {
          if (job.kind !== 'image') throw new HeuristError('P2P_PROTOCOL', 'image result for a text job')
          const png = Buffer.from(f.pngBase64, 'base64')
          output = { kind: 'image', result: { png, pixelSha256: f.pixelSha256, width: f.width, height: f.height, ms: f.ms, threads: 0, optimizationLevel: '' } }
          break
        }
        case 'receipt': {
          if (output === undefined) throw new HeuristError('P2P_PROTOCOL', 'receipt before the result')
          // streamed text that is not the result's: the caller got something the receipt does not commit to.
          // An abort the caller did not ask for: a cancelled job ends without a result (the miner
          // aborts the stream), so a result that says 'abort' is a job cut short and excused from
          // the validators' end checks (aborts are billed for what they made)
          const problem = output.kind === 'llm' && streamed !== '' && streamed !== output.result.text
            ? 'streamed text differs from the signed result'
            : output.kind === 'llm' && output.result.finishReason === 'abort'
              ? 'the miner reports an abort the requester did not ask for'
              : checkReceipt(f.signed, { jobId, requester, miner, job, output, domain: options.receiptDomain, window: { fromS: wallStartS, toS: BigInt(Math.ceil(Date.now() / 1000)) } })
          await stream.close().catch(() => {})
          return {
            jobId,
            miner,
            peerId: peer.toString(),
            output,
            receipt: f.signed,
            receiptValid: problem === null,
            ...(problem === null ? {} : { receiptProblem: problem }),
            ttftMs: ttftMs < 0 ? performance.now() - t0 : ttftMs
          }
        }
      }
    }
  } catch (e) {
    stream.abort(e instanceof Error ? e : new Error(String(e)))
    throw e
  } finally {
    signal.removeEventListener('abort', onAbort)
  }
}
