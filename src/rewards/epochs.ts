/**
 * The validator's side of epochs: keeps the points ledger, and when the chain's epoch moves
 * on, computes each finished epoch's reward table, writes its claim file, signs the root,
 * gossips signature and leaves, collects other validators' signatures of the same
 * (epoch, root, total), and posts the root once the signers hold a quorum of validator stake.
 * Any validator with a quorum may post; the rest see RootExists and stop.
 */
import { getAddress, verifyTypedData, type Wallet } from 'ethers'
import type { Logger } from '../core/logger.js'
import type { Store } from '../core/store.js'
import { isHeuristError } from '../core/errors.js'
import { signRewardRoot, sortBySigner, buildRewardTree, writeRewardFile, type ChainClient, type RewardTree } from '../chain/index.js'
import { z } from 'zod'
import { heuristDomain, VerdictTypes, type Verdict } from '../core/typed-data.js'
import { isVerdictTopic, type HeuristNode } from '../p2p/index.js'
import { PointsLedger } from './ledger.js'
import { computeRewardTable, type RewardTable } from './table.js'
import { tableInput, chainOrganic, chainTime, epochSchedule, MAX_TABLE_MINERS } from './inputs.js'
import { redemptionWindow } from '../economics/index.js'
import type { EpochSchedule } from './ledger.js'
import { onRewardRoots, publishRewardRoot, checkLeaves, splitRewardMessage, signatureOnly, MAX_LEAVES, type RewardRootMessage, type SignedRoot } from './gossip.js'

/** Root entries (epoch, root, total) held at once while their signatures are collected. */
const MAX_OPEN_ROOTS = 256
import { PollLoop } from './loop.js'

export interface EpochServiceOptions {
  /** How often the chain's epoch and the roots on chain are read. Default 1 s: time travel on a devnet shows at once; a week-long epoch does not care. */
  pollMs: number
  /** Voters' share of each node's reward, basis points; every validator must use the same value or their roots differ. Default 1,000 (10 %). */
  tipBps: number
  /** Finished epochs looked back at for a missing root. Default 4. */
  lookback: number
  /** Republish our signature this often until the root is on chain (late joiners, lost messages). Default 3 s. */
  republishMs: number
  /**
   * How long after this validator first sees an epoch ended it still takes that epoch's
   * receipts, before building its root. Default 10 s: receipts are filed by their signed end
   * time, so late gossip and validators polling at different moments file the same receipts
   * as long as they arrive within the grace; much more than gossip needs, nothing next to an epoch.
   */
  graceMs: number
  /** Leaves per gossip message; a root with more travels in several. Default MAX_LEAVES (8,000, under 1 MiB). */
  leavesPerMessage: number
  /** Registered miners one table takes at most (each costs chain reads at close); unregistered keys never count. Default MAX_TABLE_MINERS (50,000). */
  maxTableMiners: number
}

export const defaultEpochServiceOptions: EpochServiceOptions = { pollMs: 1000, tipBps: 1000, lookback: 4, republishMs: 3000, graceMs: 10_000, leavesPerMessage: MAX_LEAVES, maxTableMiners: MAX_TABLE_MINERS }

export interface EpochServiceInit {
  node: HeuristNode
  /** Connected with the validator's key (it posts roots). */
  chain: ChainClient
  wallet: Wallet
  store: Store
  logger: Logger
  /** Where claim files go (`<home>/rewards`). */
  rewardsDir: string
}

/** What the ledger needs of a verdict: the signed statement itself (its signature is checked in recordVerdict). */
const verdictSchema = z.object({
  type: z.literal('verdict'),
  verdict: z.object({ receiptHash: z.string().regex(/^0x[0-9a-fA-F]{64}$/), validator: z.string().regex(/^0x[0-9a-fA-F]{40}$/), pass: z.boolean(), reason: z.number().int().min(0).max(255) }).strict(),
  signature: z.string().regex(/^0x[0-9a-fA-F]{130}$/)
}).passthrough()

/** A validator's EIP-712 verdict with its signature, as gossiped on the verdict shards (`heurist/1/verdicts/<shard>`). */
export interface SignedVerdict { verdict: Verdict, signature: string }
const MAX_VERDICT_BYTES = 256 * 1024

function roundAll (o: Record<string, number>): Record<string, number> { return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, Math.round(v)])) }

/** Signatures are collected per (epoch, root, total): the key gossip and our own record must share. */
function rootKey (epoch: bigint | string, root: string, total: bigint | string): string { return `${epoch}:${root.toLowerCase()}:${total}` }

export interface EpochRecord {
  epoch: bigint
  table: RewardTable
  tree: RewardTree
  message: RewardRootMessage
  posted: boolean
  postedBy: string | null
  /** Gossip messages the root's leaves take. */
  parts: number
  /** Time to build the table, tree and signature (ms). */
  closeMs: number
  /**
   * Where the close spent its time (ms): `points` (ledger scan with the organic and verdict
   * checks), `inputs` (the table's chain reads), `tree` (table and Merkle tree), `sign` (claim
   * file and signature); then, once done, `publish` (the first gossip of the leaves, all parts)
   * and `post` (the root transaction). Logged and read by `bench/epoch-close.mjs`.
   */
  phases: Partial<Record<'points' | 'inputs' | 'tree' | 'sign' | 'publish' | 'post', number>>
}

export class EpochService {
  readonly ledger: PointsLedger
  readonly options: EpochServiceOptions
  private readonly signatures = new Map<string, Map<string, string>>()
  private readonly records = new Map<bigint, EpochRecord>()
  private readonly lastPublish = new Map<bigint, number>()
  /** When this validator first saw each epoch ended (the grace runs from there). */
  private readonly endedSeen = new Map<bigint, number>()
  private readonly loop: PollLoop
  private off: (() => void) | null = null
  private schedule: EpochSchedule | null = null

  constructor (private readonly init: EpochServiceInit, options: Partial<EpochServiceOptions> = {}) {
    this.options = { ...defaultEpochServiceOptions, ...options }
    this.ledger = new PointsLedger(init.store, init.logger)
    this.loop = new PollLoop(async () => { await this.step() }, init.logger, 'epochs')
  }

  async start (): Promise<void> {
    const { chain } = this.init
    this.schedule = await epochSchedule(chain)
    this.ledger.setSchedule(this.schedule)
    this.ledger.setEpoch(await chain.currentEpoch())
    // a closed epoch (root built) takes no more receipts: every validator's tree stays the one it signed
    this.ledger.setOpen(e => !this.records.has(e))
    this.ledger.attach(this.init.node)
    const offRoots = onRewardRoots(this.init.node, this.init.chain.deployment, this.init.logger, s => {
      this.acceptGossiped(s).catch(err => { this.init.logger.debug({ err: (err as Error).message }, 'epochs: cannot check a reward root signer') })
    })
    // Verdicts that passed the verdicts topic's validator (installed by the validator
    // service) arrive as gossipsub message events; our own are fed in by recordVerdict.
    const onMessage = (evt: CustomEvent<{ topic: string, data: Uint8Array }>): void => {
      const msg = evt.detail
      if (!isVerdictTopic(msg.topic) || msg.data.byteLength > MAX_VERDICT_BYTES) return
      let raw: unknown
      try { raw = JSON.parse(new TextDecoder().decode(msg.data)) } catch { return }
      const r = verdictSchema.safeParse(raw)
      if (r.success) this.recordVerdict(r.data).catch(err => { this.init.logger.warn({ err: (err as Error).message }, 'epochs: cannot record a verdict') })
    }
    const ps = this.init.node.pubsub as unknown as { addEventListener: (t: 'message', f: typeof onMessage) => void, removeEventListener: (t: 'message', f: typeof onMessage) => void }
    ps.addEventListener('message', onMessage)
    this.off = () => { offRoots(); ps.removeEventListener('message', onMessage) }
    this.loop.start(this.options.pollMs)
  }

  async stop (): Promise<void> {
    this.off?.()
    this.ledger.detach()
    await this.loop.stop()
    await this.ledger.flush()
  }

  /**
   * Verdicts the validator sees (its own and gossiped ones) decide which receipts count, but
   * only after the checks the validator itself applies: the EIP-712 signature (Slashing's
   * domain) is the named validator's, and that validator has active stake in NodeRegistry.
   * Anything else (a junk signature, an unstaked key, an exiting validator) is dropped here
   * and never reaches the ledger. Returns whether the verdict was recorded.
   */
  async recordVerdict (m: SignedVerdict): Promise<boolean> {
    const { chain } = this.init
    const d = chain.deployment
    let signer: string
    try { signer = verifyTypedData(heuristDomain(d.chainId, d.contracts.Slashing), VerdictTypes, m.verdict, m.signature) } catch { return false }
    if (signer !== getAddress(m.verdict.validator)) return false
    if (await this.stakeOf(signer) === 0n) return false
    await this.ledger.recordVerdict(m.verdict)
    return true
  }

  /** Active validator stake (0 when not a validator or exiting): a verdict's weight. */
  private async stakeOf (validator: string): Promise<bigint> {
    const { chain } = this.init
    const [stake, exitAt] = await chain.read<[bigint, bigint]>(chain.contracts.nodes, 'validators', [getAddress(validator)])
    return exitAt === 0n ? stake : 0n
  }

  /** The epochs this validator has closed, newest last. */
  closed (): EpochRecord[] { return [...this.records.values()].sort((a, b) => (a.epoch < b.epoch ? -1 : 1)) }

  /** Runs one poll now and waits for it (tests, and a clean stop). */
  async poll (): Promise<void> { await this.loop.run() }

  private async step (): Promise<void> {
    const { chain } = this.init
    const now = await chain.currentEpoch()
    this.ledger.setEpoch(now)
    const from = now > BigInt(this.options.lookback) ? now - BigInt(this.options.lookback) : 0n
    // signatures for epochs past the lookback can never be posted by us: let them go
    for (const key of [...this.signatures.keys()]) if (BigInt(key.slice(0, key.indexOf(':'))) < from) this.signatures.delete(key)
    for (const e of [...this.endedSeen.keys()]) if (e < from) this.endedSeen.delete(e)
    let time: bigint | null = null
    for (let e = from; e < now; e++) {
      const rec = this.records.get(e)
      if (!this.endedSeen.has(e)) this.endedSeen.set(e, Date.now())
      if (rec?.posted === true) continue
      // `posted`, not the root: an epoch nobody earned in posts root 0x0, once
      if (await chain.read<boolean>(chain.contracts.emission, 'posted', [e])) {
        if (rec !== undefined) { rec.posted = true; this.init.logger.info({ epoch: e.toString() }, 'epochs: root on chain') }
        continue
      }
      if (rec === undefined) {
        // the grace: receipts of e still arriving are filed before its root is built
        if (Date.now() - this.endedSeen.get(e)! < this.options.graceMs) continue
        // and the payment cap: the epoch's redemption window must be closed in chain time, so
        // every validator reads the same redemptions (economics/paid-points)
        const s = this.schedule!
        time ??= await chainTime(chain)
        if (time <= redemptionWindow(e, s.genesis, s.epochSeconds).through) continue
        await this.close(e)
      } else await this.tryPost(rec)
    }
  }

  /** Computes epoch `e`'s table and tree, writes the claim file, signs and gossips. */
  private async close (e: bigint): Promise<void> {
    const t0 = performance.now()
    const phases: EpochRecord['phases'] = {}
    let mark = t0
    const lap = (k: keyof EpochRecord['phases']): void => { const t = performance.now(); phases[k] = t - mark; mark = t }
    const { chain, wallet, logger } = this.init
    await this.ledger.flush()
    const organic = await chainOrganic(chain)
    // the registered miners' payouts read together (JSON-RPC batches), not one by one in the scan
    await organic.prefetch((await this.ledger.entries(e)).map(x => x.miner))
    // one stake read per validator for the whole epoch: every receipt's verdicts weigh the same
    const stakes = new Map<string, Promise<bigint>>()
    const stakeOf = async (v: string): Promise<bigint> => {
      const k = v.toLowerCase()
      let p = stakes.get(k)
      if (p === undefined) { p = this.stakeOf(v); stakes.set(k, p) }
      return await p
    }
    const pts = await this.ledger.points(e, { ...organic, stakeOf })
    lap('points')
    const input = await tableInput(chain, e, pts.miners, this.options.tipBps, this.options.maxTableMiners)
    lap('inputs')
    const table = computeRewardTable(input)
    const tree = buildRewardTree(table.entries)
    lap('tree')
    await writeRewardFile(this.init.rewardsDir, e, tree)
    const signature = await signRewardRoot(wallet, chain.deployment, { epoch: e, root: tree.root, total: tree.total })
    lap('sign')
    const message: RewardRootMessage = {
      v: 1, type: 'reward-root', chainId: chain.deployment.chainId, emission: chain.deployment.contracts.Emission,
      epoch: e.toString(), root: tree.root, total: tree.total.toString(), signature,
      leaves: tree.claims.map(c => [c.account, c.amount.toString()])
    }
    const parts = splitRewardMessage(message, this.options.leavesPerMessage).length
    const rec: EpochRecord = { epoch: e, table, tree, message, posted: false, postedBy: null, parts, closeMs: performance.now() - t0, phases }
    this.records.set(e, rec)
    logger.info({ epoch: e.toString(), root: tree.root, total: tree.total.toString(), cap: table.cap.toString(), miners: pts.miners.size, leaves: tree.claims.length, parts, closeMs: Math.round(rec.closeMs), phases: roundAll(phases), receipts: pts.receipts, counted: pts.counted, excluded: pts.excluded, unpaidUnits: pts.unpaidUnits.toString() }, 'epochs: reward table signed')
    this.addSignature({ message, signer: wallet.address })
    await this.tryPost(rec)
  }

  /**
   * A gossiped signature opens a new root entry (and a tree rebuild to check its leaves) only
   * when its signer is a staked validator, and only while few entries are open: a stranger's
   * key must not make us rebuild trees or grow this map without bound.
   */
  private async acceptGossiped (s: SignedRoot): Promise<void> {
    const { chain } = this.init
    const [stake] = await chain.read<[bigint, bigint]>(chain.contracts.nodes, 'validators', [s.signer])
    if (stake === 0n) return
    const key = rootKey(s.message.epoch, s.message.root, s.message.total)
    if (!this.signatures.has(key) && this.signatures.size >= MAX_OPEN_ROOTS) return
    this.addSignature(s)
  }

  private addSignature (s: SignedRoot): void {
    const m = s.message
    const key = rootKey(m.epoch, m.root, m.total)
    let sigs = this.signatures.get(key)
    if (sigs === undefined) {
      // a signature without leaves counts only for a root whose leaves were checked (or our own)
      if (m.sigOnly === true) return
      // a root whose leaves do not build it is never counted (checked once per key)
      if (checkLeaves(m) === null) { this.init.logger.warn({ epoch: m.epoch, signer: s.signer }, 'epochs: reward root whose leaves do not match'); return }
      sigs = new Map()
      this.signatures.set(key, sigs)
    }
    sigs.set(s.signer.toLowerCase(), m.signature)
  }

  private async tryPost (rec: EpochRecord): Promise<void> {
    const { chain, node, logger } = this.init
    const key = rootKey(rec.epoch, rec.tree.root, rec.tree.total)
    const sigs = [...(this.signatures.get(key) ?? new Map<string, string>())].map(([signer, sig]) => ({ signer, sig }))
    const last = this.lastPublish.get(rec.epoch)
    if (last === undefined || Date.now() - last >= this.options.republishMs) {
      this.lastPublish.set(rec.epoch, Date.now())
      // the leaves once; then the signature alone until the root is posted (and the leaves again after)
      const m = last === undefined ? rec.message : signatureOnly(rec.message)
      const t0 = performance.now()
      await publishRewardRoot(node, m, this.options.leavesPerMessage).catch(err => { logger.debug({ err: (err as Error).message }, 'epochs: cannot publish reward root') })
      if (last === undefined) rec.phases.publish = performance.now() - t0
    }
    const sorted = sortBySigner(sigs, s => s.signer)
    const quorum = await chain.read<boolean>(chain.contracts.nodes, 'isQuorum', [sorted.map(s => s.signer)])
    if (!quorum) return
    try {
      const t0 = performance.now()
      await chain.postRewardRoot(rec.epoch, rec.tree.root, rec.tree.total, sorted.map(s => s.sig))
      rec.phases.post = performance.now() - t0
      rec.posted = true
      rec.postedBy = this.init.wallet.address
      logger.info({ epoch: rec.epoch.toString(), root: rec.tree.root, total: rec.tree.total.toString(), signers: sorted.length }, 'epochs: reward root posted')
      // once more, so miners that missed the leaves get them with the root on chain
      await publishRewardRoot(node, rec.message, this.options.leavesPerMessage).catch(() => {})
    } catch (e) {
      if (await chain.read<boolean>(chain.contracts.emission, 'posted', [rec.epoch])) { rec.posted = true; return }
      if (isHeuristError(e)) logger.warn({ epoch: rec.epoch.toString(), code: e.code, err: e.message }, 'epochs: cannot post reward root')
      else throw e
    }
  }
}
