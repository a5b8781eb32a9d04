/**
 * The `alerts.*` config keys mapped to the ops area's alert sender and node watch, for the
 * long-running commands (`mine`, `validate`, `gateway`).
 */
import { parseEther } from 'ethers'
import type { Logger } from '../core/logger.js'
import type { ChainClient } from '../chain/index.js'
import { AlertSender, NodeWatch, noAlerts, type Alerts, type PodEventLike, type ReachabilitySource } from '../ops/index.js'
import type { CommandContext } from './context.js'
import { VERSION } from './version.js'

/** The webhook sender per `alerts.webhook`; a no-op when it is empty. */
export function createAlerts (ctx: CommandContext, node: string, role: string, logger: Logger = ctx.logger): Alerts {
  const url = ctx.config.alerts.webhook
  if (url === '') return noAlerts
  const sender = new AlertSender({ url, node, role, logger, version: VERSION })
  logger.info({ webhook: new URL(url).origin }, 'alerts: posting to the webhook')
  return sender
}

export interface WatchParts {
  operator: string
  chain: ChainClient | null
  jobsArrived: (() => number) | null
  advertising: () => boolean
  reachability: ReachabilitySource | null
  podEvents?: () => readonly PodEventLike[]
}

/** Starts the node watch (gas, slashes, idle, reachability) per `alerts.minEth` / `alerts.idleMinutes`. */
export async function startNodeWatch (ctx: CommandContext, alerts: Alerts, parts: WatchParts, logger: Logger = ctx.logger): Promise<NodeWatch> {
  const minEth = parseEther(ctx.config.alerts.minEth)
  const watch = new NodeWatch({ alerts, logger, ...parts }, { minEthWei: minEth === 0n ? null : minEth, idleMs: ctx.config.alerts.idleMinutes * 60_000 })
  await watch.start()
  return watch
}

/** Runs `load`; when it throws, alerts `model_load_failed` (and waits briefly for the POST: the command is about to exit) before rethrowing. */
export async function loadOrAlert<T> (alerts: Alerts, what: string, load: () => Promise<T>): Promise<T> {
  try {
    return await load()
  } catch (e) {
    const err = e as { code?: string, message?: string }
    alerts.raise('model_load_failed', `model ${what} failed to load: ${err.message ?? String(e)}`, { model: what, code: err.code ?? 'UNKNOWN', reason: err.message ?? String(e) })
    await alerts.flush(5000)
    throw e
  }
}
