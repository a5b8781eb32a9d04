/**
 * `heurist earnings`: one miner's epoch, reconciled. What the node's points ledger holds (its
 * receipts as gossiped, whether each counts and why not, the validators' verdicts on them) set
 * against what the chain says (the reward root, the claim, vouchers redeemed per payer,
 * slashes), with a reason for every gap between "work done" and "HEU received".
 *
 * The per-receipt rules are the ledger's (ledger.ts `points`); the ledger's own totals are
 * computed alongside, and a difference is reported as a gap rather than hidden.
 */
import { z } from 'zod'
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { getAddress } from 'ethers'
import { HeuristError } from '../core/errors.js'
import type { Store } from '../core/store.js'
import type { ChainClient } from '../chain/index.js'
import { readRewardFiles } from '../chain/index.js'
import { FLOOR_WEI_PER_UNIT, multiplierWad, redemptionWindow, type Pool } from '../economics/index.js'
import { POOL_NAMES, capTriples, receiptPoints, relatedParties, type PointsLedger, type OrganicCheck } from './ledger.js'
import { epochFacts, minerFacts, chainOrganic } from './inputs.js'

export type ReceiptStatus = 'counted' | 'not-organic' | 'failed' | 'duplicate'

export interface VerdictLine { validator: string, pass: boolean, stake: string }

export interface ReceiptLine {
  receiptHash: string
  jobId: string
  requester: string
  /** Who gossiped it (the countersignature that makes it organic when it is the requester). */
  from: string
  pool: Pool
  computeUnits: string
  /** Points it adds (0 unless counted). */
  points: string
  status: ReceiptStatus
  /** Why it does not count; null when it does. */
  reason: string | null
  verdicts: VerdictLine[]
}

export interface LedgerEarnings {
  epoch: string
  receipts: ReceiptLine[]
  /** Receipts some validator sampled (at least one verdict heard). */
  sampled: number
  points: Record<Pool, string>
  /** The ledger's own total for this miner (ledger.ts), to show the two agree. */
  ledgerPoints: Record<Pool, string>
  /** Counted receipts left out of `receipts` to bound the listing (every one that does not count is listed). */
  receiptsOmitted: number
  /**
   * Requesters whose counted units were more than their redemptions to this miner in the
   * epoch's window paid for at the floor price: units counted, wei paid, points earned.
   * Absent in reports written before the payment cap.
   */
  unpaid?: Array<{ requester: string, pool: Pool, units: string, paidWei: string, points: string }>
  /** Where this came from: the store itself, or the running miner's report (with its time). */
  source: string
}

export interface Redemption { payer: string, amount: string, nodeShare: string, tx: string, block: number }

export interface ChainEarnings {
  epoch: string
  current: boolean
  startsAt: string
  endsAt: string
  rootPosted: boolean
  root: string | null
  rootTotal: string | null
  /** The claim for this node's payout account: Emission's Claimed event. */
  claim: { amount: string, tx: string, block: number } | null
  /** Vouchers redeemed in Payments to this miner in the epoch's redemption window (economics/paid-points), per payer (node share = what this node got). */
  redeemed: Array<{ payer: string, nodeShare: string, transactions: Redemption[] }>
  slashes: Array<{ amount: string, tx: string, block: number }>
  stake: string
  votes: string
  multiplierWad: string
}

export type GapCode =
  | 'RECEIPT_NOT_ORGANIC' | 'RECEIPT_FAILED' | 'RECEIPT_DUPLICATE' | 'EPOCH_RUNNING' | 'NO_ROOT' | 'NOT_IN_ROOT'
  | 'NO_CLAIM_FILE' | 'CLAIM_FAILED' | 'NOT_CLAIMED' | 'SLASHED' | 'LEDGER_MISMATCH' | 'NO_LEDGER' | 'RECEIPTS_MISSING'
  | 'UNPAID_UNITS'

export interface Gap { code: GapCode, reason: string, receiptHash?: string }

export interface EpochEarnings {
  epoch: string
  operator: string
  payout: string
  ledger: LedgerEarnings | null
  chain: ChainEarnings
  /** Jobs the miner's job server served in the epoch (from its report); null when unknown. */
  jobsServed: number | null
  /** This node's leaf in the posted root (the claim file), in wei; null when unknown. */
  expectedReward: string | null
  gaps: Gap[]
}

function short (a: string): string { return `${a.slice(0, 8)}…${a.slice(-4)}` }
function same (a: string, b: string): boolean { return a.toLowerCase() === b.toLowerCase() }

const jobFirst = z.object({ receiptHash: z.string() }).strict()

/**
 * This miner's receipts in `epoch` from the points ledger, each with its status and reason, by
 * the rules ledger.ts `points` applies (organic, not failed by stake, first per job id).
 */
export async function ledgerEarnings (ledger: PointsLedger, store: Store, epoch: bigint, operator: string, check: OrganicCheck & { stakeOf: (v: string) => Promise<bigint> }, maxCountedListed = MAX_LISTED): Promise<LedgerEarnings> {
  const firstOfJob = store.bucket('rw-jobs', jobFirst)
  const points: Record<Pool, bigint> = { llama: 0n, waifu: 0n }
  const counted: Array<{ requester: string, miner: string, pool: Pool, units: bigint }> = []
  const paid = new Map<string, boolean>()
  const receipts: ReceiptLine[] = []
  let sampled = 0
  let listed = 0
  let omitted = 0
  for (const e of (await ledger.entries(epoch)).filter(x => same(x.miner, operator))) {
    const pool = POOL_NAMES[e.pool]!
    const verdicts: VerdictLine[] = []
    for (const v of await ledger.verdictsOf(e.receiptHash)) verdicts.push({ validator: getAddress(v.validator), pass: v.pass, stake: (await check.stakeOf(v.validator)).toString() })
    if (verdicts.length > 0) sampled++
    const line: ReceiptLine = { receiptHash: e.receiptHash, jobId: e.jobId, requester: e.requester, from: e.from, pool, computeUnits: e.computeUnits, points: '0', status: 'counted', reason: null, verdicts }
    receipts.push(line)
    const first = await firstOfJob.get(e.jobId)
    if (first !== undefined && first.receiptHash !== e.receiptHash) {
      line.status = 'duplicate'
      line.reason = `a second receipt for job ${short(e.jobId)}: only the first one filed counts (${short(first.receiptHash)})`
      continue
    }
    const req = e.requester.toLowerCase()
    let isPaid = paid.get(req)
    if (isPaid === undefined) { isPaid = await check.isPayer(e.requester); paid.set(req, isPaid) }
    if (!isPaid || !same(e.from, e.requester) || await relatedParties(e.requester, e.miner, check.payoutOf)) {
      line.status = 'not-organic'
      line.reason = same(e.requester, e.miner)
        ? 'not organic: the miner was its own requester (self-dealing earns nothing)'
        : !isPaid
            ? `not organic: requester ${e.requester} has no Payments deposit (unpaid work earns no points)`
            : !same(e.from, e.requester)
                ? `not organic: gossiped by ${e.from}, not by its requester ${e.requester} (only the requester's countersignature counts)`
                : `not organic: requester ${e.requester} is paid out to the miner's payout address (related parties earn nothing)`
      continue
    }
    const fail = verdicts.filter(v => !v.pass)
    const failStake = fail.reduce((s, v) => s + BigInt(v.stake), 0n)
    const passStake = verdicts.filter(v => v.pass).reduce((s, v) => s + BigInt(v.stake), 0n)
    if (failStake > 0n && failStake >= passStake) {
      line.status = 'failed'
      line.reason = `failed validation: failing verdicts by ${fail.map(v => v.validator).join(', ')} (stake ${failStake.toString()} against ${passStake.toString()} passing)`
      continue
    }
    // the ledger's own rule (one copy): duration bound and the requester's countersigned units;
    // the payment cap applies per requester below (capTriples, the ledger's one copy)
    const pts = receiptPoints(e)
    line.points = pts.toString()
    counted.push({ requester: e.requester, miner: e.miner, pool, units: pts })
    if (++listed > maxCountedListed) { receipts.pop(); omitted++ }
  }
  const unpaid: NonNullable<LedgerEarnings['unpaid']> = []
  for (const t of await capTriples(epoch, counted, check.paidWei)) {
    points[t.pool] += t.points
    if (t.points < t.units) unpaid.push({ requester: t.requester, pool: t.pool, units: t.units.toString(), paidWei: t.paidWei.toString(), points: t.points.toString() })
  }
  const mine = (await ledger.points(epoch, check)).miners
  const own = [...mine].find(([a]) => same(a, operator))?.[1] ?? { llama: 0n, waifu: 0n }
  return {
    epoch: epoch.toString(),
    receipts,
    sampled,
    points: { llama: points.llama.toString(), waifu: points.waifu.toString() },
    ledgerPoints: { llama: own.llama.toString(), waifu: own.waifu.toString() },
    receiptsOmitted: omitted,
    unpaid,
    source: 'store'
  }
}

// ---- the running miner's report (its store is locked while it runs) ----

export const LEDGER_REPORT_FILE = 'earnings-ledger.json'
const MAX_LISTED = 2000
const MAX_REPORT_BYTES = 32 * 1024 * 1024
const uintStr = z.string().regex(/^\d{1,78}$/)
const poolPoints = z.object({ llama: uintStr, waifu: uintStr }).strict()
const ledgerEarningsSchema = z.object({
  epoch: uintStr,
  receipts: z.array(z.object({
    receiptHash: z.string().max(66), jobId: z.string().max(66), requester: z.string().max(42), from: z.string().max(42),
    pool: z.enum(['llama', 'waifu']), computeUnits: uintStr, points: uintStr,
    status: z.enum(['counted', 'not-organic', 'failed', 'duplicate']), reason: z.string().max(2000).nullable(),
    verdicts: z.array(z.object({ validator: z.string().max(42), pass: z.boolean(), stake: uintStr }).strict()).max(1000)
  }).strict()).max(20_000),
  sampled: z.number().int().min(0),
  points: poolPoints,
  ledgerPoints: poolPoints,
  receiptsOmitted: z.number().int().min(0),
  unpaid: z.array(z.object({ requester: z.string().max(42), pool: z.enum(['llama', 'waifu']), units: uintStr, paidWei: uintStr, points: uintStr }).strict()).max(20_000).optional(),
  source: z.string().max(200)
}).strict()
const ledgerReportSchema = z.object({
  operator: z.string().regex(/^0x[0-9a-fA-F]{40}$/),
  updatedAt: z.string().max(40),
  epochs: z.array(ledgerEarningsSchema).max(4),
  /** Jobs this miner served per epoch, as its job server counted them (kept across restarts). */
  served: z.array(z.object({ epoch: uintStr, jobs: z.number().int().min(0) }).strict()).max(64)
}).strict()
export type LedgerReport = z.infer<typeof ledgerReportSchema>

/** Written by a running miner every minute: its ledger part for the current and the previous epoch. */
export async function writeLedgerReport (rewardsDir: string, operator: string, epochs: LedgerEarnings[], served: Array<{ epoch: string, jobs: number }> = []): Promise<void> {
  await mkdir(rewardsDir, { recursive: true })
  const path = join(rewardsDir, LEDGER_REPORT_FILE)
  const tmp = `${path}.${process.pid}.tmp`
  const report: LedgerReport = { operator, updatedAt: new Date().toISOString(), epochs: epochs.slice(-4), served: served.slice(-64) }
  await writeFile(tmp, JSON.stringify(report))
  await rename(tmp, path)
}

/** The running miner's report, or null when there is none. A bad file is an error naming it. */
export async function readLedgerReport (rewardsDir: string): Promise<LedgerReport | null> {
  const path = join(rewardsDir, LEDGER_REPORT_FILE)
  let size: number
  try { size = (await stat(path)).size } catch { return null }
  if (size > MAX_REPORT_BYTES) throw new HeuristError('REWARDS_BAD_LEDGER_REPORT', `${path} is too large`)
  try {
    return ledgerReportSchema.parse(JSON.parse(await readFile(path, 'utf8')))
  } catch {
    throw new HeuristError('REWARDS_BAD_LEDGER_REPORT', `${path} is not a ledger report`)
  }
}

/** What the chain says about this miner's `epoch`. `fromBlock`: the deployment block. */
export async function chainEarnings (chain: ChainClient, epoch: bigint, operator: string, fromBlock: number): Promise<ChainEarnings & { payout: string }> {
  const facts = await epochFacts(chain, epoch)
  const start = facts.genesis + epoch * facts.epochSeconds
  const end = start + facts.epochSeconds
  const current = await chain.currentEpoch()
  const me = await minerFacts(chain, operator)
  const { emission } = chain.contracts
  const posted = await chain.read<boolean>(emission, 'posted', [epoch])
  const root = posted ? await chain.read<string>(emission, 'roots', [epoch]) : null
  const total = posted ? await chain.read<bigint>(emission, 'totals', [epoch]) : null
  const head = await chain.provider.getBlockNumber()
  const times = new Map<number, bigint>()
  const epochOf = async (block: number): Promise<bigint> => {
    let t = times.get(block)
    if (t === undefined) { t = BigInt((await chain.provider.getBlock(block))?.timestamp ?? 0); times.set(block, t) }
    return (t - facts.genesis) / facts.epochSeconds
  }
  let claim: ChainEarnings['claim'] = null
  for (const ev of await chain.events('emission', 'Claimed', fromBlock, head)) {
    if (BigInt(ev.args[0] as bigint) === epoch && same(String(ev.args[1]), me.payout)) claim = { amount: BigInt(ev.args[2] as bigint).toString(), tx: ev.transactionHash, block: ev.blockNumber }
  }
  // redemptions in the epoch's redemption window (what the payment cap reads), not its blocks
  const window = redemptionWindow(epoch, facts.genesis, facts.epochSeconds)
  const inWindow = async (block: number): Promise<boolean> => {
    let t = times.get(block)
    if (t === undefined) { t = BigInt((await chain.provider.getBlock(block))?.timestamp ?? 0); times.set(block, t) }
    return t > window.after && t <= window.through
  }
  const byPayer = new Map<string, Redemption[]>()
  for (const ev of await chain.events('payments', 'Redeemed', fromBlock, head)) {
    if (!same(String(ev.args[1]), operator) || !await inWindow(ev.blockNumber)) continue
    const payer = getAddress(String(ev.args[0]))
    const list = byPayer.get(payer) ?? []
    list.push({ payer, amount: BigInt(ev.args[4] as bigint).toString(), nodeShare: BigInt(ev.args[5] as bigint).toString(), tx: ev.transactionHash, block: ev.blockNumber })
    byPayer.set(payer, list)
  }
  const slashes: ChainEarnings['slashes'] = []
  for (const ev of await chain.events('nodes', 'Slashed', fromBlock, head)) {
    if (same(String(ev.args[0]), operator) && await epochOf(ev.blockNumber) === epoch) slashes.push({ amount: BigInt(ev.args[1] as bigint).toString(), tx: ev.transactionHash, block: ev.blockNumber })
  }
  return {
    epoch: epoch.toString(),
    current: epoch === current,
    startsAt: new Date(Number(start) * 1000).toISOString(),
    endsAt: new Date(Number(end) * 1000).toISOString(),
    rootPosted: posted,
    root,
    rootTotal: total === null ? null : total.toString(),
    claim,
    redeemed: [...byPayer].map(([payer, txs]) => ({ payer, nodeShare: txs.reduce((s, t) => s + BigInt(t.nodeShare), 0n).toString(), transactions: txs })),
    slashes,
    stake: me.stake.toString(),
    votes: me.votes.toString(),
    multiplierWad: multiplierWad(me.stake, me.votes).toString(),
    payout: me.payout
  }
}

// ---- claims that failed, as the running miner saw them ----

export const CLAIM_FAILURES_FILE = 'claim-failures.json'
const MAX_CLAIM_FAILURES = 256
const claimFailuresSchema = z.array(z.object({ epoch: z.string().regex(/^\d{1,20}$/), code: z.string().max(100), reason: z.string().max(1000), at: z.string().max(40) }).strict()).max(MAX_CLAIM_FAILURES)
export type ClaimFailure = z.infer<typeof claimFailuresSchema>[number]

/** Appends one failed claim to `<rewardsDir>/claim-failures.json` (the newest 256 kept). */
export async function recordClaimFailure (rewardsDir: string, epoch: bigint, code: string, reason: string): Promise<void> {
  const list = await readClaimFailures(rewardsDir)
  list.push({ epoch: epoch.toString(), code: code.slice(0, 100), reason: reason.slice(0, 1000), at: new Date().toISOString() })
  await mkdir(rewardsDir, { recursive: true })
  const path = join(rewardsDir, CLAIM_FAILURES_FILE)
  const tmp = `${path}.${process.pid}.tmp`
  await writeFile(tmp, JSON.stringify(list.slice(-MAX_CLAIM_FAILURES)))
  await rename(tmp, path)
}

export async function readClaimFailures (rewardsDir: string): Promise<ClaimFailure[]> {
  const path = join(rewardsDir, CLAIM_FAILURES_FILE)
  let size: number
  try { size = (await stat(path)).size } catch { return [] }
  if (size > 1024 * 1024) throw new HeuristError('REWARDS_BAD_CLAIM_FAILURES', `${path} is too large`)
  try {
    return claimFailuresSchema.parse(JSON.parse(await readFile(path, 'utf8')))
  } catch {
    throw new HeuristError('REWARDS_BAD_CLAIM_FAILURES', `${path} is not a list of claim failures`)
  }
}

/**
 * One epoch, reconciled: the ledger part (null when the node's store is not readable), the
 * chain part, this node's leaf from the claim file, and a reason for every gap.
 */
export async function reconcileEarnings (input: { operator: string, ledger: LedgerEarnings | null, chain: ChainEarnings & { payout: string }, rewardsDir: string, jobsServed?: number | null }): Promise<EpochEarnings> {
  const { chain: c, ledger: l, operator } = input
  const epoch = BigInt(c.epoch)
  const gaps: Gap[] = []
  if (l === null) gaps.push({ code: 'NO_LEDGER', reason: 'this node\'s points ledger is not readable here (a running miner holds the store and has not written rewards/earnings-ledger.json for this epoch yet): receipts are not listed' })
  const served = input.jobsServed ?? null
  const gossiped = l === null ? null : l.receipts.length + l.receiptsOmitted
  if (served !== null && gossiped !== null && served > gossiped) {
    gaps.push({ code: 'RECEIPTS_MISSING', reason: `served ${served} jobs but heard ${gossiped} receipts: the requesters of the other ${served - gossiped} never gossiped them (unpaid or local jobs, or a gateway that does not publish), and those earn no points` })
  }
  for (const r of l?.receipts ?? []) {
    if (r.status === 'counted') continue
    gaps.push({ code: r.status === 'failed' ? 'RECEIPT_FAILED' : r.status === 'duplicate' ? 'RECEIPT_DUPLICATE' : 'RECEIPT_NOT_ORGANIC', reason: r.reason ?? r.status, receiptHash: r.receiptHash })
  }
  if (l !== null && (l.points.llama !== l.ledgerPoints.llama || l.points.waifu !== l.ledgerPoints.waifu)) {
    gaps.push({ code: 'LEDGER_MISMATCH', reason: `the receipts listed add up to ${l.points.llama}/${l.points.waifu} points (llama/waifu) but the ledger counts ${l.ledgerPoints.llama}/${l.ledgerPoints.waifu}: the ledger's rules changed; trust its total` })
  }
  for (const u of l?.unpaid ?? []) {
    const floor = FLOOR_WEI_PER_UNIT[u.pool]
    gaps.push({ code: 'UNPAID_UNITS', reason: `requester ${u.requester} countersigned ${u.units} units (${u.pool}) but its redemptions to this miner in the epoch's window paid ${u.paidWei} wei, which buys ${u.points} at the floor of ${floor} wei per unit: points are bounded by what was paid (a voucher not redeemed before the window closed, or a price under the floor, earns nothing for the difference)` })
  }
  for (const s of c.slashes) gaps.push({ code: 'SLASHED', reason: `slashed ${s.amount} wei of collateral in this epoch (tx ${s.tx}); a miner slashed in an epoch earns nothing for it` })

  const file = (await readRewardFiles(input.rewardsDir)).find(f => BigInt(f.epoch) === epoch)
  const leaf = file?.claims.find(x => same(x.account, c.payout))
  const expected = leaf === undefined ? null : leaf.amount
  const failures = (await readClaimFailures(input.rewardsDir)).filter(f => f.epoch === c.epoch)
  const hasPoints = l === null || BigInt(l.points.llama) + BigInt(l.points.waifu) > 0n
  if (c.current) {
    gaps.push({ code: 'EPOCH_RUNNING', reason: `the epoch is still running (ends ${c.endsAt}); rewards come once validators post its root` })
  } else if (!c.rootPosted) {
    gaps.push({ code: 'NO_ROOT', reason: 'no reward root posted for this finished epoch yet: validators holding 2/3 of the validator stake have not co-signed one' })
  } else if (c.claim === null) {
    if (file !== undefined && leaf === undefined) {
      if (hasPoints) gaps.push({ code: 'NOT_IN_ROOT', reason: `the posted root pays nothing to ${c.payout}: the validators' table did not include this node's points (their ledgers did not count its receipts)` })
    } else if (file === undefined) {
      if (hasPoints) gaps.push({ code: 'NO_CLAIM_FILE', reason: `a root is posted but this node never heard its leaves (no epoch-${c.epoch}.json in ${input.rewardsDir}): keep mine running to hear them from the validators` })
    } else if (failures.length > 0) {
      const last = failures[failures.length - 1]!
      gaps.push({ code: 'CLAIM_FAILED', reason: `the claim failed ${failures.length} time(s), last at ${last.at}: ${last.reason} (${last.code}); \`heurist claim --epoch ${c.epoch}\` retries` })
    } else {
      gaps.push({ code: 'NOT_CLAIMED', reason: `${expected ?? '?'} wei is claimable but not claimed (auto-claim off?): \`heurist claim --epoch ${c.epoch}\`` })
    }
  }
  return { epoch: c.epoch, operator, payout: c.payout, ledger: l, chain: stripPayout(c), jobsServed: served, expectedReward: expected, gaps }
}

function stripPayout (c: ChainEarnings & { payout: string }): ChainEarnings {
  const { payout: _payout, ...rest } = c
  return rest
}

/** A miner's organic check against the chain: deposits from Payments, payouts from NodeRegistry, verdict weight from validator stake. */
export async function chainOrganicCheck (chain: ChainClient): Promise<OrganicCheck & { stakeOf: (v: string) => Promise<bigint> }> {
  const organic = await chainOrganic(chain)
  const stakes = new Map<string, bigint>()
  return {
    ...organic,
    stakeOf: async (v) => {
      const k = v.toLowerCase()
      let s = stakes.get(k)
      if (s === undefined) {
        const [stake, exitAt] = await chain.read<[bigint, bigint]>(chain.contracts.nodes, 'validators', [getAddress(v)])
        s = exitAt === 0n ? stake : 0n
        stakes.set(k, s)
      }
      return s
    }
  }
}
