/**
 * The miner's side of epochs: keeps its own points ledger (for `heurist status` and the
 * dashboard), listens for validators' reward roots, and once a root is on chain rebuilds the
 * tree from the gossiped leaves, checks it against that root, writes the claim file
 * `<home>/rewards/epoch-N.json` (so `heurist claim` works by hand) and, unless opted out,
 * claims at once. The HEU goes to the node's payout address (its owner); the operator key
 * only pays the gas.
 */
import { writeFile, rename, mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import type { Logger } from '../core/logger.js'
import type { Store } from '../core/store.js'
import { isHeuristError } from '../core/errors.js'
import { writeRewardFile, type ChainClient } from '../chain/index.js'
import type { HeuristNode } from '../p2p/index.js'
import { PointsLedger } from './ledger.js'
import { chainOrganic, epochSchedule } from './inputs.js'
import { onRewardRoots, checkLeaves, type RewardRootMessage } from './gossip.js'
import { toSnapshot, POINTS_FILE, type PointsSnapshot } from './snapshot.js'
import { PollLoop } from './loop.js'
import { paidTripleKey } from '../economics/index.js'

export interface RewardClaimerOptions {
  /** Claim as soon as a root with our leaf is on chain. Default true; `mine --no-auto-claim` turns it off. */
  autoClaim: boolean
  /** How often the chain is read. Default 1 s. */
  pollMs: number
  /** How often the points snapshot for `heurist status` is rewritten. Default 2 s. */
  snapshotMs: number
  /** The snapshot's file name in rewardsDir; null = kept in memory only (several miners sharing one home). Default points.json. */
  snapshotFile: string | null
  /** Told of each auto-claim that failed (the operator's alerts). Default none. */
  onClaimFailed: ((epoch: bigint, code: string, reason: string) => void) | null
  /**
   * Wei this miner holds vouchers for and has not redeemed yet, per (requester, miner, pool)
   * key (`paidTripleKey`; the voucher inbox's `owedByTriple`). The running epoch's snapshot
   * (`heurist status`) counts them as paid: the inbox redeems them inside the epoch's
   * redemption window. Closed epochs count only what was redeemed. Default none.
   */
  owedWei: (() => Promise<Map<string, bigint>>) | null
}

export const defaultRewardClaimerOptions: RewardClaimerOptions = { autoClaim: true, pollMs: 1000, snapshotMs: 2000, snapshotFile: POINTS_FILE, onClaimFailed: null, owedWei: null }

export interface RewardClaimerInit {
  node: HeuristNode
  /** Connected with the operator's key (it sends the claim transactions). */
  chain: ChainClient
  store: Store
  logger: Logger
  rewardsDir: string
}

export interface Earning { epoch: bigint, account: string, amount: bigint, root: string, claimed: boolean, tx: string | null }

const MAX_ROOTS_PER_EPOCH = 8

export class RewardClaimer {
  readonly ledger: PointsLedger
  readonly options: RewardClaimerOptions
  private readonly pending = new Map<bigint, Map<string, RewardRootMessage>>()
  private readonly done = new Map<bigint, Earning>()
  private payout: string | null = null
  private readonly loop: PollLoop
  private off: (() => void) | null = null
  private lastSnapshot = 0
  private snapshot: PointsSnapshot | null = null

  constructor (private readonly init: RewardClaimerInit, options: Partial<RewardClaimerOptions> = {}) {
    this.options = { ...defaultRewardClaimerOptions, ...options }
    this.ledger = new PointsLedger(init.store, init.logger)
    this.loop = new PollLoop(async () => { await this.step() }, init.logger, 'rewards')
  }

  get operator (): string { return this.init.node.address }

  async start (): Promise<void> {
    const { chain, node } = this.init
    this.payout = await chain.read<string>(chain.contracts.nodes, 'payoutOf', [node.address])
    this.ledger.setSchedule(await epochSchedule(chain))
    this.ledger.setEpoch(await chain.currentEpoch())
    this.ledger.attach(node)
    this.off = onRewardRoots(node, chain.deployment, this.init.logger, ({ message }) => { this.stash(message) })
    this.loop.start(this.options.pollMs)
  }

  async stop (): Promise<void> {
    this.off?.()
    this.ledger.detach()
    await this.loop.stop()
    await this.ledger.flush()
  }

  /** Rewards this node has seen posted for it, oldest first. */
  earnings (): Earning[] { return [...this.done.values()].sort((a, b) => (a.epoch < b.epoch ? -1 : 1)) }

  /** The latest points snapshot (this epoch's points of every miner seen). */
  points (): PointsSnapshot | null { return this.snapshot }

  async poll (): Promise<void> { await this.loop.run() }

  private stash (m: RewardRootMessage): void {
    const me = this.payout?.toLowerCase()
    if (me === undefined || !m.leaves.some(([a]) => a.toLowerCase() === me)) return
    const epoch = BigInt(m.epoch)
    if (this.done.has(epoch)) return
    let roots = this.pending.get(epoch)
    if (roots === undefined) { roots = new Map(); this.pending.set(epoch, roots) }
    if (roots.size < MAX_ROOTS_PER_EPOCH) roots.set(m.root.toLowerCase(), m)
  }

  private async step (): Promise<void> {
    const { chain, logger } = this.init
    const epoch = await chain.currentEpoch()
    this.ledger.setEpoch(epoch)
    for (const [e, roots] of [...this.pending]) {
      const onChain = (await chain.read<string>(chain.contracts.emission, 'roots', [e])).toLowerCase()
      const m = roots.get(onChain)
      if (m === undefined) continue
      const tree = checkLeaves(m)
      if (tree === null) { roots.delete(onChain); continue }
      const account = this.payout!
      const claim = tree.claims.find(c => c.account.toLowerCase() === account.toLowerCase())
      if (claim === undefined) { this.pending.delete(e); continue }
      await writeRewardFile(this.init.rewardsDir, e, tree)
      const earning: Earning = { epoch: e, account, amount: claim.amount, root: tree.root, claimed: false, tx: null }
      const already = await chain.read<boolean>(chain.contracts.emission, 'claimed', [e, account])
      if (already) earning.claimed = true
      else if (this.options.autoClaim) {
        try {
          const txs = await chain.claim(e, account, claim.amount, claim.proof)
          earning.claimed = true
          earning.tx = txs[txs.length - 1]?.hash ?? null
          logger.info({ epoch: e.toString(), account, amount: claim.amount.toString(), tx: earning.tx }, 'rewards: claimed')
        } catch (err) {
          if (!isHeuristError(err)) throw err
          logger.warn({ epoch: e.toString(), code: err.code, err: err.message }, 'rewards: claim failed; `heurist claim` can retry')
          this.options.onClaimFailed?.(e, err.code, err.message)
        }
      } else {
        logger.info({ epoch: e.toString(), account, amount: claim.amount.toString() }, 'rewards: claimable (auto-claim is off: run `heurist claim`)')
      }
      this.done.set(e, earning)
      this.pending.delete(e)
    }
    if (Date.now() - this.lastSnapshot >= this.options.snapshotMs) {
      this.lastSnapshot = Date.now()
      await this.writeSnapshot(epoch)
    }
  }

  private async writeSnapshot (epoch: bigint): Promise<void> {
    await this.ledger.flush()
    const organic = await chainOrganic(this.init.chain)
    const owed = this.options.owedWei === null ? null : await this.options.owedWei()
    const paidWei: typeof organic.paidWei = owed === null
      ? organic.paidWei
      : async (e, requester, miner, pool) => await organic.paidWei(e, requester, miner, pool) + (e === epoch ? owed.get(paidTripleKey(requester, miner, pool)) ?? 0n : 0n)
    const pts = await this.ledger.points(epoch, { ...organic, paidWei })
    this.snapshot = toSnapshot(this.init.node.address, this.payout ?? this.init.node.address, pts)
    if (this.options.snapshotFile === null) return
    await mkdir(this.init.rewardsDir, { recursive: true })
    const path = join(this.init.rewardsDir, this.options.snapshotFile)
    const tmp = `${path}.${process.pid}.tmp`
    await writeFile(tmp, JSON.stringify(this.snapshot))
    await rename(tmp, path)
  }
}
