import type { Logger } from '../core/logger.js'
import type { HeuristNode, JobExecutor } from '../p2p/index.js'
import type { ChainClient } from '../chain/index.js'
import { ModelCache, type ImageEngine, type LlamaEngine } from '../inference/index.js'
import { DemandBoard, type DemandBoardOptions } from './demand.js'
import { PodDirectory, type PodDirectoryOptions } from './directory.js'
import { PodManager, type PodBudget, type PodManagerOptions } from './manager.js'
import type { PodResolver } from '../gateway/index.js'

/**
 * Everything a miner runs to host pods, assembled in order (directory → demand board →
 * manager) and stopped in reverse: `heurist mine` and the tests build this.
 */
export interface PodHostOptions {
  node: HeuristNode
  /** Views only: the host reads PodRegistry and Voting. */
  chain: ChainClient
  /** The model cache folder pods are pulled into. */
  cacheDir: string
  /** The engine pods load into (created on first use, so a miner without pods starts none). */
  llm: () => LlamaEngine
  /** The engine image pods load into (created on first use); without it image pods are refused. */
  images?: () => ImageEngine
  vramMb: number
  /** The miner's memory budget pods are placed against (reserve throws with the reason when one does not fit). */
  budget?: PodBudget
  logger: Logger
  directory?: Partial<PodDirectoryOptions>
  demand?: Partial<DemandBoardOptions>
  manager?: Partial<PodManagerOptions>
  /** Called after pods were loaded or unloaded: re-advertise (`Advertiser.advertiseSoon`, which respects receivers' rate limit). */
  onChange?: () => void
}

export interface PodHost {
  directory: PodDirectory
  demand: DemandBoard
  manager: PodManager
  /** Serves loaded pods, and everything else with `base`. */
  executor: (base: JobExecutor | null) => JobExecutor
  stop: () => Promise<void>
}

export async function startPodHost (o: PodHostOptions): Promise<PodHost> {
  const cache = await ModelCache.open(o.cacheDir)
  const directory = new PodDirectory(o.chain, o.logger, o.directory)
  await directory.start()
  const demand = new DemandBoard(o.node, o.logger, o.demand)
  demand.start()
  const onChange = o.onChange
  const manager = new PodManager({
    node: o.node,
    pods: directory,
    demand,
    cache,
    llm: o.llm,
    ...(o.images === undefined ? {} : { images: o.images }),
    vramMb: o.vramMb,
    logger: o.logger,
    ...(o.budget === undefined ? {} : { budget: o.budget }),
    ...(onChange === undefined ? {} : { onChange })
  }, o.manager)
  manager.start()
  return {
    directory,
    demand,
    manager,
    executor: base => manager.executor(base),
    async stop () {
      await manager.stop()
      demand.stop()
      directory.stop()
    }
  }
}

/** The gateway's view of pods: live ones by name or id. */
export function podResolver (directory: PodDirectory): PodResolver {
  return {
    resolve (ref) {
      const p = directory.resolve(ref)
      return p === undefined || p.retired ? undefined : { id: p.id, name: p.name, kind: p.kind, deployer: p.deployer, revenueBps: p.revenueBps }
    }
  }
}
