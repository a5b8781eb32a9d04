import { freemem } from 'node:os'
import { Wallet } from 'ethers'
import { HeuristError, usageError } from '../core/errors.js'
import { identityFromPrivateKey, type Identity } from '../core/identity.js'
import type { Logger } from '../core/logger.js'
import type { Store } from '../core/store.js'
import { createHeuristNode, type HeuristNode, type JobExecutor, type ReceiptDomainOptions } from '../p2p/index.js'
import {
  ModelCache, MemoryBudget, createImageEngine, cudaProviderAvailable, demandOf, formatGiB, probeHardware, resolveThreads, usableBytes, type DemandSettings, createLlamaEngine, ensureTinyModels, tinyModelBuilders, quantizedSiblingName,
  type TinyQuant, type ImageEngine, type ImageModel, type LlamaEngine, type ModelInfo
} from '../inference/index.js'
import type { CommandContext } from './context.js'
import { reachabilityFromConfig } from './reachability.js'
import { findDeployment, type ChainFlags } from './chain.js'

/**
 * What the mesh commands (`mine`, `peers`, `infer --network`) share: joining the mesh with the
 * config's listen/bootstrap/devnet settings, the receipt domain from the chain deployment,
 * and the miner's models behind the job protocol's executor interface.
 */

/**
 * Joins the mesh as configured. `ephemeral` uses a throwaway key (no password needed);
 * `serving` (a miner) reserves relay slots when the node is not public.
 */
export async function joinMesh (ctx: CommandContext, options: { ephemeral?: boolean, store?: Store | null, listen?: string[], serving?: boolean, needs?: { capacity?: boolean, receipts?: boolean } } = {}): Promise<HeuristNode> {
  const identity: Identity = options.ephemeral === true ? identityFromPrivateKey(Wallet.createRandom().privateKey) : await ctx.identity()
  try {
    return await createHeuristNode({
      identity,
      listen: options.listen ?? ctx.config.p2p.listen,
      bootstrap: ctx.config.p2p.bootstrap,
      announce: ctx.config.p2p.announce,
      devnet: ctx.config.p2p.devnet,
      logger: ctx.logger,
      store: options.store ?? null,
      // a miner behind NAT reserves relay slots; public nodes relay for others (p2p.relay*)
      reachability: reachabilityFromConfig(ctx.config, options.serving === true),
      // what the command needs is always subscribed (a validator's receipts, a listener's adverts)
      subscribe: {
        capacity: ctx.config.p2p.subscribeAdverts || options.needs?.capacity === true,
        receipts: ctx.config.p2p.subscribeReceipts || options.needs?.receipts === true
      }
    })
  } catch (e) {
    if (e instanceof HeuristError) throw e
    const msg = (e as Error).message
    if (/EADDRINUSE|address already in use/i.test(msg)) throw usageError('P2P_LISTEN_IN_USE', `cannot listen on ${(options.listen ?? ctx.config.p2p.listen).join(', ')}: address in use (config p2p.listen / --listen)`)
    throw new HeuristError('P2P_START_FAILED', `cannot start the p2p node: ${msg}`, { cause: e })
  }
}

/**
 * The EIP-712 domain receipts are signed under: the chain deployment's chain id and Slashing
 * contract (see findDeployment), or null when no chain is configured.
 */
export async function receiptDomainFor (ctx: CommandContext, flags: ChainFlags = {}): Promise<ReceiptDomainOptions | null> {
  const d = await findDeployment(ctx, flags)
  return d === null ? null : { chainId: d.chainId, verifyingContract: d.contracts.Slashing }
}

/** One GPU as this miner budgets it (node-llama-cpp reports VRAM for all GPUs together: split evenly). */
export interface MinerGpu { index: number, device: string, name: string, vramTotal: number, vramFree: number }

/** The miner's memory plan inputs: the budget (shared by fixed models and pods) and how demands are read. */
export interface MinerMemory {
  budget: MemoryBudget
  settings: DemandSettings
  gpus: MinerGpu[]
}

/** `inference.gpus` → GPU indices among `count` (all, none, or a list; indices not present are dropped with a warning). */
export function selectGpus (setting: string, count: number, logger?: Logger): number[] {
  if (setting === 'none') return []
  const all = Array.from({ length: count }, (_, i) => i)
  if (setting === 'all') return all
  const asked = [...new Set(setting.split(',').map(Number))]
  const missing = asked.filter(i => i >= count)
  if (missing.length > 0) logger?.warn({ asked, gpus: count }, `inference.gpus names GPU ${missing.join(', ')}, which this machine does not have (it has ${count})`)
  return asked.filter(i => i < count)
}

/**
 * Measures what this miner has for models before anything loads: free RAM, and free VRAM per
 * GPU where node-llama-cpp reports it, less inference.memoryReserveMb each, capped at
 * inference.memoryBudgetMb. LLMs go on the selected GPUs when llama.cpp runs on a GPU (else in
 * RAM); image models on them when onnxruntime's CUDA provider is installed (else in RAM).
 */
export async function measureMinerMemory (ctx: CommandContext, logger: Logger): Promise<MinerMemory> {
  const c = ctx.config.inference
  let hw: Awaited<ReturnType<typeof probeHardware>> | null = null
  try {
    hw = await probeHardware({ gpu: c.gpu, threads: c.threads, logger })
  } catch (e) {
    logger.warn({ err: (e as Error).message }, 'cannot probe the GPU: budgeting RAM only')
  }
  const n = hw === null || hw.gpu === 'cpu' ? 0 : hw.gpuNames.length
  const picked = selectGpus(c.gpus, n, logger)
  const reserve = c.memoryReserveMb * 1024 * 1024
  const cap = c.memoryBudgetMb === 0 ? Infinity : c.memoryBudgetMb * 1024 * 1024
  const budgetOf = (free: number): number => Math.min(cap, usableBytes(free, reserve))
  const gpus: MinerGpu[] = picked.map(i => ({
    index: i,
    device: `gpu${i}`,
    name: (hw?.gpuNames[i] ?? '').slice(0, 128),
    vramTotal: n === 0 ? 0 : Math.floor((hw?.vramTotalBytes ?? 0) / n),
    vramFree: n === 0 ? 0 : Math.floor((hw?.vramFreeBytes ?? 0) / n)
  }))
  const devices = [{ device: 'cpu', freeBytes: budgetOf(freemem()) }, ...gpus.map(g => ({ device: g.device, freeBytes: budgetOf(g.vramFree) }))]
  const onGpu = gpus.map(g => g.device)
  const settings: DemandSettings = {
    contextSize: 0,
    parallel: ctx.config.mine.maxJobs,
    imageMaxSide: c.imageMaxSide,
    llmDevices: onGpu.length > 0 ? onGpu : ['cpu'],
    imageDevices: onGpu.length > 0 && c.gpu !== 'cpu' && cudaProviderAvailable() ? onGpu : ['cpu']
  }
  logger.info({ budgets: Object.fromEntries(devices.map(d => [d.device, formatGiB(d.freeBytes)])), reserveMb: c.memoryReserveMb, capMb: c.memoryBudgetMb, llmOn: settings.llmDevices, imagesOn: settings.imageDevices }, 'memory budget')
  return { budget: new MemoryBudget(devices), settings, gpus }
}

export interface MinerModels {
  executor: JobExecutor
  models: ModelInfo[]
  /** Models that did not fit the memory budget, with the reason (not loaded, not advertised). */
  refused: Array<{ id: string, name: string, reason: string }>
  /** The engines behind the executor (validation's cheat wrapper, `mine --cheat`, runs on them). */
  llm: LlamaEngine | null
  images: Map<string, ImageModel>
  stop: () => Promise<void>
}

/**
 * Loads the models a miner serves (`refs`: names, sha256 ids or paths; empty = the built-in
 * tiny models) into the LLM and image engines, and wraps them as the job executor.
 */
export async function loadMinerModels (ctx: CommandContext, refs: string[], logger: Logger, options: { imageThreads?: number, memory?: MinerMemory } = {}): Promise<MinerModels> {
  // serving: all the cores (inference.imageThreads, 0 = available); a validator asks for 1
  const imageThreads = resolveThreads(options.imageThreads ?? ctx.config.inference.imageThreads)
  const cache = await ModelCache.open(ctx.paths.models)
  // a built-in tiny model named on the command line is generated on first use
  const tinyNames = refs.filter(r => tinyModelBuilders.some(b => b.name === r))
  if (tinyNames.length > 0) await ensureTinyModels(ctx.paths.models, { names: tinyNames })
  const entries = refs.length === 0
    ? await ensureTinyModels(ctx.paths.models)
    : await Promise.all(refs.map(async r => await cache.resolve(r)))
  let llm: LlamaEngine | null = null
  let imageEngine: ImageEngine | null = null
  const images = new Map<string, ImageModel>()
  const models: ModelInfo[] = []
  const refused: MinerModels['refused'] = []
  const memory = options.memory
  try {
    for (const e of entries) {
      // the budget first: a model that does not fit is refused with the reason, never loaded
      let cudaDevice: number | undefined
      if (memory !== undefined) {
        const r = memory.budget.reserve(await demandOf(e, memory.settings))
        if ('refused' in r) {
          refused.push({ id: e.id, name: e.name, reason: r.refused.reason })
          logger.warn({ model: e.name, id: e.id, needBytes: r.refused.needBytes, reason: r.refused.reason }, 'model refused: it does not fit the memory budget (not loaded, not advertised)')
          continue
        }
        logger.info({ model: e.name, device: r.placed.device, need: formatGiB(r.placed.needBytes) }, 'model placed')
        const g = memory.gpus.find(x => x.device === r.placed.device)
        if (g !== undefined && e.kind === 'image') cudaDevice = g.index
      }
      if (e.kind === 'llm') {
        llm ??= createLlamaEngine({ gpu: ctx.config.inference.gpu, threads: ctx.config.inference.threads, parallel: ctx.config.mine.maxJobs, maxQueue: ctx.config.inference.maxQueue, logger })
        models.push(await llm.load(e.path, { id: e.id, name: e.name }))
      } else {
        imageEngine ??= createImageEngine({ threads: imageThreads, optimizationLevel: 'basic', executionProvider: ctx.config.inference.gpu === 'cpu' ? 'cpu' : 'auto', logger })
        const m = await imageEngine.load(e.path, { id: e.id, name: e.name }, cudaDevice === undefined ? {} : { cudaDeviceId: cudaDevice })
        images.set(m.info.id, m)
        models.push(m.info)
      }
      logger.info({ model: e.name, id: e.id, kind: e.kind }, 'model loaded')
    }
    if (entries.length > 0 && models.length === 0) throw new HeuristError('INFERENCE_OVER_BUDGET', `no model fits this machine's memory budget: ${refused.map(r => r.reason).join('; ')}`)
  } catch (err) {
    await llm?.stop()
    await imageEngine?.dispose()
    throw err
  }
  const executor = engineExecutor(llm, images, models)
  return {
    executor,
    models,
    refused,
    llm,
    images,
    async stop () {
      await llm?.stop()
      await imageEngine?.dispose()
    }
  }
}

/**
 * For the quantized cheats (`--cheat quantized-q8|q4`): builds and loads the quantized copy of
 * each built-in tiny LLM the miner serves, beside it in the same engine. The copies are not
 * added to `m.models`, so the miner does not advertise them.
 */
export async function loadQuantizedSiblings (ctx: CommandContext, m: MinerModels, quant: TinyQuant, logger: Logger): Promise<void> {
  if (m.llm === null) return
  const names = m.models.filter(x => x.kind === 'llm').map(x => quantizedSiblingName(x.name, quant)).filter(n => tinyModelBuilders.some(b => b.name === n))
  if (names.length === 0) return
  for (const e of await ensureTinyModels(ctx.paths.models, { names })) {
    await m.llm.load(e.path, { id: e.id, name: e.name })
    logger.info({ model: e.name, id: e.id }, 'quantized copy loaded (--cheat)')
  }
}

/** The inference engines as the job protocol's executor: LLM jobs on llama.cpp, image jobs on the ONNX pipeline. */
export function engineExecutor (llm: LlamaEngine | null, images: Map<string, ImageModel>, models: ModelInfo[]): JobExecutor {
  return {
    models: () => models,
    async execute (job, o) {
      if (job.kind === 'llm') {
        if (llm === null) throw new HeuristError('P2P_UNSUPPORTED_KIND', 'no LLM loaded')
        const result = await llm.generate({ modelId: job.modelId, input: job.input, sampling: job.sampling, ...(job.constraint === undefined ? {} : { constraint: job.constraint }), ...(job.logprobs === undefined ? {} : { logprobs: job.logprobs }) }, { signal: o.signal, onToken: o.onToken })
        return { kind: 'llm', result }
      }
      if (job.kind === 'embedding') {
        if (llm === null) throw new HeuristError('P2P_UNSUPPORTED_KIND', 'no text model loaded')
        return { kind: 'embedding', result: await llm.embed(job.modelId, job.input, { signal: o.signal }) }
      }
      const model = images.get(job.modelId)
      if (model === undefined) throw new HeuristError('P2P_UNSUPPORTED_KIND', 'no image model loaded')
      const g = await model.generate({ modelId: job.modelId, ...job.image }, { signal: o.signal, onProgress: o.onProgress })
      return { kind: 'image', result: { png: g.png, pixelSha256: g.pixelSha256, width: g.width, height: g.height, ms: g.ms, threads: g.threads, optimizationLevel: g.optimizationLevel } }
    }
  }
}
