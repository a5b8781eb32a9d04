import { HeuristError } from '../core/errors.js'
import type { Logger } from '../core/logger.js'
import type { Alerts } from './alerts.js'
import { PartSupervisor, type BackoffOptions } from './heal.js'

/** The parts of a HeuristNode the mesh healer touches. */
export interface MeshNode {
  libp2p: { status: string, start: () => void | Promise<void>, stop: () => void | Promise<void> }
  pubsub: { getTopics: () => string[], subscribe: (topic: string) => void }
  multiaddrs: () => string[]
}

export interface MeshHealerOptions {
  /** How often libp2p's state is checked. Default 5 s. */
  checkMs: number
  /** Restart backoff. Default 1 s doubling to 60 s. */
  backoff: Partial<BackoffOptions>
}

export const defaultMeshHealerOptions: MeshHealerOptions = { checkMs: 5000, backoff: {} }

export interface MeshHealerInit {
  node: MeshNode
  logger: Logger
  alerts: Alerts
}

/**
 * Restarts libp2p in place when it stops on its own or loses every listen address (an
 * unrecoverable transport error): the same libp2p instance is stopped and started again, so
 * the key (PeerId), the stream handlers (jobs, vouchers, transcripts) and the gossip validators
 * stay, and the gossip topics it was subscribed to are subscribed again (gossipsub forgets them
 * on stop). With backoff, logged and alerted (`restarted`, part `mesh`). Bootstrap peers are
 * redialled by the node itself once it runs. Stop this before stopping the node.
 */
export class MeshHealer {
  readonly options: MeshHealerOptions
  readonly supervisor: PartSupervisor<MeshNode>
  private timer: NodeJS.Timeout | null = null
  private topics: string[] = []
  private hadAddrs = false

  constructor (private readonly init: MeshHealerInit, options: Partial<MeshHealerOptions> = {}) {
    this.options = { ...defaultMeshHealerOptions, ...options }
    const { node } = init
    this.supervisor = new PartSupervisor<MeshNode>({
      name: 'mesh',
      logger: init.logger,
      alerts: init.alerts,
      start: async () => {
        if (node.libp2p.status !== 'started') await node.libp2p.start()
        for (const t of this.topics) node.pubsub.subscribe(t)
        init.logger.info({ topics: this.topics, addrs: node.multiaddrs() }, 'libp2p started again')
        return node
      },
      stop: async n => { if (n.libp2p.status === 'started') await n.libp2p.stop() }
    }, this.options.backoff)
  }

  async start (): Promise<void> {
    await this.supervisor.start()
    this.topics = this.init.node.pubsub.getTopics()
    this.hadAddrs = this.init.node.multiaddrs().length > 0
    this.timer = setInterval(() => { this.check() }, this.options.checkMs)
    this.timer.unref()
  }

  async stop (): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
    // the node's owner stops libp2p; do not stop it twice
    await this.supervisor.settled()
  }

  /** One check now (tests; the interval calls it). */
  check (): void {
    if (this.timer === null || this.supervisor.current() === null) return
    const { node } = this.init
    if (node.libp2p.status === 'started') {
      // remember topics subscribed since (the reward claimer, the ledger)
      const now = node.pubsub.getTopics()
      if (now.length > 0) this.topics = now
    }
    if (node.libp2p.status !== 'started' && node.libp2p.status !== 'starting') {
      this.supervisor.failed(new HeuristError('P2P_STOPPED', `libp2p stopped on its own (status ${node.libp2p.status})`))
    } else if (this.hadAddrs && node.libp2p.status === 'started' && node.multiaddrs().length === 0) {
      this.supervisor.failed(new HeuristError('P2P_NO_LISTEN_ADDRS', 'libp2p lost every listen address'))
    }
  }
}
