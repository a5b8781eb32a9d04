import { Wallet } from 'ethers'
import { HeuristError, usageError } from '../core/errors.js'
import { identityFromPrivateKey, type Identity } from '../core/identity.js'
import type { Logger } from '../core/logger.js'
import type { Store } from '../core/store.js'
import { createHeuristNode, type HeuristNode, type JobExecutor, type ReceiptDomainOptions } from '../p2p/index.js'
import {
  ModelCache, createImageEngine, resolveThreads, createLlamaEngine, ensureTinyModels, tinyModelBuilders, quantizedSiblingName,
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
export async function joinMesh (ctx: CommandContext, options: { ephemeral?: boolean, store?: Store | null, listen?: string[], serving?: boolean } = {}): Promise<HeuristNode> {
  const identity: Identity = options.ephemeral === true ? identityFromPrivateKey(Wallet.createRandom().privateKey) : await ctx.identity()
  try {
    return await createHeuristNode({
      identity,
      listen: options.listen ?? ctx.config.p2p.listen,
      bootstrap: ctx.config.p2p.bootstrap,
      devnet: ctx.config.p2p.devnet,
      logger: ctx.logger,
      store: options.store ?? null,
      // a miner behind NAT reserves relay slots; public nodes relay for others (p2p.relay*)
      reachability: reachabilityFromConfig(ctx.config, options.serving === true)
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

export interface MinerModels {
  executor: JobExecutor
  models: ModelInfo[]
  /** The engines behind the executor (validation's cheat wrapper, `mine --cheat`, runs on them). */
  llm: LlamaEngine | null
  images: Map<string, ImageModel>
  stop: () => Promise<void>
}

/**
 * Loads the models a miner serves (`refs`: names, sha256 ids or paths; empty = the built-in
 * tiny models) into the LLM and image engines, and wraps them as the job executor.
 */
export async function loadMinerModels (ctx: CommandContext, refs: string[], logger: Logger, options: { imageThreads?: number } = {}): Promise<MinerModels> {
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
  try {
    for (const e of entries) {
      if (e.kind === 'llm') {
        llm ??= createLlamaEngine({ gpu: ctx.config.inference.gpu, threads: ctx.config.inference.threads, parallel: ctx.config.mine.maxJobs, maxQueue: ctx.config.inference.maxQueue, logger })
        models.push(await llm.load(e.path, { id: e.id, name: e.name }))
      } else {
        imageEngine ??= createImageEngine({ threads: imageThreads, optimizationLevel: 'basic', executionProvider: ctx.config.inference.gpu === 'cpu' ? 'cpu' : 'auto', logger })
        const m = await imageEngine.load(e.path, { id: e.id, name: e.name })
        images.set(m.info.id, m)
        models.push(m.info)
      }
      logger.info({ model: e.name, id: e.id, kind: e.kind }, 'model loaded')
    }
  } catch (err) {
    await llm?.stop()
    await imageEngine?.dispose()
    throw err
  }
  const executor = engineExecutor(llm, images, models)
  return {
    executor,
    models,
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
      const model = images.get(job.modelId)
      if (model === undefined) throw new HeuristError('P2P_UNSUPPORTED_KIND', 'no image model loaded')
      const g = await model.generate({ modelId: job.modelId, ...job.image }, { signal: o.signal, onProgress: o.onProgress })
      return { kind: 'image', result: { png: g.png, pixelSha256: g.pixelSha256, width: g.width, height: g.height, ms: g.ms, threads: g.threads, optimizationLevel: g.optimizationLevel } }
    }
  }
}
