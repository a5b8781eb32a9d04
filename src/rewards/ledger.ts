/**
 * The points ledger: every receipt seen on `heurist/1/receipts`, filed under its own epoch
 * (the chain's schedule applied to the end time its miner signed: a function of signed data,
 * so every validator files it under the same epoch, whenever it arrives), and every verdict
 * on those receipts. A receipt is taken only for the chain's current epoch or the one before,
 * and only while its epoch is open (the epoch service closes an epoch after a grace period).
 * Points for an epoch come from the receipts that count (docs/ORGANIC.md):
 *   - organic: gossiped by the requester itself (the gateway's countersignature), a requester
 *     that funded a Payments deposit, and a requester unrelated to the miner (not paid out to
 *     the miner's payout address: Payments' `isRelated` rule, `relatedParties`);
 *   - not failed: no failing verdicts, or failing verdicts whose signers hold less validator
 *     stake than the passing ones' (weighed by stake, never by heads; only verdicts whose
 *     EIP-712 signature is their staked validator's reach the ledger: see epochs.ts);
 *   - one receipt per job id (the first one filed).
 * A receipt's points are its compute units (economics/compute-units: delivered tokens or image
 * tile-steps × GiB of model memory, as the miner signed them: whitepaper §3.2.1), bounded by the wall time
 * the receipt itself states, so a miner cannot claim more work than the job's duration allows,
 * and never more than the requester measured and countersigned. Then the payment cap: a
 * (requester, miner, pool) triple earns at most the units its requester's redemptions to that
 * miner in `Payments` bought at the protocol floor price, within the epoch's redemption window
 * (`capTriples`, economics/paid-points): a sybil gateway that countersigns anything earns its
 * miner only what it really paid. A voucher not redeemed when the window closes counts nothing.
 */
import { z } from 'zod'
import type { Store, Repository } from '../core/store.js'
import type { Logger } from '../core/logger.js'
import { addressFromPeerId } from '../core/identity.js'
import { receiptHash, type HeuristNode, type ReceiptMessage } from '../p2p/index.js'
import { cappedPoints, paidTripleKey, type Pool } from '../economics/index.js'

const address = z.string().regex(/^0x[0-9a-fA-F]{40}$/)
const hex32 = z.string().regex(/^0x[0-9a-fA-F]{64}$/)
const uint = z.string().regex(/^\d{1,78}$/)

const entrySchema = z.object({
  epoch: uint,
  receiptHash: hex32,
  jobId: hex32,
  miner: address,
  requester: address,
  /** The gossip publisher's operator address (who countersigned by publishing). */
  from: address,
  pool: z.number().int().min(0).max(1),
  computeUnits: uint,
  startedAt: uint,
  endedAt: uint,
  /** The units its requester measured and countersigned in the gossip message (checked there), when it did. */
  measuredUnits: uint.optional()
}).strict()
export type LedgerEntry = z.infer<typeof entrySchema>

/**
 * A counted receipt's points: the miner's signed units, never more than the receipt's own
 * duration allows, and never more than the units its requester measured and countersigned.
 */
export function receiptPoints (e: Pick<LedgerEntry, 'computeUnits' | 'startedAt' | 'endedAt' | 'measuredUnits'>): bigint {
  const seconds = BigInt(e.endedAt) - BigInt(e.startedAt)
  const bound = (seconds < 0n ? 1n : seconds + 1n) * 1000n * MAX_WEIGHT_GIB
  const units = BigInt(e.computeUnits)
  let pts = units < bound ? units : bound
  if (e.measuredUnits !== undefined && BigInt(e.measuredUnits) < pts) pts = BigInt(e.measuredUnits)
  return pts
}

const verdictSchema = z.object({ pass: z.boolean() }).strict()
const jobSchema = z.object({ receiptHash: hex32 }).strict()

/** At most this many GiB of model memory weigh one millisecond (a bound, not a price). */
export const MAX_WEIGHT_GIB = 1024n

export const POOL_NAMES: readonly Pool[] = ['llama', 'waifu']

export interface EpochPoints {
  epoch: bigint
  /** Points per miner (operator address, checksummed as in the receipt), per pool. */
  miners: Map<string, Record<Pool, bigint>>
  receipts: number
  counted: number
  /** Receipts left out, by reason. */
  excluded: Record<'not-organic' | 'failed' | 'duplicate', number>
  /** Counted units above what their requester paid the miner (not earned), summed over triples. */
  unpaidUnits: bigint
  /** Every counted (requester, miner, pool) triple with its payment cap. */
  triples: PaidTriple[]
}

export interface OrganicCheck {
  /** True when `requester` funded a Payments deposit (a paying gateway account). */
  isPayer: (requester: string) => Promise<boolean>
  /** NodeRegistry's `payoutOf`: a registered operator's owner, any other address itself. */
  payoutOf: (account: string) => Promise<string>
  /** A validator's active stake: the weight of its verdicts. Absent = every verdict weighs 0 (a miner's own estimate). */
  stakeOf?: (validator: string) => Promise<bigint>
  /**
   * Wei `requester` paid `miner` in `pool` through Payments in `epoch`'s redemption window
   * (inputs.ts `chainPaid`): the triple's receipts earn at most the units that buys at the
   * protocol floor (economics/paid-points). 0 = an unpaid triple earns nothing.
   */
  paidWei: (epoch: bigint, requester: string, miner: string, pool: Pool) => Promise<bigint>
}

/** A (requester, miner, pool) triple's counted units in an epoch, and what its payments let it earn. */
export interface PaidTriple { requester: string, miner: string, pool: Pool, units: bigint, paidWei: bigint, points: bigint }

/**
 * The one place the payment cap applies: counted receipts' units summed per (requester, miner,
 * pool), each sum capped at what the requester's redemptions to the miner in that pool bought
 * (`cappedPoints`). The ledger's points, the reward root, `status`' estimate and `earnings` all
 * come through here.
 */
export async function capTriples (epoch: bigint, counted: Iterable<{ requester: string, miner: string, pool: Pool, units: bigint }>, paidWei: OrganicCheck['paidWei']): Promise<PaidTriple[]> {
  const sums = new Map<string, { requester: string, miner: string, pool: Pool, units: bigint }>()
  for (const c of counted) {
    const k = paidTripleKey(c.requester, c.miner, c.pool)
    const t = sums.get(k)
    if (t === undefined) sums.set(k, { ...c })
    else t.units += c.units
  }
  const out: PaidTriple[] = []
  for (const t of sums.values()) {
    const paid = await paidWei(epoch, t.requester, t.miner, t.pool)
    out.push({ ...t, paidWei: paid, points: cappedPoints(t.units, paid, t.pool) })
  }
  return out
}

/**
 * Payments' `isRelated` rule applied to a receipt: the requester (the paying account) and the
 * miner are related when they are paid out to the same address (the miner's own key, its
 * owner's, or another operator of the same owner). Related revenue raises no cap on chain,
 * and a related receipt earns no points here (docs/ORGANIC.md).
 */
export async function relatedParties (requester: string, miner: string, payoutOf: (a: string) => Promise<string>): Promise<boolean> {
  if (requester.toLowerCase() === miner.toLowerCase()) return true
  return (await payoutOf(requester)).toLowerCase() === (await payoutOf(miner)).toLowerCase()
}

function pad (n: bigint): string { return n.toString().padStart(20, '0') }

/** The chain's epoch schedule (`Payments.genesis`, `Payments.epochSeconds`). */
export interface EpochSchedule { genesis: bigint, epochSeconds: bigint }

/**
 * The epoch a receipt belongs to: its signed end time on the chain's schedule; null without a
 * schedule. Times before genesis count as epoch 0 (a devnet's block times run ahead of the
 * wall clock; on a live chain epoch 0 is long closed, so a backdated receipt is dropped anyway).
 */
export function receiptEpoch (endedAt: bigint, s: EpochSchedule): bigint | null {
  if (s.epochSeconds <= 0n) return null
  return endedAt < s.genesis ? 0n : (endedAt - s.genesis) / s.epochSeconds
}

export class PointsLedger {
  private readonly receipts: Repository<LedgerEntry>
  private readonly verdicts: Repository<{ pass: boolean }>
  private readonly jobs: Repository<{ receiptHash: string }>
  private epoch: bigint | null = null
  private schedule: EpochSchedule | null = null
  private isOpen: (epoch: bigint) => boolean = () => true
  private off: (() => void) | null = null
  private writes: Promise<void> = Promise.resolve()

  constructor (private readonly store: Store, private readonly logger: Logger) {
    this.receipts = store.bucket('rw-receipts', entrySchema)
    this.verdicts = store.bucket('rw-verdicts', verdictSchema)
    this.jobs = store.bucket('rw-jobs', jobSchema)
  }

  /** The chain's current epoch: receipts of later epochs, or of epochs before the previous one, are dropped. Unknown: all are dropped. */
  setEpoch (epoch: bigint): void { this.epoch = epoch }
  /** The chain's schedule a receipt's epoch is computed on. Unknown: receipts go under the current epoch. */
  setSchedule (s: EpochSchedule): void { this.schedule = s }
  /** Which epochs still take receipts (the epoch service closes them after a grace period). Default all. */
  setOpen (isOpen: (epoch: bigint) => boolean): void { this.isOpen = isOpen }
  get currentEpoch (): bigint | null { return this.epoch }

  /** Files every receipt the node accepts from gossip. */
  attach (node: HeuristNode): void {
    this.off?.()
    this.off = node.onReceipt((m, from) => {
      this.writes = this.writes.then(async () => { await this.record(m, from) }).catch(err => { this.logger.warn({ err: (err as Error).message }, 'points ledger: cannot file a receipt') })
    })
  }

  detach (): void { this.off?.(); this.off = null }

  /** Waits for receipts being filed (tests and epoch close). */
  async flush (): Promise<void> { await this.writes }

  /** Files one gossiped receipt (already schema- and signature-checked by the p2p validator). */
  async record (m: ReceiptMessage, fromPeer: string): Promise<boolean> {
    if (this.epoch === null) return false
    const from = addressFromPeerId(fromPeer)
    if (from === null) return false
    const r = m.signed.receipt
    if (r.pool !== 0 && r.pool !== 1) return false
    // without the chain's schedule (a bare ledger in tools and tests), the current epoch;
    // the epoch and claim services always set it
    const epoch = this.schedule === null ? this.epoch : receiptEpoch(BigInt(r.endedAt), this.schedule)
    // signed end times in the future, or epochs long gone, are not taken; nor closed ones
    if (epoch === null || epoch > this.epoch || epoch + 1n < this.epoch || !this.isOpen(epoch)) return false
    const hash = receiptHash(m.signed, { chainId: m.chainId, verifyingContract: m.verifyingContract })
    const key = `${pad(epoch)}/${hash}`
    if (await this.receipts.get(key) !== undefined) return false
    const entry: LedgerEntry = {
      epoch: epoch.toString(), receiptHash: hash, jobId: r.jobId, miner: r.miner, requester: r.requester, from,
      pool: r.pool, computeUnits: r.computeUnits, startedAt: r.startedAt, endedAt: r.endedAt,
      ...(m.measured === undefined ? {} : { measuredUnits: m.measured.units })
    }
    const ops: Parameters<Store['batch']>[0] = [{ type: 'put', repo: this.receipts, key, value: entry }]
    // the first receipt for a job id is the one that counts; a second one is a duplicate
    if (await this.jobs.get(r.jobId) === undefined) ops.push({ type: 'put', repo: this.jobs, key: r.jobId, value: { receiptHash: hash } })
    await this.store.batch(ops)
    return true
  }

  /** A validator's verdict on a receipt (the last one per validator wins). */
  async recordVerdict (v: { receiptHash: string, validator: string, pass: boolean }): Promise<void> {
    await this.verdicts.put(`${v.receiptHash.toLowerCase()}/${v.validator.toLowerCase()}`, { pass: v.pass })
  }

  async verdictsOf (hash: string): Promise<Array<{ validator: string, pass: boolean }>> {
    const k = hash.toLowerCase()
    return (await this.verdicts.entries({ gt: `${k}/`, lt: `${k}/~`, limit: 1000 })).map(([key, v]) => ({ validator: key.slice(k.length + 1), pass: v.pass }))
  }

  /** Stake behind the passing and the failing verdicts on `hash`. */
  async verdictStake (hash: string, stakeOf: ((validator: string) => Promise<bigint>) | undefined): Promise<{ pass: bigint, fail: bigint }> {
    const out = { pass: 0n, fail: 0n }
    if (stakeOf === undefined) return out
    for (const v of await this.verdictsOf(hash)) out[v.pass ? 'pass' : 'fail'] += await stakeOf(v.validator)
    return out
  }

  async entries (epoch: bigint, limit = 1_000_000): Promise<LedgerEntry[]> {
    return (await this.receipts.entries({ gt: `${pad(epoch)}/`, lt: `${pad(epoch)}/~`, limit })).map(([, v]) => v)
  }

  /** Points per miner and pool for `epoch`, counting only the receipts that count. */
  async points (epoch: bigint, organic: OrganicCheck): Promise<EpochPoints> {
    const out: EpochPoints = { epoch, miners: new Map(), receipts: 0, counted: 0, excluded: { 'not-organic': 0, failed: 0, duplicate: 0 }, unpaidUnits: 0n, triples: [] }
    const counted: Array<{ requester: string, miner: string, pool: Pool, units: bigint }> = []
    const payer = new Map<string, boolean>()
    for (const e of await this.entries(epoch)) {
      out.receipts++
      const first = await this.jobs.get(e.jobId)
      if (first !== undefined && first.receiptHash !== e.receiptHash) { out.excluded.duplicate++; continue }
      const req = e.requester.toLowerCase()
      let paid = payer.get(req)
      if (paid === undefined) { paid = await organic.isPayer(e.requester); payer.set(req, paid) }
      if (!paid || e.from.toLowerCase() !== req || await relatedParties(req, e.miner, organic.payoutOf)) { out.excluded['not-organic']++; continue }
      const v = await this.verdictStake(e.receiptHash, organic.stakeOf)
      if (v.fail > 0n && v.fail >= v.pass) { out.excluded.failed++; continue }
      out.counted++
      counted.push({ requester: e.requester, miner: e.miner, pool: POOL_NAMES[e.pool]!, units: receiptPoints(e) })
    }
    out.triples = await capTriples(epoch, counted, organic.paidWei)
    for (const t of out.triples) {
      out.unpaidUnits += t.units - t.points
      if (t.points === 0n) continue
      let rec = out.miners.get(t.miner)
      if (rec === undefined) { rec = { llama: 0n, waifu: 0n }; out.miners.set(t.miner, rec) }
      rec[t.pool] += t.points
    }
    return out
  }
}
