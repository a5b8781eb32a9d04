import { connectChain, type ChainClient } from '../chain/index.js'
import { createImageEngine, createLlamaEngine, demandOf, resolveThreads, type CachedModel, type ImageEngine, type LlamaEngine, type ModelInfo } from '../inference/index.js'
import type { MinerMemory } from './mesh.js'
import type { HeuristNode, JobExecutor, Hardware } from '../p2p/index.js'
import { startPodHost, podResolver, PodDirectory, type PodHost } from '../pods/index.js'
import type { PodResolver } from '../gateway/index.js'
import type { CommandContext } from './context.js'
import type { Deployment } from '../chain/index.js'
import { findDeployment } from './chain.js'

/**
 * What `heurist mine` adds for pods (config `pods.*`): with a chain deployment and
 * `pods.host` on, the pod host (directory, demand board, manager) runs beside the miner's
 * fixed models; without one, it does nothing and passes the fixed models through.
 */
export interface MinerPods {
  host: PodHost | null
  executor: (base: JobExecutor) => JobExecutor
  models: () => ModelInfo[]
  /** Re-advertise when pods were loaded or unloaded. */
  onChange: (fn: () => void) => void
  stop: () => Promise<void>
}

export async function startMinerPods (ctx: CommandContext, node: HeuristNode, hw: Hardware, memory?: MinerMemory): Promise<MinerPods> {
  const none: MinerPods = { host: null, executor: base => base, models: () => [], onChange: () => {}, stop: async () => {} }
  const deployment = ctx.config.pods.host ? await findDeployment(ctx) : null
  if (deployment === null) return none
  let chain: ChainClient
  try {
    chain = await connectChain({ deployment, ...(ctx.config.chain.rpc !== '' ? { rpc: ctx.config.chain.rpc } : {}) })
  } catch (e) {
    // the fixed models still serve; pods need the chain (PodRegistry, votes)
    ctx.logger.warn({ err: (e as Error).message }, 'cannot reach the chain: not hosting pods')
    return none
  }
  try {
    const pods = await hostPods(ctx, node, chain, hw, memory)
    return { ...pods, async stop () { await pods.stop(); chain.close() } }
  } catch (e) {
    chain.close()
    throw e
  }
}

/**
 * The pod host on a node, over a chain client the caller owns (`mine`, and each miner of
 * `up`): its own LLM engine, created on first use, stopped with it.
 */
export async function hostPods (ctx: CommandContext, node: HeuristNode, chain: ChainClient, hw: Hardware, memory?: MinerMemory): Promise<MinerPods> {
  let engine: LlamaEngine | null = null
  let images: ImageEngine | null = null
  let notify: () => void = () => {}
  const vramMb = Math.floor(hw.gpus.reduce((m, g) => Math.max(m, g.vramTotal), 0) / (1024 * 1024))
  const host = await startPodHost({
    node,
    chain,
    cacheDir: ctx.paths.models,
    llm: () => (engine ??= createLlamaEngine({ gpu: ctx.config.inference.gpu, threads: ctx.config.inference.threads, parallel: ctx.config.mine.maxJobs, maxQueue: ctx.config.inference.maxQueue, logger: ctx.logger })),
    // image pods: folders pulled from a manifest, served on all cores like the fixed image models
    images: () => (images ??= createImageEngine({ threads: resolveThreads(ctx.config.inference.imageThreads), optimizationLevel: 'basic', executionProvider: ctx.config.inference.gpu === 'cpu' ? 'cpu' : 'auto', logger: ctx.logger })),
    vramMb,
    logger: ctx.logger,
    // pods plan against the same budget as the fixed models: one that does not fit is refused with the reason
    ...(memory === undefined ? {} : { budget: { reserve: async (entry: CachedModel) => { memory.budget.require(await demandOf(entry, memory.settings)) }, release: (id: string) => { memory.budget.release(id) } } }),
    manager: { policy: { idleMs: ctx.config.pods.idleMs, maxLoaded: ctx.config.pods.maxLoaded, jobsPerHost: ctx.config.mine.maxJobs } },
    onChange: () => { notify() }
  })
  ctx.logger.info({ pods: host.directory.list().length, vramMb, idleMs: ctx.config.pods.idleMs }, 'hosting pods by demand and votes')
  return {
    host,
    executor: base => host.executor(base),
    models: () => host.manager.models(),
    onChange: fn => { notify = fn },
    async stop () {
      await host.stop()
      await engine?.stop()
      await images?.dispose()
    }
  }
}

/** The gateway's pod resolver from the chain (null without a deployment): `model` may name a pod. */
export async function startGatewayPods (ctx: CommandContext, deployment: Deployment | null): Promise<{ resolver: PodResolver, stop: () => void } | null> {
  if (deployment === null) return null
  const chain = await connectChain({ deployment, ...(ctx.config.chain.rpc !== '' ? { rpc: ctx.config.chain.rpc } : {}) })
  const directory = new PodDirectory(chain, ctx.logger)
  try {
    await directory.start()
  } catch (e) {
    chain.close()
    throw e
  }
  return { resolver: podResolver(directory), stop: () => { directory.stop(); chain.close() } }
}
