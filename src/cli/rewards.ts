/**
 * What `mine`, `gateway`, `validate` and `up` share for epochs and the dashboard: the miner's
 * reward claimer, the validator's epoch service and the local dashboard, each started from the
 * config with one call, and stopped by the function they return.
 */
import type { Wallet } from 'ethers'
import type { Store } from '../core/store.js'
import type { Logger } from '../core/logger.js'
import { connectChain, type ChainClient } from '../chain/index.js'
import type { HeuristNode } from '../p2p/index.js'
import { RewardClaimer, EpochService, onRewardRoots, type RewardClaimerOptions } from '../rewards/index.js'
import { startDashboard, type Dashboard, type DashboardSource } from '../dashboard/index.js'
import type { CommandContext } from './context.js'
import { resolveDeployment } from './chain.js'

/** The reward files of the chain this command uses (ctx.paths scoped by chainScope, else the home's). */
export function rewardsDir (ctx: CommandContext): string { return ctx.paths.rewards }

/** The chain for this node's key, or null (with a warning) when none is configured or reachable. */
export async function nodeChain (ctx: CommandContext, wallet: Wallet, logger: Logger): Promise<ChainClient | null> {
  try {
    const { deployment, rpc } = await resolveDeployment(ctx, {})
    return await connectChain({ deployment, rpc, signer: wallet })
  } catch (e) {
    logger.warn({ err: (e as Error).message }, 'no chain: epoch rewards are off')
    return null
  }
}

/** A miner's claimer (auto-claim per `mine.autoClaim`); null without a chain. */
export async function startMinerRewards (ctx: CommandContext, node: HeuristNode, store: Store, chain: ChainClient | null, logger: Logger, options: Partial<RewardClaimerOptions> = {}): Promise<RewardClaimer | null> {
  if (chain === null) return null
  const claimer = new RewardClaimer({ node, chain, store, logger, rewardsDir: rewardsDir(ctx) }, { autoClaim: ctx.config.mine.autoClaim, ...options })
  await claimer.start()
  logger.info({ autoClaim: claimer.options.autoClaim }, 'epoch rewards: watching for reward roots')
  return claimer
}

/** A validator's epoch service (co-signs and posts reward roots); null without a chain. */
export async function startValidatorEpochs (ctx: CommandContext, node: HeuristNode, store: Store, chain: ChainClient | null, wallet: Wallet, logger: Logger, dir = rewardsDir(ctx)): Promise<EpochService | null> {
  if (chain === null) return null
  // the devnet's epochs end by time travel, with all validators on one machine: a short grace
  const epochs = new EpochService({ node, chain, wallet, store, logger, rewardsDir: dir }, { tipBps: ctx.config.rewards.tipBps, ...(chain.deployment.chainId === 31337 ? { graceMs: 2000 } : {}) })
  await epochs.start()
  return epochs
}

/** A gateway relays reward roots (miners often reach validators only through it). */
export function relayRewardRoots (node: HeuristNode, chain: ChainClient | null, logger: Logger): () => void {
  if (chain === null) return () => {}
  return onRewardRoots(node, chain.deployment, logger, () => {})
}

/** The dashboard per `dashboard.enabled` / `dashboard.port`; null when off. */
export async function startNodeDashboard (ctx: CommandContext, source: DashboardSource, logger: Logger, port?: number): Promise<Dashboard | null> {
  if (!ctx.config.dashboard.enabled) return null
  const d = await startDashboard(source, logger, { port: port ?? ctx.config.dashboard.port })
  if (!ctx.json && process.stderr.isTTY === true) process.stderr.write(`dashboard: ${d.url}\n`)
  return d
}
