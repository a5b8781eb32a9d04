import { formatEther } from 'ethers'
import type { Logger } from '../core/logger.js'
import type { ChainClient } from '../chain/index.js'
import type { Alerts } from './alerts.js'

export interface NodeWatchOptions {
  /** Alert when the operator's ETH falls below this (wei); null = off. Default 0.01 ETH (alerts.minEth). */
  minEthWei: bigint | null
  /** Alert after this long without a new job while adverts are out; 0 = off. Default 60 min (alerts.idleMinutes). */
  idleMs: number
  /** How often the chain (balance, slash events) and the job counter are read. Default 30 s. */
  pollMs: number
}

export const defaultNodeWatchOptions: NodeWatchOptions = { minEthWei: 10n ** 16n, idleMs: 60 * 60_000, pollMs: 30_000 }

/** What a reachability tracker looks like from here (p2p's Reachability). */
export interface ReachabilitySource {
  report: () => { status: string }
  onChange: (fn: (r: { status: string, relays?: string[] }) => void) => () => void
}

/** A pod host's load events (pods' PodManager.events), of which `failed` ones alert. */
export interface PodEventLike { pod: string, name: string, event: string, reason?: string }

export interface NodeWatchInit {
  alerts: Alerts
  logger: Logger
  /** The operator's address: its gas balance and its slashes are watched. */
  operator: string
  chain: ChainClient | null
  /** A counter that grows with every job that arrives (served, failed, refused or running); null = not a serving node. */
  jobsArrived: (() => number) | null
  /** Whether capacity adverts are going out now. */
  advertising: () => boolean
  reachability: ReachabilitySource | null
  /** The pod host's recent events (bounded list, newest last); null = no pods. */
  podEvents?: (() => readonly PodEventLike[]) | null
}

/**
 * Watches a running node for what its operator must hear about: slashes of its collateral (the
 * NodeRegistry `Slashed` events), gas below the minimum, no job for too long while advertising,
 * and reachability lost. Each condition alerts once when it starts and is re-armed when it
 * clears. Claim and model-load failures are reported by their callers (`claimFailed`,
 * `modelFailed`). Reads are polled, never awaited by serving.
 */
export class NodeWatch {
  readonly options: NodeWatchOptions
  private timer: NodeJS.Timeout | null = null
  private fromBlock: number | null = null
  private gasLow = false
  private idle = false
  private lastCount = -1
  private lastJobAt = Date.now()
  private offReach: (() => void) | null = null
  private reach: string | null = null
  private polling: Promise<void> | null = null
  private readonly podSeen = new WeakSet<PodEventLike>()

  constructor (private readonly init: NodeWatchInit, options: Partial<NodeWatchOptions> = {}) {
    this.options = { ...defaultNodeWatchOptions, ...options }
  }

  async start (): Promise<void> {
    const { chain, reachability } = this.init
    if (chain !== null) this.fromBlock = await chain.provider.getBlockNumber().catch(() => null)
    if (reachability !== null) {
      this.reach = reachability.report().status
      this.offReach = reachability.onChange(r => { this.checkReach(r.status) })
    }
    this.lastJobAt = Date.now()
    this.lastCount = this.init.jobsArrived?.() ?? -1
    // failures before the watch started were logged already
    for (const e of this.init.podEvents?.() ?? []) this.podSeen.add(e)
    this.schedule()
  }

  stop (): void {
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = null
    this.offReach?.()
    this.offReach = null
  }

  /** Runs one round of checks now (tests, and the first round at start). */
  async poll (): Promise<void> {
    this.polling ??= this.round().finally(() => { this.polling = null })
    await this.polling
  }

  claimFailed (epoch: bigint, code: string, reason: string): void {
    this.init.alerts.raise('claim_failed', `claiming epoch ${epoch.toString()}'s reward failed: ${reason}`, { epoch: epoch.toString(), code, reason })
  }

  modelFailed (model: string, code: string, reason: string): void {
    this.init.alerts.raise('model_load_failed', `model ${model} failed to load: ${reason}`, { model, code, reason })
  }

  private schedule (): void {
    if (this.timer !== null) clearTimeout(this.timer)
    this.timer = setTimeout(() => {
      this.poll().catch(() => {}).finally(() => { if (this.timer !== null) this.schedule() })
    }, this.options.pollMs)
  }

  private async round (): Promise<void> {
    this.checkIdle()
    this.checkPods()
    // libp2p's address events can come before the address list changes: read it on each round too
    const status = this.init.reachability?.report().status
    if (status !== undefined) this.checkReach(status)
    const { chain } = this.init
    if (chain === null) return
    try {
      await this.checkGas(chain)
      await this.checkSlashes(chain)
    } catch (e) {
      this.init.logger.debug({ err: (e as Error).message }, 'node watch: chain read failed (next round retries)')
    }
  }

  private checkPods (): void {
    for (const e of this.init.podEvents?.() ?? []) {
      if (this.podSeen.has(e)) continue
      this.podSeen.add(e)
      if (e.event === 'failed') this.modelFailed(`${e.name} (pod ${e.pod.slice(0, 12)})`, 'PODS_LOAD_FAILED', e.reason ?? 'unknown')
    }
  }

  private checkReach (status: string): void {
    const was = this.reach
    this.reach = status
    if (status === 'unreachable' && was !== null && was !== 'unreachable') {
      this.init.alerts.raise('reachability_lost', `reachability lost: was ${was}, now no public address and no relay reservation`, { was })
    }
  }

  private checkIdle (): void {
    const count = this.init.jobsArrived?.()
    if (count === undefined || this.options.idleMs === 0) return
    const now = Date.now()
    if (count !== this.lastCount || !this.init.advertising()) {
      this.lastCount = count
      this.lastJobAt = now
      this.idle = false
      return
    }
    if (!this.idle && now - this.lastJobAt >= this.options.idleMs) {
      this.idle = true
      const minutes = Math.round((now - this.lastJobAt) / 60_000)
      this.init.alerts.raise('idle', `no job arrived for ${minutes} min while adverts are out`, { idleMs: now - this.lastJobAt, jobsArrived: count })
    }
  }

  private async checkGas (chain: ChainClient): Promise<void> {
    const min = this.options.minEthWei
    if (min === null || min === 0n) return
    const bal = await chain.provider.getBalance(this.init.operator)
    if (bal < min && !this.gasLow) {
      this.gasLow = true
      this.init.alerts.raise('gas_low', `gas balance ${formatEther(bal)} ETH is below alerts.minEth ${formatEther(min)} ETH: claims and voucher redemptions will fail`, { balanceWei: bal.toString(), minWei: min.toString() })
    } else if (bal >= min) {
      this.gasLow = false
    }
  }

  private async checkSlashes (chain: ChainClient): Promise<void> {
    const head = await chain.provider.getBlockNumber()
    const from = this.fromBlock ?? head
    if (head < from) return
    const events = await chain.events('nodes', 'Slashed', from, head)
    this.fromBlock = head + 1
    const me = this.init.operator.toLowerCase()
    for (const ev of events) {
      const [operator, amount] = [String(ev.args[0]), BigInt(ev.args[1] as bigint)]
      if (operator.toLowerCase() !== me) continue
      this.init.alerts.raise('slashed', `slashed: ${formatEther(amount)} HEU of collateral taken (tx ${ev.transactionHash})`, { amountWei: amount.toString(), tx: ev.transactionHash, block: ev.blockNumber })
    }
  }
}
