import type { EmbeddingResult, HeuristNode, MinerEntry, ReceiptDomainOptions, RunJobResult } from '../p2p/index.js'
import { HeuristError } from '../core/errors.js'
import type { Logger } from '../core/logger.js'
import type { ImageResult, LlmResult } from '../inference/types.js'
import { deliveredPixels } from '../inference/index.js'
import type { AdvertisedModel, Backend, Candidate, JobOutcome, RunOptions } from './types.js'
import { clampWeight } from '../economics/index.js'

/**
 * The gateway's backend on the libp2p mesh: models and candidates come from the live
 * capacity adverts in the node's peer table; jobs run over `/heurist/job/1.0.0`. A result
 * whose receipt is not valid (wrong signer, hashes that do not match what we asked for)
 * counts as a failed attempt: it is not paid and the next miner is tried.
 */
export interface MeshBackendOptions {
  /** EIP-712 domain receipts must be signed under (Slashing on a chain; chain id 0 unpaid). */
  receiptDomain?: ReceiptDomainOptions
  /** Window over which uptime is measured for routing. Default 24 h. */
  uptimeWindowMs: number
  /** How often the uptime cache is refreshed from the store. Default 10 s. */
  uptimeRefreshMs: number
  /** Token votes behind a miner (stHEU wei); default none (no chain). */
  votes?: (address: string) => bigint
  /** Per-job limit handed to the miner, in ms. Default 120 s. */
  jobTimeoutMs: number
}

export const defaultMeshBackendOptions: MeshBackendOptions = { uptimeWindowMs: 24 * 3600_000, uptimeRefreshMs: 10_000, jobTimeoutMs: 120_000 }

export interface MeshBackend extends Backend {
  /** Starts and stops the uptime cache refresh. */
  start: () => void
  stop: () => void
}

export function createMeshBackend (node: HeuristNode, logger: Logger, init: Partial<MeshBackendOptions> = {}): MeshBackend {
  const o: MeshBackendOptions = { ...defaultMeshBackendOptions, ...init }
  const uptime = new Map<string, number>()
  let timer: NodeJS.Timeout | null = null

  async function refreshUptime (): Promise<void> {
    for (const e of node.peerTable.miners()) uptime.set(e.address.toLowerCase(), await node.peerTable.uptime(e.address, o.uptimeWindowMs))
  }

  function toCandidate (e: MinerEntry, modelId: string): Candidate {
    const m = e.advert.models.find(x => x.id === modelId)
    const speed = m?.kind === 'image' ? e.advert.imagesPerSecond : e.advert.tokensPerSecond
    return {
      peerId: e.peerId,
      address: e.address,
      modelLoaded: m !== undefined,
      speed,
      votes: o.votes?.(e.address) ?? 0n,
      uptime: uptime.get(e.address.toLowerCase()) ?? 0,
      pricePerUnit: BigInt(e.advert.price),
      slots: e.advert.maxJobs,
      weight: clampWeight(m?.weightGib)
    }
  }

  async function run (c: Candidate, job: Parameters<HeuristNode['runJob']>[1], options: RunOptions): Promise<RunJobResult> {
    const r = await node.runJob(c.peerId, job, {
      signal: options.signal,
      timeoutMs: o.jobTimeoutMs,
      ...(o.receiptDomain === undefined ? {} : { receiptDomain: o.receiptDomain }),
      onToken: (text) => { options.onToken?.(text) },
      onAccepted: (queued) => { options.onQueued?.(queued > 0) },
      onProgress: () => { options.onToken?.('') }
    })
    if (!r.receiptValid) {
      logger.warn({ miner: c.peerId, problem: r.receiptProblem }, 'miner returned an invalid receipt; not paid')
      throw new HeuristError('GATEWAY_BAD_RECEIPT', `invalid receipt from ${c.peerId}: ${r.receiptProblem ?? ''}`)
    }
    return r
  }

  return {
    models () {
      const byId = new Map<string, AdvertisedModel>()
      for (const e of node.peerTable.miners()) {
        for (const m of e.advert.models) {
          const cur = byId.get(m.id)
          if (cur === undefined) byId.set(m.id, { id: m.id, name: m.name === '' ? m.id : m.name, kind: m.kind, miners: 1 })
          else cur.miners++
        }
      }
      return [...byId.values()]
    },
    candidates: (modelId) => node.peerTable.miners(modelId).map(e => toCandidate(e, modelId)),
    async runLlm (c, request, options): Promise<JobOutcome<LlmResult>> {
      const job = { kind: 'llm' as const, modelId: request.modelId, input: request.input, sampling: request.sampling, ...(request.constraint === undefined ? {} : { constraint: request.constraint }), ...(request.logprobs === undefined ? {} : { logprobs: request.logprobs }) }
      const r = await run(c, job, options)
      if (r.output.kind !== 'llm') throw new HeuristError('GATEWAY_BAD_RESULT', 'image result for a text job')
      // the signed context must be the one the miner advertised (a smaller one would excuse a short `length` end)
      const advertised = node.peerTable.miners(request.modelId).find(e => e.peerId === c.peerId)?.advert.models.find(m => m.id === request.modelId)?.contextSize
      if (advertised !== undefined && r.output.result.contextSize !== advertised) {
        logger.warn({ miner: c.peerId, signed: r.output.result.contextSize, advertised }, 'miner signed another context size than it advertises; not paid')
        throw new HeuristError('GATEWAY_BAD_RECEIPT', `miner ${c.peerId} signed context ${String(r.output.result.contextSize)}, advertises ${advertised}`)
      }
      return { result: r.output.result, computeUnits: BigInt(r.receipt.receipt.computeUnits), claimedSpan: { startedAt: BigInt(r.receipt.receipt.startedAt), endedAt: BigInt(r.receipt.receipt.endedAt) }, receipt: r, jobId: r.jobId }
    },
    async runEmbedding (c, request, options): Promise<JobOutcome<EmbeddingResult>> {
      const r = await run(c, { kind: 'embedding' as const, modelId: request.modelId, input: request.input }, options)
      if (r.output.kind !== 'embedding') throw new HeuristError('GATEWAY_BAD_RESULT', 'another result for an embedding job')
      const dims = r.output.result.vectors[0]?.length ?? 0
      if (dims === 0 || r.output.result.vectors.some(v => v.length !== dims || v.some(x => !Number.isFinite(x)))) throw new HeuristError('GATEWAY_BAD_RESULT', `miner ${c.peerId} returned malformed vectors`)
      return { result: r.output.result, computeUnits: BigInt(r.receipt.receipt.computeUnits), claimedSpan: { startedAt: BigInt(r.receipt.receipt.startedAt), endedAt: BigInt(r.receipt.receipt.endedAt) }, receipt: r, jobId: r.jobId }
    },
    async runImage (c, request, options): Promise<JobOutcome<ImageResult>> {
      const { modelId, ...image } = request
      const job = { kind: 'image' as const, modelId, image }
      const r = await run(c, job, options)
      if (r.output.kind !== 'image') throw new HeuristError('GATEWAY_BAD_RESULT', 'text result for an image job')
      // the receipt commits to a pixel hash: it must be the delivered PNG's, not the miner's word
      const got = await deliveredPixels(r.output.result.png)
      if (got === null || got.pixelSha256 !== r.output.result.pixelSha256 || got.width !== r.output.result.width || got.height !== r.output.result.height) {
        logger.warn({ miner: c.peerId }, 'delivered PNG does not match the signed pixel hash; not paid')
        throw new HeuristError('GATEWAY_BAD_RECEIPT', `the PNG from ${c.peerId} does not decode to the pixels its receipt signs`)
      }
      return { result: r.output.result, computeUnits: BigInt(r.receipt.receipt.computeUnits), claimedSpan: { startedAt: BigInt(r.receipt.receipt.startedAt), endedAt: BigInt(r.receipt.receipt.endedAt) }, receipt: r, jobId: r.jobId }
    },
    start () {
      if (timer !== null) return
      const tick = (): void => { refreshUptime().catch(err => { logger.debug({ err }, 'uptime refresh failed') }) }
      tick()
      timer = setInterval(tick, o.uptimeRefreshMs)
      timer.unref()
    },
    stop () {
      if (timer !== null) clearInterval(timer)
      timer = null
    }
  }
}
