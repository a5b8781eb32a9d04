import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import { randomBytes } from 'node:crypto'
import type { ServerResponse } from 'node:http'
import type { Logger } from '../core/logger.js'
import { HeuristError } from '../core/errors.js'
import type { LlmRequest, LlmResult, ImageRequest, ModelKind } from '../inference/types.js'
import type { Accounts } from './accounts.js'
import { NO_POD_SHARE, type VoucherBook, type SignedVoucher, type PodShare } from './vouchers.js'
import type { Transcripts } from './transcripts.js'
import type { AdvertisedModel, Backend, Candidate, CompletedJob, EmbeddingRequest, JobOutcome, PodResolver, RunOptions } from './types.js'
import { CircuitBreakers, type BreakerOptions } from './breaker.js'
import { rankCandidates } from './routing.js'
import { dispatch, ClientGone, CommittedFailure, type DispatchOptions, type DispatchResult } from './dispatch.js'
import { GatewayMetrics } from './metrics.js'
import { RequestQueue, type QueueOptions } from './queue.js'
import { ConnectionGuard, defaultConnectionLimits, type ConnectionLimits } from './connections.js'
import { jobFrameProblem } from './precheck.js'
import { billJob, reservationFor, type Bill, type BilledJob } from './billing.js'
import { ObservedSpeeds } from './observed.js'
import type { Reservation } from './accounts.js'
import { PAYMENT_HEADER, PAYMENT_RESPONSE_HEADER, networkOf, type PayByUser, type SignedAuthorization, type UserReservation } from './pay-by-user.js'
import {
  ApiError, badRequest, chatRequestSchema, completionRequestSchema, imageRequestSchema, parseBody, chatMessages,
  samplingFrom, parseSize, defaultRequestLimits, chatStructured, embeddingRequestSchema, type RequestLimits, type ChatRequest, type CompletionRequest
} from './openai.js'
import { checkParameters } from './parameters.js'
import { vectorToBase64 } from '../p2p/job.js'
import { planStructured, readToolAnswer, withSystem, type StructuredPlan } from './structured.js'
import { newResponseIds, outputItems, responseObject, responseUsage, responsesMessages, responsesRequestSchema, responsesStructured, type ResponsesRequest } from './responses.js'
import type { TokenLogprob } from '../inference/types.js'

export interface GatewayOptions {
  /** Address to listen on. Default 127.0.0.1: exposing a gateway is a deliberate choice. */
  host: string
  /** TCP port; 0 picks a free one. Default 8080. */
  port: number
  /**
   * Serve GET /metrics to any client. Default false: only to clients on loopback (a scraper on
   * the gateway's host), since the figures (miners, keys' traffic) are the operator's.
   */
  metricsPublic: boolean
  /** Largest request body in bytes. Default 1 MiB: a long chat fits, a flood does not. */
  bodyLimit: number
  /** Whole-request deadline in ms, retries included. Default 120 s. */
  requestTimeoutMs: number
  /** A miner that produces nothing for this long is abandoned for the next. Default 30 s. */
  firstTokenTimeoutMs: number
  /** max_tokens when the client gives none. Default 256. */
  defaultMaxTokens: number
  limits: RequestLimits
  /** PeerIds this frontend refers (routing rank 2). Default none. */
  referred: string[]
  breaker: Partial<BreakerOptions>
  /** RNG for routing ties. Default Math.random. */
  rng: () => number
  /**
   * How long a request for a pod that no miner hosts waits for one to load it; meanwhile it
   * counts as demand. Default 60 s: a pull and load of a small model (bench:pods).
   */
  coldStartTimeoutMs: number
  /** The per-model request queue (bounds, fairness, per-miner load); see queue.ts. */
  queue: Partial<QueueOptions>
  /** A client must send its whole header within this many ms. Default 10 s: slow-header clients are cut off. */
  headersTimeoutMs: number
  /** ... and its whole request (header and body) within this many ms. Default 30 s: a 1 MiB body on a slow link fits. */
  bodyTimeoutMs: number
  /** An idle keep-alive connection is closed after this many ms. Default 5 s. */
  keepAliveTimeoutMs: number
  /** TCP connections per client IP and in all; see connections.ts. */
  connections: Partial<ConnectionLimits>
  /**
   * Highest price per compute unit (wei) the gateway pays: adverts above it are never routed
   * to nor reserved for (gateway.maxPrice). Default 10^12 wei, a thousand times `heurist up`'s price.
   */
  maxPricePerUnit: bigint
  /**
   * First-output timeout for a miner the gateway has not yet seen answer, while others are left
   * to try. Default 5 s (images 3×), or three times the slowest first output a proven miner showed.
   */
  untriedFirstOutputTimeoutMs: number
  /** An untried miner silent this long gets one hedged attempt beside it. Default 1 s. */
  hedgeAfterMs: number
}

export const defaultGatewayOptions: GatewayOptions = {
  host: '127.0.0.1',
  port: 8080,
  metricsPublic: false,
  bodyLimit: 1024 * 1024,
  requestTimeoutMs: 120_000,
  firstTokenTimeoutMs: 30_000,
  defaultMaxTokens: 256,
  limits: defaultRequestLimits,
  referred: [],
  breaker: {},
  rng: Math.random,
  coldStartTimeoutMs: 60_000,
  queue: {},
  headersTimeoutMs: 10_000,
  bodyTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  connections: {},
  maxPricePerUnit: 10n ** 12n,
  untriedFirstOutputTimeoutMs: 5_000,
  hedgeAfterMs: 1_000
}

export interface GatewayComponents {
  backend: Backend
  accounts: Accounts
  logger: Logger
  /** Null: jobs are not paid with vouchers (no chain configured). */
  vouchers: VoucherBook | null
  /** Null: transcripts are not kept. */
  transcripts: Transcripts | null
  /** Called after each paid job with its new voucher: hand it to the miner. */
  onVoucher?: (miner: Candidate, voucher: SignedVoucher) => void | Promise<void>
  /** Called after each finished job: countersign and gossip its receipt. */
  onJob?: (job: CompletedJob) => void | Promise<void>
  /** Pods on chain: `model` may name one that no miner hosts yet. Default none. */
  pods?: PodResolver
  /**
   * Whether a miner may be routed to: registered and active on chain with the minimum
   * collateral (chain/eligibility.ts). Default: every miner (no chain, unpaid local use).
   */
  eligible?: (address: string) => Promise<boolean>
  /**
   * Pay-by-User: a request without an API key pays from the caller's own Payments deposit
   * (HTTP 402, then an X-PAYMENT header; pay-by-user.ts). Absent: such a request gets 401.
   */
  payByUser?: PayByUser
}

/** Who pays for a request: an API key's credits (Pay-by-Developer), or the caller's signed authorization (Pay-by-User; null: none sent yet). */
type Auth =
  | { kind: 'key', keyHash: string, accountId: string, queueKey: string }
  | { kind: 'user', payment: SignedAuthorization | null, accountId: string, queueKey: string }

/** What a job holds while it runs: `settle(0n)` frees it on failure; `user` books a Pay-by-User job. */
interface Hold { reservation: Reservation, affordable: Candidate[], user: UserReservation | null }

export interface Gateway {
  readonly url: string
  readonly port: number
  readonly metrics: GatewayMetrics
  readonly breakers: CircuitBreakers
  readonly queue: RequestQueue
  /** Connections per IP and in all. Null before start. */
  readonly connections: ConnectionGuard | null
  /** Jobs waiting or running per model id (what the gateway publishes as demand). */
  pending: () => Record<string, number>
  start: () => Promise<void>
  stop: () => Promise<void>
}

/** Embeddings are text compute: the LLM pool. */
const POOL: Record<ModelKind | 'embedding', number> = { llm: 0, image: 1, embedding: 0 }

function newId (prefix: string): string {
  return prefix + randomBytes(12).toString('hex')
}

function podIdOf (modelId: string): string {
  const hex = modelId.startsWith('0x') ? modelId.slice(2) : modelId
  return /^[0-9a-fA-F]{64}$/.test(hex) ? '0x' + hex.toLowerCase() : '0x' + '0'.repeat(64)
}

/**
 * The pod share a request pays: only when the request named a registered pod by its name
 * (`model: "<pod name>"`) and that pod is the model that ran. A request for a model by its own
 * name or id pays no pod, so registering a popular model's sha256 first takes nothing.
 */
function namedPodShare (pods: PodResolver | undefined, requested: string, modelId: string): PodShare {
  const pod = pods?.resolve(requested)
  if (pod?.deployer === undefined || pod.revenueBps === undefined || pod.name !== requested) return NO_POD_SHARE
  if (podIdOf(pod.id) !== podIdOf(modelId)) return NO_POD_SHARE
  return { deployer: pod.deployer, bps: pod.revenueBps }
}

/**
 * SSE writer over the raw response; headers go out with the first event (so a failure before
 * it can still be a plain HTTP error). Text deltas that arrive in the same turn of the event
 * loop (a mesh frame carries several tokens) go out as one chunk carrying all their text, as
 * OpenAI's format allows: one JSON build, one socket write and one client parse per batch
 * instead of per token. Any other event flushes the pending text first, so order is kept.
 */
class SseWriter {
  started = false
  private pending = ''
  private scheduled = false
  private textSent = false
  /** The serving miner, sent as x-heurist-miner with the headers (as non-streamed answers carry it). */
  miner = ''
  constructor (private readonly res: ServerResponse, private readonly requestId: string, private readonly textChunk: (text: string) => unknown = text => text, private readonly named = false) {}

  send (data: unknown): void {
    this.flushText()
    this.write(data)
  }

  /** Queues a text delta; it goes out before the next event, or at the end of this event-loop turn (the first one at once). */
  text (delta: string): void {
    if (!this.textSent) { this.textSent = true; this.send(this.textChunk(delta)); return }
    this.pending += delta
    if (this.scheduled) return
    this.scheduled = true
    setImmediate(() => { this.flushText() })
  }

  private flushText (): void {
    this.scheduled = false
    if (this.pending === '') return
    const text = this.pending
    this.pending = ''
    if (this.res.destroyed || this.res.writableEnded) return
    this.write(this.textChunk(text))
  }

  private write (data: unknown): void {
    if (!this.started) {
      this.started = true
      this.res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-request-id': this.requestId, ...(this.miner === '' ? {} : { 'x-heurist-miner': this.miner }) })
    }
    // the Responses API names each event after its `type`
    const type = this.named && typeof data === 'object' && data !== null ? (data as { type?: unknown }).type : undefined
    this.res.write(`${typeof type === 'string' ? `event: ${type}\n` : ''}data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`)
  }

  /** Ends the stream; chat and completions close with `[DONE]`, the Responses API does not. */
  end (): void {
    if (!this.named) this.send('[DONE]')
    else this.flushText()
    this.res.end()
  }
}

export function createGateway (components: GatewayComponents, init: Partial<GatewayOptions> = {}): Gateway {
  const o: GatewayOptions = { ...defaultGatewayOptions, ...init, limits: { ...defaultRequestLimits, ...init.limits } }
  const { backend, accounts, logger } = components
  const metrics = new GatewayMetrics()
  const breakers = new CircuitBreakers(o.breaker)
  const queue = new RequestQueue(metrics, o.queue)
  let guard: ConnectionGuard | null = null
  /** What the onRequest hook learned: the caller's account, and why a request failed (metrics). */
  const auths = new WeakMap<FastifyRequest, Auth>()
  const reasons = new WeakMap<object, string>()
  const observed = new ObservedSpeeds()
  const referred = new Set(o.referred)
  const pending = new Map<string, number>()
  let app: FastifyInstance | null = null
  let port = o.port

  function findModel (name: string): AdvertisedModel {
    const models = backend.models()
    const m = models.find(x => x.name === name) ?? models.find(x => x.id === name || '0x' + x.id === name)
    if (m !== undefined) return m
    const pod = components.pods?.resolve(name)
    if (pod !== undefined) return { ...pod, miners: 0 }
    throw new ApiError(404, `The model '${name}' does not exist or no miner serves it now.`, 'invalid_request_error', 'model_not_found', 'model')
  }

  /** The account the onRequest hook found for this request (authentication runs before the body is read). */
  async function authenticated (req: FastifyRequest): Promise<Auth> {
    return auths.get(req) ?? await authenticate(req)
  }

  async function authenticate (req: FastifyRequest): Promise<Auth> {
    const h = req.headers.authorization
    const key = typeof h === 'string' && /^Bearer /i.test(h) ? h.slice(7).trim() : ''
    const pay = components.payByUser
    if (key === '' && pay !== undefined) {
      // Pay-by-User: the signature is checked before the body is read; without one, the body is
      // read (bounded by bodyLimit) only to quote the price in the 402
      const x = req.headers[PAYMENT_HEADER]
      if (typeof x === 'string' && x !== '') {
        const payment = pay.verify(x)
        const payer = payment.authorization.payer.toLowerCase()
        return { kind: 'user', payment, accountId: `payer:${payer}`, queueKey: `payer:${payer}` }
      }
      return { kind: 'user', payment: null, accountId: 'payer:none', queueKey: 'payer:none' }
    }
    if (key === '') throw new ApiError(401, "You didn't provide an API key. Pass it in the Authorization header: 'Bearer YOUR_KEY'.", 'invalid_request_error', 'missing_api_key')
    const account = await accounts.lookup(key)
    if (account === undefined) throw new ApiError(401, 'Incorrect API key provided.', 'invalid_request_error', 'invalid_api_key')
    return { kind: 'key', keyHash: account.keyHash, accountId: account.id, queueKey: account.keyHash }
  }

  /**
   * Reserves the job's worst case (billing.ts, in the unit it is charged in) on the dearest
   * eligible miner the key can afford, at least on the cheapest; returns the reservation and
   * the miners it covers. One dear advert narrows a poor key's choice, it never 402s it.
   */
  async function reserve (auth: Auth, candidates: Candidate[], job: BilledJob, resource: string): Promise<Hold> {
    const need = candidates.map(c => ({ c, wei: reservationFor(job, c.weight ?? 1n, c.pricePerUnit) }))
    let max = 0n
    let min = need.length === 0 ? 0n : need[0]!.wei
    for (const n of need) { if (n.wei > max) max = n.wei; if (n.wei < min) min = n.wei }
    if (auth.kind === 'user') {
      const user = await components.payByUser!.reserve(auth.payment, max, min, resource)
      const reservation: Reservation = { amount: user.amount, settle: async () => { user.release(); return 0n } }
      return { reservation, affordable: need.filter(n => n.wei <= user.amount).map(n => n.c), user }
    }
    const keyHash = auth.keyHash
    const reservation = await accounts.reserveUpTo(keyHash, max, min)
    if (reservation === null) throw new ApiError(402, 'You have no credits left for this request; top up the account behind this API key.', 'insufficient_quota', 'insufficient_quota')
    return { reservation, affordable: need.filter(n => n.wei <= reservation.amount).map(n => n.c), user: null }
  }

  /** Miners under the price ceiling and, on a chain, registered with collateral. */
  async function eligibleOnly (model: AdvertisedModel, candidates: Candidate[]): Promise<Candidate[]> {
    const priced = candidates.filter(c => c.pricePerUnit <= o.maxPricePerUnit)
    const check = components.eligible
    const out = check === undefined
      ? priced
      : (await Promise.all(priced.map(async c => await check(c.address).catch((err: unknown) => {
          // a miner whose registration cannot be read is not routed to: unchecked is unpaid
          logger.warn({ miner: c.peerId, err: (err as Error).message }, 'cannot read the miner\'s registration; not routed to')
          return false
        }) ? c : null))).filter((c): c is Candidate => c !== null)
    if (out.length === 0 && candidates.length > 0) throw new ApiError(503, `No eligible miner serves '${model.name}' now (${candidates.length} advertise it; none registered with collateral under this gateway's price ceiling).`, 'server_error', 'no_eligible_miner', 'model')
    return out
  }

  /**
   * The miners a waiting request may use now: those of `admitted` (eligible and affordable when
   * it was admitted) still advertising the model (a dead one's advert expires), best first.
   */
  function rankFresh (modelId: string, admitted: Candidate[], kind: ModelKind): Candidate[] {
    const ok = new Map(admitted.map(c => [c.peerId, c]))
    return rank(backend.candidates(modelId).filter(c => ok.has(c.peerId)), kind)
  }

  /** Candidates best first: observed speed, a capped prior for the untried (observed.ts). */
  function rank (candidates: Candidate[], kind: ModelKind): Candidate[] {
    return rankCandidates(observed.rankSpeeds(candidates, kind), { referred, rng: o.rng })
  }

  /**
   * An untried miner's first-output wait: the configured one (three times it for images, whose
   * first output is a denoising step after loading), stretched to three times the slowest first
   * output a proven miner showed, so a loaded network does not cut off honest newcomers.
   */
  function untriedWaitMs (kind: ModelKind, firstTokenTimeoutMs: number): number {
    const base = kind === 'image' ? 3 * o.untriedFirstOutputTimeoutMs : o.untriedFirstOutputTimeoutMs
    return Math.min(firstTokenTimeoutMs, Math.max(base, 3 * observed.slowestTtftMs(kind)))
  }

  function dispatchPolicy (kind: ModelKind, firstTokenTimeoutMs: number): Pick<DispatchOptions, 'untried' | 'onFailure'> {
    return {
      untried: { is: (c) => observed.untried(c.peerId, kind), firstOutputTimeoutMs: untriedWaitMs(kind, firstTokenTimeoutMs), hedgeAfterMs: o.hedgeAfterMs },
      onFailure: (c) => { observed.failure(c.peerId, kind) }
    }
  }

  /** Bills a served job from what was measured; a receipt claiming more is not paid, and its miner is penalized. */
  function billOutcome (kind: ModelKind, job: BilledJob, served: DispatchResult<JobOutcome<unknown>>, reserved: bigint, deliveredTokens: number, endedAt: number, firstOutputAt: number | undefined): Bill {
    const c = served.candidate
    const v = served.value
    const bill = billJob({
      job, weight: c.weight ?? 1n, pricePerUnit: c.pricePerUnit, reserved, deliveredTokens, startedAt: served.startedAt, endedAt,
      claim: { units: v.computeUnits, ...(v.claimedSpan === undefined ? {} : v.claimedSpan) }
    })
    if (bill.overclaim !== null) {
      logger.warn({ miner: c.peerId, problem: bill.overclaim }, 'receipt claims more than was measured: not paid')
      breakers.failure(c.peerId)
      observed.failure(c.peerId, kind)
    } else {
      observed.success(c.peerId, kind, kind === 'llm' ? bill.outputTokens : 1, bill.ms, (firstOutputAt ?? endedAt) - served.startedAt)
    }
    return bill
  }

  function track (modelId: string, delta: number): void {
    const n = (pending.get(modelId) ?? 0) + delta
    if (n <= 0) pending.delete(modelId)
    else pending.set(modelId, n)
    metrics.inFlight.set({ model: modelId }, Math.max(0, n))
  }

  /**
   * Candidates for a model; for a pod nobody hosts yet, waits (counted as demand, which
   * miners scale up on) until a miner advertises it or `coldStartTimeoutMs` passes.
   */
  async function candidatesFor (model: AdvertisedModel, reply: FastifyReply): Promise<Candidate[]> {
    let found = backend.candidates(model.id)
    if (found.length > 0 || components.pods === undefined) return found
    const gone = clientSignal(reply).signal
    const end = Date.now() + o.coldStartTimeoutMs
    track(model.id, 1)
    try {
      while (found.length === 0 && Date.now() < end && !gone.aborted) {
        await new Promise(resolve => setTimeout(resolve, 100))
        found = backend.candidates(model.id)
      }
    } finally {
      track(model.id, -1)
    }
    if (found.length === 0) throw new ApiError(503, `No miner has loaded '${model.name}' yet; it is scaling up from zero, try again shortly.`, 'server_error', 'model_loading', 'model')
    return found
  }

  /** Client disconnect → abort signal. */
  function clientSignal (reply: FastifyReply): AbortController {
    const ac = new AbortController()
    reply.raw.on('close', () => { if (!reply.raw.writableFinished) ac.abort() })
    return ac
  }

  /**
   * Charges a served job: an API key's credits (settle), or the Pay-by-User session's booking on
   * the serving miner's channel. Returns the charge and, for Pay-by-User, the X-PAYMENT-RESPONSE.
   */
  async function charge (job: CompletedJob, hold: Hold, requested: string): Promise<{ charged: bigint, header: string | null }> {
    if (hold.user === null) return { charged: await hold.reservation.settle(job.cost), header: null }
    const r = await hold.user.commit(job.cost, { miner: job.miner.address, podId: podIdOf(job.modelId), pool: POOL[job.kind], pod: namedPodShare(components.pods, requested, job.modelId) })
    metrics.spent.inc(Number(r.charged))
    const header = Buffer.from(JSON.stringify({ success: true, network: networkOf(components.payByUser!.o.domain.chainId), payer: hold.user.payer, session: hold.user.session, charged: r.charged.toString(), spent: r.spent.toString(), maxAmount: r.maxAmount.toString() })).toString('base64')
    return { charged: r.charged, header }
  }

  /**
   * Pay-by-User: a whole answer is booked before it goes out, so its X-PAYMENT-RESPONSE says what
   * it cost; returns the charge. An API key's job is charged in `finish` (undefined here).
   */
  async function chargeBeforeReply (job: CompletedJob, hold: Hold, requested: string, reply: FastifyReply): Promise<bigint | undefined> {
    if (hold.user === null) return undefined
    const paid = await charge(job, hold, requested)
    void reply.header(PAYMENT_RESPONSE_HEADER, paid.header)
    return paid.charged
  }

  /** Pays and records a finished job; failures here are logged, the client already has its answer. */
  async function finish (job: CompletedJob, hold: Hold, requested: string, charged?: bigint): Promise<void> {
    // the voucher grows by what the key was charged: never more than its reservation.
    // A Pay-by-User job signs no voucher: the user's settlement pays the miner.
    if (charged === undefined) charged = (await charge(job, hold, requested)).charged
    try {
      if (components.vouchers !== null && charged > 0n && hold.user === null) {
        const v = await components.vouchers.raise(job.miner.address, podIdOf(job.modelId), POOL[job.kind], charged, namedPodShare(components.pods, requested, job.modelId))
        metrics.spent.inc(Number(charged))
        await components.onVoucher?.(job.miner, v)
      }
      await components.transcripts?.put({ jobId: job.receiptJobId ?? job.jobId, modelId: job.modelId, kind: job.kind, miner: job.miner.peerId, input: job.input, output: job.output, endedAt: job.endedAt })
      await components.onJob?.(job)
    } catch (e) {
      logger.error({ err: (e as Error).message, jobId: job.jobId }, 'recording a finished job failed')
    }
  }

  async function runLlm (req: FastifyRequest, reply: FastifyReply, kind: 'chat' | 'completion' | 'responses'): Promise<void> {
    const auth = await authenticated(req)
    checkParameters(kind === 'chat' ? 'chat' : kind === 'completion' ? 'completions' : 'responses', req.body)
    const resp: ResponsesRequest | null = kind === 'responses' ? parseBody(responsesRequestSchema, req.body) : null
    const body: ChatRequest | CompletionRequest = resp !== null
      ? { model: resp.model, prompt: '', max_tokens: resp.max_output_tokens, temperature: resp.temperature, top_p: resp.top_p, stream: resp.stream }
      : kind === 'chat' ? parseBody(chatRequestSchema, req.body) : parseBody(completionRequestSchema, req.body)
    const model = findModel(body.model)
    if (model.kind !== 'llm') throw badRequest(`The model '${body.model}' is an image model; use /v1/images/generations.`, 'model', 'model_not_supported')
    const sampling = samplingFrom(body, o.limits, o.defaultMaxTokens)
    const chat = kind === 'chat' ? body as ChatRequest : null
    const plan: StructuredPlan = chat !== null ? planStructured(chatStructured(chat)) : resp !== null ? planStructured(responsesStructured(resp)) : { tools: null, mode: 'none', system: null }
    if (chat !== null && chat.top_logprobs != null && chat.logprobs !== true) throw badRequest("'top_logprobs' needs 'logprobs': true.", 'top_logprobs')
    const logprobs = chat?.logprobs === true ? (chat.top_logprobs ?? 0) : undefined
    const input = chat !== null ? withSystem(chatMessages(chat), plan.system) : resp !== null ? withSystem(responsesMessages(resp), plan.system) : (() => { const p = (body as CompletionRequest).prompt; return typeof p === 'string' ? p : p[0]! })()
    const extras = { ...(plan.constraint === undefined ? {} : { constraint: plan.constraint }), ...(logprobs === undefined ? {} : { logprobs }) }
    const llmRequest: LlmRequest = { modelId: model.id, input, sampling, ...extras }
    const problem = jobFrameProblem({ kind: 'llm', modelId: model.id, input, sampling, ...extras })
    if (problem !== null) throw problem
    const candidates = await eligibleOnly(model, await candidatesFor(model, reply))
    const billed: BilledJob = { kind: 'llm', input, maxTokens: sampling.maxTokens }
    const hold = await reserve(auth, candidates, billed, req.routeOptions.url ?? '')
    const { affordable } = hold
    const settle = hold.reservation.settle
    const firstOutput = new Map<string, number>()
    const rids = newResponseIds()
    const id = kind === 'responses' ? rids.response : newId(kind === 'chat' ? 'chatcmpl-' : 'cmpl-')
    const created = Math.floor(Date.now() / 1000)
    const object = kind === 'chat' ? 'chat.completion' : 'text_completion'
    const stream = body.stream === true
    const startedAt = Date.now()
    const client = clientSignal(reply)
    let seq = 0
    /** A Responses API event, numbered in the order it is written. */
    const ev = (type: string, fields: Record<string, unknown> = {}): unknown => ({ type, sequence_number: seq++, ...fields })
    const textPos = { item_id: rids.message, output_index: 0, content_index: 0 }
    const chunk = (delta: string | null, finish: string | null, extra: Record<string, unknown> = {}): unknown => kind === 'responses'
      ? ev('response.output_text.delta', { ...textPos, delta: delta ?? '', logprobs: [] })
      : kind === 'chat'
        ? { id, object: 'chat.completion.chunk', created, model: body.model, system_fingerprint: null, choices: [{ index: 0, delta: delta === null ? {} : { content: delta }, logprobs: null, finish_reason: finish }], ...extra }
        : { id, object: 'text_completion', created, model: body.model, system_fingerprint: null, choices: [{ index: 0, text: delta ?? '', logprobs: null, finish_reason: finish }], ...extra }
    const sse = stream ? new SseWriter(reply.raw, id, text => chunk(text, null), kind === 'responses') : null
    /** Responses: the opening events, once; `message` also opens the text item. */
    let opened = false
    const openResponse = (message: boolean): void => {
      if (sse === null || resp === null || opened) return
      opened = true
      const r = responseObject(resp, rids, created, null)
      sse.send(ev('response.created', { response: r }))
      sse.send(ev('response.in_progress', { response: r }))
      if (!message) return
      sse.send(ev('response.output_item.added', { output_index: 0, item: { type: 'message', id: rids.message, status: 'in_progress', role: 'assistant', content: [] } }))
      sse.send(ev('response.content_part.added', { ...textPos, part: { type: 'output_text', text: '', annotations: [], logprobs: [] } }))
    }
    if (sse !== null) reply.hijack()
    let firstTokenAt = 0
    track(model.id, 1)
    let outcome: DispatchResult<JobOutcome<LlmResult>>
    try {
      try {
        outcome = await dispatch(queue.source({ modelId: model.id, key: auth.queueKey, rank: () => rankFresh(model.id, affordable, 'llm'), breakers, deadline: startedAt + o.requestTimeoutMs, signal: client.signal }), async (c, ctx) => {
          return await backend.runLlm(c, llmRequest, {
            signal: ctx.signal,
            onQueued: ctx.waiting,
            onToken: (text) => {
              ctx.progress()
              if (ctx.signal.aborted) return
              if (!firstOutput.has(c.peerId)) firstOutput.set(c.peerId, Date.now())
              // tool answers are JSON the gateway turns into tool calls: sent whole at the end
              if (sse === null || text === '' || plan.tools !== null) return
              if (firstTokenAt === 0) {
                firstTokenAt = Date.now()
                sse.miner = c.peerId
                metrics.ttft.observe((firstTokenAt - startedAt) / 1000)
                if (kind === 'chat') sse.send({ ...(chunk(null, null) as object), choices: [{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }] })
                openResponse(true)
              }
              sse.text(text)
            }
          })
        }, { deadline: startedAt + o.requestTimeoutMs, firstTokenTimeoutMs: o.firstTokenTimeoutMs, signal: client.signal, breakers, metrics, logger, committed: () => sse?.started === true, ...dispatchPolicy('llm', o.firstTokenTimeoutMs) })
      } catch (e) {
        await settle(0n)
        if (e instanceof ClientGone) { logger.info({ id }, 'client disconnected; job cancelled'); if (sse !== null && !reply.raw.destroyed) reply.raw.destroy(); return }
        if (sse?.started === true) {
          const err = e instanceof ApiError ? e : new ApiError(502, (e as Error).message, 'server_error', e instanceof CommittedFailure ? 'miner_failed_mid_stream' : 'miner_failed')
          sse.send(kind === 'responses' ? ev('error', { ...err.body().error }) : err.body())
          reply.raw.end()
          metrics.requests.inc({ endpoint: req.routeOptions.url ?? '', status: 'stream_error' })
          metrics.errors.inc({ endpoint: req.routeOptions.url ?? '', status: 'stream_error', reason: err.code ?? 'error' })
          return
        }
        if (sse !== null) { sendRawError(req, reply, e); return }
        throw e
      }
    } finally {
      track(model.id, -1)
    }
    const { result } = outcome.value
    const usage = { prompt_tokens: result.usage.promptTokens, completion_tokens: result.usage.outputTokens, total_tokens: result.usage.promptTokens + result.usage.outputTokens }
    metrics.tokens.inc({ direction: 'prompt' }, usage.prompt_tokens)
    metrics.tokens.inc({ direction: 'completion' }, usage.completion_tokens)
    const answer = plan.tools === null ? null : readToolAnswer(result.text)
    const calls = answer !== null && 'calls' in answer ? answer.calls : null
    const content = answer === null ? result.text : 'content' in answer ? answer.content : null
    const finishReason = result.finishReason === 'length' ? 'length' : calls !== null ? 'tool_calls' : 'stop'
    const lp = logprobs === undefined ? null : { content: deliveredLogprobs(result.logprobs ?? [], result.text).map(openAiLogprob), refusal: null }
    const endedAt = Date.now()
    const bill = billOutcome('llm', billed, outcome, hold.reservation.amount, result.tokens.length, endedAt, firstOutput.get(outcome.candidate.peerId))
    const job: CompletedJob = { jobId: id, ...(outcome.value.jobId === undefined ? {} : { receiptJobId: outcome.value.jobId }), accountId: auth.accountId, modelId: model.id, kind: 'llm', miner: outcome.candidate, input: llmRequest, output: { text: result.text, tokens: result.tokens, finishReason: result.finishReason, ...(result.contextSize === undefined ? {} : { contextSize: result.contextSize }) }, computeUnits: bill.units, cost: bill.cost, overclaim: bill.overclaim, receipt: outcome.value.receipt, startedAt, endedAt }
    // a stream's headers are gone by now: a streamed Pay-by-User job is booked in finish
    const charged = sse === null ? await chargeBeforeReply(job, hold, body.model, reply) : undefined
    if (sse !== null && resp !== null) {
      const usageR = responseUsage(usage.prompt_tokens, usage.completion_tokens)
      const items = outputItems(rids, { content, calls }, result.finishReason === 'length')
      openResponse(calls === null)
      if (calls === null) {
        const text = content ?? ''
        if (plan.tools !== null || (!sse.started && text !== '')) { if (text !== '') sse.send(chunk(text, null)) }
        sse.send(ev('response.output_text.done', { ...textPos, text, logprobs: [] }))
        sse.send(ev('response.content_part.done', { ...textPos, part: { type: 'output_text', text, annotations: [], logprobs: [] } }))
        sse.send(ev('response.output_item.done', { output_index: 0, item: items[0] }))
      } else {
        items.forEach((item, output_index) => {
          if (item.type !== 'function_call') return
          sse.send(ev('response.output_item.added', { output_index, item: { ...item, arguments: '', status: 'in_progress' } }))
          sse.send(ev('response.function_call_arguments.delta', { item_id: item.id, output_index, delta: item.arguments }))
          sse.send(ev('response.function_call_arguments.done', { item_id: item.id, output_index, arguments: item.arguments }))
          sse.send(ev('response.output_item.done', { output_index, item }))
        })
      }
      const final = responseObject(resp, rids, created, { output: items, usage: usageR, incomplete: result.finishReason === 'length' })
      sse.send(ev(result.finishReason === 'length' ? 'response.incomplete' : 'response.completed', { response: final }))
      sse.end()
    } else if (resp !== null) {
      metrics.ttft.observe((endedAt - startedAt) / 1000)
      void reply.header('x-heurist-miner', outcome.candidate.peerId).header('x-request-id', id)
      await reply.send(responseObject(resp, rids, created, { output: outputItems(rids, { content, calls }, result.finishReason === 'length'), usage: responseUsage(usage.prompt_tokens, usage.completion_tokens), incomplete: result.finishReason === 'length' }))
    } else if (sse !== null) {
      if (plan.tools !== null) {
        sse.miner = outcome.candidate.peerId
        sse.send({ ...(chunk(null, null) as object), choices: [{ index: 0, delta: { role: 'assistant', content: calls === null ? '' : null }, logprobs: null, finish_reason: null }] })
        if (calls !== null) {
          // each call as OpenAI streams them: id, type and name first, then the arguments
          calls.forEach((c, index) => {
            sse.send({ ...(chunk(null, null) as object), choices: [{ index: 0, delta: { tool_calls: [{ index, id: c.id, type: 'function', function: { name: c.name, arguments: '' } }] }, logprobs: null, finish_reason: null }] })
            sse.send({ ...(chunk(null, null) as object), choices: [{ index: 0, delta: { tool_calls: [{ index, function: { arguments: c.arguments } }] }, logprobs: null, finish_reason: null }] })
          })
        } else if (content !== null && content !== '') sse.send(chunk(content, null))
      } else if (!sse.started && result.text !== '') sse.send(chunk(result.text, null)) // a backend that does not stream
      // logprobs, when asked for, come whole in one chunk before the finish (the miner reports them with its result)
      if (lp !== null) sse.send({ ...(chunk(null, null) as object), choices: [{ index: 0, delta: kind === 'chat' ? { content: '' } : {}, logprobs: lp, finish_reason: null }] })
      sse.send(chunk(null, finishReason))
      sse.send({ ...(chunk(null, null) as object), choices: [], usage })
      sse.end()
    } else {
      metrics.ttft.observe((endedAt - startedAt) / 1000)
      void reply.header('x-heurist-miner', outcome.candidate.peerId).header('x-request-id', id)
      const choice = kind === 'chat'
        ? { index: 0, message: { role: 'assistant', content, refusal: null, ...(calls === null ? {} : { tool_calls: calls.map(c => ({ id: c.id, type: 'function', function: { name: c.name, arguments: c.arguments } })) }) }, logprobs: lp, finish_reason: finishReason }
        : { index: 0, text: result.text, logprobs: null, finish_reason: finishReason }
      await reply.send({ id, object, created, model: body.model, system_fingerprint: null, choices: [choice], usage })
    }
    await finish(job, hold, body.model, charged)
  }

  function sendRawError (req: FastifyRequest, reply: FastifyReply, e: unknown): void {
    const err = toApiError(e, logger)
    reasons.set(req, err.code ?? err.type)
    if (!reply.raw.headersSent) reply.raw.writeHead(err.status, { 'content-type': 'application/json; charset=utf-8', ...err.headers })
    reply.raw.end(JSON.stringify(err.body()))
  }

  /**
   * An image or embedding job (answered whole, never streamed) through the fair queue and
   * dispatch. `firstOutput` keeps when each miner first showed output (observed speed); a
   * failed job settles its reservation at 0; a client that left ends it quietly (null).
   */
  async function dispatchWhole<T> (w: { modelId: string, queueKey: string, affordable: Candidate[], kind: ModelKind, firstMs: number, settle: (amount: bigint) => Promise<unknown>, id: string, startedAt: number, reply: FastifyReply, firstOutput: Map<string, number> }, run: (c: Candidate, options: RunOptions) => Promise<JobOutcome<T>>): Promise<DispatchResult<JobOutcome<T>> | null> {
    const client = clientSignal(w.reply)
    const deadline = w.startedAt + o.requestTimeoutMs
    track(w.modelId, 1)
    try {
      return await dispatch(queue.source({ modelId: w.modelId, key: w.queueKey, rank: () => rankFresh(w.modelId, w.affordable, w.kind), breakers, deadline, signal: client.signal }), async (c, ctx) =>
        await run(c, { signal: ctx.signal, onQueued: ctx.waiting, onToken: () => { ctx.progress(); if (!ctx.signal.aborted && !w.firstOutput.has(c.peerId)) w.firstOutput.set(c.peerId, Date.now()) } }),
      { deadline, firstTokenTimeoutMs: w.firstMs, signal: client.signal, breakers, metrics, logger, committed: () => false, ...dispatchPolicy(w.kind, w.firstMs) })
    } catch (e) {
      await w.settle(0n)
      if (e instanceof ClientGone) { logger.info({ id: w.id }, 'client disconnected; job cancelled'); return null }
      throw e
    } finally {
      track(w.modelId, -1)
    }
  }

  async function runImage (req: FastifyRequest, reply: FastifyReply): Promise<void> {
    const auth = await authenticated(req)
    checkParameters('images', req.body)
    const body = parseBody(imageRequestSchema, req.body)
    const model = findModel(body.model)
    if (model.kind !== 'image') throw badRequest(`The model '${body.model}' is a language model; use /v1/chat/completions.`, 'model', 'model_not_supported')
    const { width, height } = parseSize(body.size, o.limits)
    const steps = body.steps ?? 20
    if (steps > o.limits.maxImageSteps) throw badRequest(`steps is too large: ${steps}; this gateway allows at most ${o.limits.maxImageSteps}`, 'steps')
    const imageRequest: ImageRequest = {
      modelId: model.id,
      prompt: body.prompt,
      negativePrompt: body.negative_prompt ?? '',
      width,
      height,
      steps,
      guidanceScale: body.guidance_scale ?? 7.5,
      seed: body.seed ?? Math.floor(Math.random() * 2 ** 32),
      scheduler: body.scheduler ?? 'euler'
    }
    const { modelId: _m, ...imageParams } = imageRequest
    const problem = jobFrameProblem({ kind: 'image', modelId: model.id, image: imageParams })
    if (problem !== null) throw problem
    const candidates = await eligibleOnly(model, await candidatesFor(model, reply))
    const billed: BilledJob = { kind: 'image', image: imageRequest }
    const hold = await reserve(auth, candidates, billed, req.routeOptions.url ?? '')
    const { affordable } = hold
    const settle = hold.reservation.settle
    const firstOutput = new Map<string, number>()
    const id = newId('img-')
    const startedAt = Date.now()
    const imageFirstMs = Math.max(o.firstTokenTimeoutMs, o.requestTimeoutMs / 2)
    const outcome = await dispatchWhole({ modelId: model.id, queueKey: auth.queueKey, affordable, kind: 'image', firstMs: imageFirstMs, settle, id, startedAt, reply, firstOutput }, async (c, options) => await backend.runImage(c, imageRequest, options))
    if (outcome === null) return
    const { result } = outcome.value
    metrics.images.inc()
    const bill = billOutcome('image', billed, outcome, hold.reservation.amount, 0, Date.now(), firstOutput.get(outcome.candidate.peerId))
    const job: CompletedJob = { jobId: id, ...(outcome.value.jobId === undefined ? {} : { receiptJobId: outcome.value.jobId }), accountId: auth.accountId, modelId: model.id, kind: 'image', miner: outcome.candidate, input: imageRequest, output: { pixelSha256: result.pixelSha256, width: result.width, height: result.height, pngBase64: Buffer.from(result.png).toString('base64') }, computeUnits: bill.units, cost: bill.cost, overclaim: bill.overclaim, receipt: outcome.value.receipt, startedAt, endedAt: Date.now() }
    const charged = await chargeBeforeReply(job, hold, body.model, reply)
    void reply.header('x-heurist-miner', outcome.candidate.peerId).header('x-request-id', id)
    await reply.send({ created: Math.floor(startedAt / 1000), data: [{ b64_json: Buffer.from(result.png).toString('base64'), revised_prompt: null }] })
    await finish(job, hold, body.model, charged)
  }

  /**
   * `POST /v1/embeddings`: the texts go to a miner serving the (text) model as one embedding
   * job; the vectors come back L2-normalized, as floats or base64 float32. Billed as prompt
   * tokens with no output; validators re-embed and compare by cosine.
   */
  async function runEmbedding (req: FastifyRequest, reply: FastifyReply): Promise<void> {
    const auth = await authenticated(req)
    checkParameters('embeddings', req.body)
    const body = parseBody(embeddingRequestSchema, req.body)
    const model = findModel(body.model)
    if (model.kind !== 'llm') throw badRequest(`The model '${body.model}' is an image model; embeddings need a text model.`, 'model', 'model_not_supported')
    if (backend.runEmbedding === undefined) throw new ApiError(404, 'This gateway serves no embeddings.', 'invalid_request_error', 'unknown_url')
    const input = typeof body.input === 'string' ? [body.input] : body.input
    const request: EmbeddingRequest = { modelId: model.id, input }
    const problem = jobFrameProblem({ kind: 'embedding', modelId: model.id, input })
    if (problem !== null) throw problem
    const candidates = await eligibleOnly(model, await candidatesFor(model, reply))
    const billed: BilledJob = { kind: 'llm', input: input.join('\n'), maxTokens: 0 }
    const hold = await reserve(auth, candidates, billed, req.routeOptions.url ?? '')
    const settle = hold.reservation.settle
    const firstOutput = new Map<string, number>()
    const id = newId('emb-')
    const startedAt = Date.now()
    const outcome = await dispatchWhole({ modelId: model.id, queueKey: auth.queueKey, affordable: hold.affordable, kind: 'llm', firstMs: o.firstTokenTimeoutMs, settle, id, startedAt, reply, firstOutput },
      async (c, options) => await backend.runEmbedding!(c, request, options).then(r => { options.onToken?.(''); return r }))
    if (outcome === null) return
    const { result } = outcome.value
    if (result.vectors.length !== input.length) throw new ApiError(502, 'The miner returned another number of vectors than inputs.', 'server_error', 'miner_failed')
    metrics.tokens.inc({ direction: 'prompt' }, result.promptTokens)
    const bill = billOutcome('llm', billed, outcome, hold.reservation.amount, 0, Date.now(), firstOutput.get(outcome.candidate.peerId))
    const job: CompletedJob = { jobId: id, ...(outcome.value.jobId === undefined ? {} : { receiptJobId: outcome.value.jobId }), accountId: auth.accountId, modelId: model.id, kind: 'embedding', miner: outcome.candidate, input: request, output: { vectors: result.vectors.map(vectorToBase64) }, computeUnits: bill.units, cost: bill.cost, overclaim: bill.overclaim, receipt: outcome.value.receipt, startedAt, endedAt: Date.now() }
    const charged = await chargeBeforeReply(job, hold, body.model, reply)
    void reply.header('x-heurist-miner', outcome.candidate.peerId).header('x-request-id', id)
    const base64 = body.encoding_format === 'base64'
    await reply.send({
      object: 'list',
      data: result.vectors.map((v, index) => ({ object: 'embedding', index, embedding: base64 ? vectorToBase64(v) : Array.from(v) })),
      model: body.model,
      usage: { prompt_tokens: result.promptTokens, total_tokens: result.promptTokens }
    })
    await finish(job, hold, body.model, charged)
  }

  function build (): FastifyInstance {
    const f = Fastify({
      bodyLimit: o.bodyLimit,
      logger: false,
      return503OnClosing: true,
      forceCloseConnections: true,
      // slow clients: the header, then the whole request, must arrive in time; idle
      // keep-alives close; a silent socket outlives no request's deadline
      requestTimeout: o.bodyTimeoutMs,
      keepAliveTimeout: o.keepAliveTimeoutMs,
      connectionTimeout: o.requestTimeoutMs + o.coldStartTimeoutMs + 10_000,
      http: { headersTimeout: Math.min(o.headersTimeoutMs, o.bodyTimeoutMs), connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(o.headersTimeoutMs / 2))) }
    })
    guard = new ConnectionGuard({ ...defaultConnectionLimits, ...o.connections })
    guard.attach(f.server)
    // the API key is checked before the body is read: a stranger cannot make us buffer 1 MiB
    f.addHook('onRequest', async (req) => {
      if (!req.url.startsWith('/v1/')) return
      auths.set(req, await authenticate(req))
    })
    f.addHook('onResponse', async (req, reply) => {
      const endpoint = req.routeOptions.url ?? 'unknown'
      metrics.requests.inc({ endpoint, status: String(reply.statusCode) })
      if (reply.statusCode !== 200) metrics.errors.inc({ endpoint, status: String(reply.statusCode), reason: reasons.get(req) ?? 'unknown' })
      metrics.latency.observe({ endpoint }, reply.elapsedTime / 1000)
    })
    f.setErrorHandler(async (e, req, reply) => {
      const err = toApiError(e, logger)
      reasons.set(req, err.code ?? err.type)
      await reply.status(err.status).headers(err.headers).send(err.body())
    })
    f.setNotFoundHandler(async (req, reply) => {
      reasons.set(req, 'unknown_url')
      await reply.status(404).send(new ApiError(404, `Unknown request URL: ${req.method} ${req.url.slice(0, 200)}`, 'invalid_request_error', 'unknown_url').body())
    })
    f.get('/health', async () => {
      const models = backend.models()
      // a miner serving three models is one miner
      const miners = new Set(models.flatMap(m => backend.candidates(m.id).map(c => c.peerId)))
      return { status: 'ok', models: models.length, miners: miners.size }
    })
    f.get('/metrics', async (req, reply) => {
      if (!o.metricsPublic && !isLoopbackClient(req.socket.remoteAddress)) {
        await reply.status(403).send(new ApiError(403, 'metrics are served to clients on the gateway\'s own host only (gateway.metricsPublic = true serves everyone)', 'permission_error', 'metrics_forbidden').body())
        return
      }
      await reply.header('content-type', metrics.registry.contentType).send(await metrics.text())
    })
    f.get('/v1/models', async (req) => {
      await authenticated(req)
      return {
        object: 'list',
        data: backend.models().map(m => ({ id: m.name, object: 'model', created: 0, owned_by: 'heurist', heurist: { modelId: m.id, kind: m.kind, miners: m.miners } }))
      }
    })
    f.post('/v1/chat/completions', async (req, reply) => { await runLlm(req, reply, 'chat') })
    f.post('/v1/completions', async (req, reply) => { await runLlm(req, reply, 'completion') })
    f.post('/v1/responses', async (req, reply) => { await runLlm(req, reply, 'responses') })
    f.post('/v1/embeddings', async (req, reply) => { await runEmbedding(req, reply) })
    f.post('/v1/images/generations', async (req, reply) => { await runImage(req, reply) })
    return f
  }

  return {
    get url () { return `http://${o.host.includes(':') ? `[${o.host}]` : o.host}:${port}` },
    get port () { return port },
    metrics,
    breakers,
    queue,
    get connections () { return guard },
    pending: () => Object.fromEntries(pending),
    async start () {
      if (app !== null) return
      app = build()
      try {
        await app.listen({ host: o.host, port: o.port })
      } catch (e) {
        app = null
        const code = (e as NodeJS.ErrnoException).code
        throw new HeuristError(code === 'EADDRINUSE' ? 'GATEWAY_PORT_IN_USE' : 'GATEWAY_LISTEN_FAILED', `cannot listen on ${o.host}:${o.port}: ${(e as Error).message}`, { usage: code === 'EADDRINUSE' })
      }
      const addr = app.server.address()
      if (addr !== null && typeof addr === 'object') port = addr.port
      logger.info({ url: this.url }, 'gateway listening')
    },
    async stop () {
      const a = app
      app = null
      queue.stop()
      if (a !== null) await a.close()
    }
  }
}

/** The log-probabilities of the tokens that made the delivered text: none for a stop string's (or the grammar's end) tokens cut from it. */
function deliveredLogprobs (all: readonly TokenLogprob[], text: string): TokenLogprob[] {
  const out: TokenLogprob[] = []
  let length = 0
  for (const l of all) {
    if (length >= text.length) break
    out.push(l)
    length += l.token.length
  }
  return out
}

/** A token's log-probability as OpenAI writes it (with the UTF-8 bytes of its text). */
function openAiLogprob (l: TokenLogprob): unknown {
  const bytes = (t: string): number[] => [...Buffer.from(t, 'utf8')]
  return { token: l.token, logprob: l.logprob, bytes: bytes(l.token), top_logprobs: l.top.map(t => ({ token: t.token, logprob: t.logprob, bytes: bytes(t.token) })) }
}

/** Any error → the OpenAI-shaped error the client sees; internals are logged, not leaked. */
export function toApiError (e: unknown, logger: Logger): ApiError {
  if (e instanceof ApiError) return e
  const fe = e as { statusCode?: number, code?: string, message?: string }
  if (fe.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return new ApiError(413, 'The request body is too large.', 'invalid_request_error', 'request_too_large')
  if (fe.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return new ApiError(415, 'The request body must be JSON (Content-Type: application/json).', 'invalid_request_error', 'unsupported_media_type')
  if (fe.code === 'FST_ERR_CTP_EMPTY_JSON_BODY') return badRequest('The request body is empty; send a JSON object.', null, 'invalid_json')
  if (e instanceof SyntaxError || fe.code === 'FST_ERR_CTP_INVALID_JSON_BODY') return badRequest(`We could not parse the JSON body of your request: ${fe.message ?? ''}`, null, 'invalid_json')
  if (typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) return new ApiError(fe.statusCode, fe.message ?? 'bad request', 'invalid_request_error', fe.code ?? null)
  logger.error({ err: fe.message, code: fe.code }, 'gateway request failed')
  return new ApiError(500, 'The gateway had an internal error while serving this request.', 'server_error', 'internal_error')
}

/** 127.0.0.0/8, ::1 and their IPv4-mapped form. */
function isLoopbackClient (ip: string | undefined): boolean {
  if (ip === undefined) return false
  const l = ip.toLowerCase()
  return /^127\./.test(l) || l === '::1' || /^::ffff:127\./.test(l)
}
