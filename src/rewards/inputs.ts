/**
 * What the reward table reads from the chain, in one place: the epoch's revenue per pool,
 * the schedule and its parameters from the deployment, each miner's payout address, stake and
 * votes, who voted for it, who was slashed, which requesters ever funded a deposit and whom
 * each is paid out to (the organic test).
 */
import type { EventLog } from 'ethers'
import type { ChainClient } from '../chain/index.js'
import { HeuristError } from '../core/errors.js'
import { POOLS, paidByTriple, paidTripleKey, redemptionWindow, REDEMPTION_WINDOW_SECONDS, type Pool, type Season2Params, type PaidRedemption } from '../economics/index.js'
import type { MinerEpoch, RewardTableInput, Schedule } from './table.js'
import type { EpochSchedule } from './ledger.js'

/**
 * At most this many registered miners in one epoch's table (bounds chain reads; each one put
 * up the minimum collateral). Unregistered keys are dropped before this bound, so throwaway
 * keys cannot block an epoch; the leaves travel in as many gossip messages as they need.
 */
export const MAX_TABLE_MINERS = 50_000

/** Chain reads one epoch close keeps in flight (they travel as JSON-RPC batches: chain/provider.ts). */
export const CLOSE_READS_IN_FLIGHT = 32

/** `fn` over `items` with at most `limit` calls in flight; results in the items' order. */
async function mapBounded<T, R> (items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length)
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++
      out[i] = await fn(items[i]!)
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker))
  return out
}

export interface EpochChainFacts {
  schedule: Schedule
  epochSeconds: bigint
  genesis: bigint
  revenue: Record<Pool, bigint>
  season2: Season2Params
}

export async function epochFacts (chain: ChainClient, epoch: bigint): Promise<EpochChainFacts> {
  const p = chain.deployment.params
  const [llm, image] = await chain.read<[bigint, bigint]>(chain.contracts.payments, 'epochRevenue', [epoch])
  const genesis = await chain.read<bigint>(chain.contracts.payments, 'genesis')
  return {
    schedule: p.schedule,
    epochSeconds: BigInt(p.epochSeconds),
    genesis,
    revenue: { llama: llm, waifu: image },
    season2: { base: BigInt(p.season2Base), maxDynamic: BigInt(p.season2MaxDynamic), halfSaturation: BigInt(p.season2HalfSaturation) }
  }
}

/** The chain's epoch schedule, from `Payments` (the contract that defines epochs). */
export async function epochSchedule (chain: ChainClient): Promise<EpochSchedule> {
  const genesis = await chain.read<bigint>(chain.contracts.payments, 'genesis')
  const epochSeconds = await chain.read<bigint>(chain.contracts.payments, 'epochSeconds')
  return { genesis, epochSeconds }
}

async function logs (chain: ChainClient, contract: 'payments' | 'voting' | 'slashing' | 'nodes', event: string, args: unknown[] = []): Promise<EventLog[]> {
  const c = chain.contracts[contract]
  try {
    const filter = c.filters[event]!(...args)
    return (await c.queryFilter(filter, chain.deployment.deployBlock)).filter((l): l is EventLog => 'args' in l)
  } catch (e) {
    throw new HeuristError('REWARDS_CHAIN_READ', `cannot read ${event} events: ${(e as Error).message}`, { cause: e })
  }
}

/** Addresses that ever funded a Payments deposit: the paying accounts (organic usage). */
export async function payers (chain: ChainClient): Promise<Set<string>> {
  const out = new Set<string>()
  for (const l of await logs(chain, 'payments', 'Deposited')) out.add(String(l.args[0]).toLowerCase())
  return out
}

/** The chain's latest block time (unix seconds): what "chain time" means for windows and roots. */
export async function chainTime (chain: ChainClient): Promise<bigint> {
  const b = await chain.provider.getBlock('latest')
  if (b === null) throw new HeuristError('REWARDS_CHAIN_READ', 'cannot read the latest block')
  return BigInt(b.timestamp)
}

/**
 * The first block in [lo, hi] whose timestamp is above `t`, or hi + 1 when none is: a binary
 * search on block times (never decreasing), about log2(hi − lo) block reads.
 */
async function firstBlockAfter (chain: ChainClient, t: bigint, lo: number, hi: number, times: Map<number, bigint>): Promise<number> {
  const timeOf = async (n: number): Promise<bigint> => {
    let v = times.get(n)
    if (v === undefined) {
      const b = await chain.provider.getBlock(n)
      if (b === null) throw new HeuristError('REWARDS_CHAIN_READ', `cannot read block ${n}`)
      v = BigInt(b.timestamp)
      times.set(n, v)
    }
    return v
  }
  let a = lo
  let b = hi + 1
  for (let i = 0; i < 64 && a < b; i++) {
    const mid = Math.floor((a + b) / 2)
    if (await timeOf(mid) > t) b = mid
    else a = mid + 1
  }
  return a
}

/** Blocks per event query while scanning a window (each query's logs are folded in before the next). */
const WINDOW_CHUNK_BLOCKS = 10_000

/**
 * Wei redeemed in `Payments` per (requester, miner, pool) in epoch `epoch`'s redemption window
 * (economics/paid-points: block time in (end(N−1) + W, end(N) + W], related redemptions left
 * out, a redemption credited to its frontend, else its payer). The window's blocks are found
 * by binary search on block times, then only those blocks' Redeemed events are read, in
 * chunks folded into one map (its size is bounded by the distinct paying triples).
 */
export async function paidInEpoch (chain: ChainClient, epoch: bigint, schedule: EpochSchedule, windowSeconds = REDEMPTION_WINDOW_SECONDS): Promise<Map<string, bigint>> {
  const w = redemptionWindow(epoch, schedule.genesis, schedule.epochSeconds, windowSeconds)
  const head = await chain.provider.getBlockNumber()
  const start = chain.deployment.deployBlock
  const times = new Map<number, bigint>()
  const from = await firstBlockAfter(chain, w.after, start, head, times)
  const to = (await firstBlockAfter(chain, w.through, from, head, times)) - 1
  const out = new Map<string, bigint>()
  for (let lo = from; lo <= to; lo += WINDOW_CHUNK_BLOCKS) {
    const hi = Math.min(to, lo + WINDOW_CHUNK_BLOCKS - 1)
    const chunk: PaidRedemption[] = []
    for (const l of await chain.events('payments', 'Redeemed', lo, hi)) {
      const pool = POOLS[Number(l.args[3])]
      if (pool === undefined) continue
      // every block in [from, to] is inside the window by the search: its time is not read again
      chunk.push({ payer: String(l.args[0]), miner: String(l.args[1]), pool, amount: BigInt(l.args[4] as bigint), related: Boolean(l.args[9]), frontend: String(l.args[10]), time: w.through })
    }
    for (const [k, v] of paidByTriple(chunk, w)) out.set(k, (out.get(k) ?? 0n) + v)
  }
  return out
}

/** What `paidInEpoch` gives, read once per epoch and looked up per triple. */
export type PaidWei = (epoch: bigint, requester: string, miner: string, pool: Pool) => Promise<bigint>

/** Per-epoch cache of `paidInEpoch` (one window scan per epoch asked about). */
export function chainPaid (chain: ChainClient): PaidWei {
  const epochs = new Map<bigint, Promise<Map<string, bigint>>>()
  let schedule: Promise<EpochSchedule> | null = null
  return async (epoch, requester, miner, pool) => {
    let m = epochs.get(epoch)
    if (m === undefined) {
      schedule ??= epochSchedule(chain)
      const s = schedule
      m = s.then(async sc => await paidInEpoch(chain, epoch, sc))
      m.catch(() => { epochs.delete(epoch); schedule = null })
      epochs.set(epoch, m)
    }
    return (await m).get(paidTripleKey(requester, miner, pool)) ?? 0n
  }
}

/**
 * The ledger's organic test against the chain: who funded a deposit (one event scan) and each
 * address's payout from NodeRegistry, the two facts Payments uses to tell organic revenue from
 * revenue between related parties; and what each requester paid each miner in an epoch's
 * redemption window (the points cap). A key that never registered is paid out to itself (only
 * registration sets an owner): no read, so throwaway keys cost nothing here; the others are read
 * once per address, and `prefetch` reads many at once.
 */
export async function chainOrganic (chain: ChainClient): Promise<{ isPayer: (a: string) => Promise<boolean>, payoutOf: (a: string) => Promise<string>, prefetch: (addresses: Iterable<string>) => Promise<void>, paidWei: PaidWei }> {
  const [paying, registered] = await Promise.all([payers(chain), everRegistered(chain)])
  const payouts = new Map<string, Promise<string>>()
  const payoutOf = async (a: string): Promise<string> => {
    const k = a.toLowerCase()
    if (!registered.has(k)) return a
    let p = payouts.get(k)
    if (p === undefined) {
      p = chain.read<string>(chain.contracts.nodes, 'payoutOf', [a]).catch((e: unknown) => {
        payouts.delete(k)
        throw new HeuristError('REWARDS_CHAIN_READ', `cannot read the payout of ${a}: ${(e as Error).message}`, { cause: e })
      })
      payouts.set(k, p)
    }
    return await p
  }
  return {
    paidWei: chainPaid(chain),
    isPayer: async (a) => paying.has(a.toLowerCase()),
    payoutOf,
    prefetch: async (addresses) => { await mapBounded([...new Set([...addresses].map(a => a.toLowerCase()))], CLOSE_READS_IN_FLIGHT, payoutOf) }
  }
}

/** Operators that ever registered in NodeRegistry (one event scan, not one read per key). */
export async function everRegistered (chain: ChainClient): Promise<Set<string>> {
  const out = new Set<string>()
  for (const l of await logs(chain, 'nodes', 'NodeRegistered')) out.add(String(l.args[0]).toLowerCase())
  return out
}

/** Miners slashed at or after the start of `epoch` (their whole epoch earns nothing). */
export async function slashedSince (chain: ChainClient, epoch: bigint, facts: EpochChainFacts): Promise<Set<string>> {
  const start = facts.genesis + epoch * facts.epochSeconds
  const out = new Set<string>()
  const times = new Map<number, bigint>()
  for (const l of await logs(chain, 'slashing', 'MinerSlashed')) {
    let t = times.get(l.blockNumber)
    if (t === undefined) {
      const b = await chain.provider.getBlock(l.blockNumber)
      t = BigInt(b?.timestamp ?? 0)
      times.set(l.blockNumber, t)
    }
    if (t >= start) out.add(String(l.args[0]).toLowerCase())
  }
  return out
}

/** Every slash on chain, newest last (the dashboard's list). */
export async function slashes (chain: ChainClient): Promise<Array<{ miner: string, receiptHash: string, amount: bigint, block: number, tx: string }>> {
  return (await logs(chain, 'slashing', 'MinerSlashed')).map(l => ({ miner: String(l.args[0]), receiptHash: String(l.args[1]), amount: BigInt(l.args[3] as bigint), block: l.blockNumber, tx: l.transactionHash }))
}

/** Current voters of `node` with their votes (from NodeVote events, checked against nodeVotesBy). */
export async function votersOf (chain: ChainClient, node: string): Promise<Array<{ id: string, votes: bigint }>> {
  const seen = new Set<string>()
  for (const l of await logs(chain, 'voting', 'NodeVote', [null, node])) seen.add(String(l.args[0]))
  const out: Array<{ id: string, votes: bigint }> = []
  for (const v of [...seen].sort()) {
    const votes = await chain.read<bigint>(chain.contracts.voting, 'nodeVotesBy', [v, node])
    if (votes > 0n) out.push({ id: v, votes })
  }
  return out
}

/** A miner's on-chain side of the table: payout address, stake (owner's stHEU in HEU), votes, voters. */
export async function minerFacts (chain: ChainClient, operator: string): Promise<Omit<MinerEpoch, 'points' | 'slashed'> & { registered: boolean }> {
  const { nodes, stheu, voting } = chain.contracts
  const [owner] = await chain.read<[string, bigint, bigint]>(nodes, 'nodes', [operator])
  const registered = !/^0x0{40}$/i.test(owner)
  const payout = registered ? owner : operator
  const shares = await chain.read<bigint>(stheu, 'balanceOf', [payout])
  const stake = shares === 0n ? 0n : await chain.read<bigint>(stheu, 'convertToAssets', [shares])
  const votes = await chain.read<bigint>(voting, 'nodeVotes', [operator])
  const voters = votes === 0n ? [] : await votersOf(chain, operator)
  return { operator, payout, stake, votes, voters, registered }
}

/**
 * The table's whole input for `epoch` from ledger points and chain state. Only registered
 * miners (collateral that can be slashed) take part; slashed ones are marked.
 */
export async function tableInput (chain: ChainClient, epoch: bigint, points: Map<string, Record<Pool, bigint>>, tipBps: number, maxMiners = MAX_TABLE_MINERS): Promise<RewardTableInput> {
  // keys that never registered earn nothing: dropped before any bound or per-miner read
  const registered = await everRegistered(chain)
  const candidates = [...points].filter(([op]) => registered.has(op.toLowerCase()))
  if (candidates.length > maxMiners) throw new HeuristError('REWARDS_TOO_MANY_MINERS', `epoch ${epoch} has ${candidates.length} registered miners with points; at most ${maxMiners} fit one table`)
  const facts = await epochFacts(chain, epoch)
  const slashed = await slashedSince(chain, epoch, facts)
  const sorted = candidates.sort(([a], [b]) => (a.toLowerCase() < b.toLowerCase() ? -1 : 1))
  const perMiner = await mapBounded(sorted, CLOSE_READS_IN_FLIGHT, async ([operator]) => await minerFacts(chain, operator))
  const miners: MinerEpoch[] = []
  for (const [i, [operator, pts]] of sorted.entries()) {
    const f = perMiner[i]!
    if (!f.registered) continue
    miners.push({ operator, payout: f.payout, stake: f.stake, votes: f.votes, voters: f.voters, points: pts, slashed: slashed.has(operator.toLowerCase()) })
  }
  return { epoch, schedule: facts.schedule, epochSeconds: facts.epochSeconds, revenue: facts.revenue, season2: facts.season2, tipBps, miners }
}
