import { z } from 'zod'
import { HeuristError } from '../core/errors.js'
import type { Logger } from '../core/logger.js'
import type { ModelKind } from '../inference/types.js'
import { chainError, type ChainClient, type TxResult } from '../chain/index.js'

/**
 * Pods as the chain has them: `PodRegistry` (id = sha256 of the weights, kind, min VRAM,
 * deployer, share, name, URL, retired) and `Voting.podVotes`. Miners, gateways and
 * `pod list` read the same list through a `PodDirectory`, refreshed every few seconds.
 */
export interface Pod {
  /** sha256 of the weights, 64 lowercase hex digits (no 0x). */
  id: string
  name: string
  uri: string
  kind: ModelKind
  minVramMb: number
  deployer: string
  revenueBps: number
  retired: boolean
  /** stHEU wei voted for the pod. */
  votes: bigint
}

/** Most pods read in one refresh (bounds the work a flood of registrations can cause). */
export const MAX_PODS = 1024
export const MAX_SHARE_BPS = 10_000

const KIND: Record<number, ModelKind> = { 0: 'llm', 1: 'image' }

// what comes back from the chain is outside input too: check it before use
const podTuple = z.tuple([z.string(), z.coerce.number().int().min(0).max(1), z.coerce.number().int().min(0), z.coerce.number().int().min(0).max(MAX_SHARE_BPS)])
const metaTuple = z.tuple([z.string().max(64), z.string().max(1024), z.boolean()])

export function podIdHex (id: string): string {
  const hex = id.startsWith('0x') ? id.slice(2) : id
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) throw new HeuristError('PODS_BAD_ID', `a pod id is a sha256: 64 hex digits, got ${JSON.stringify(id)}`, { usage: true })
  return hex.toLowerCase()
}

export async function readPods (chain: ChainClient, limit = MAX_PODS): Promise<Pod[]> {
  const { pods, voting } = chain.contracts
  const count = Number(await chain.read<bigint>(pods, 'podCount'))
  const n = Math.min(count, limit)
  const out: Pod[] = []
  for (let i = 0; i < n; i++) {
    const raw = await chain.read<string>(pods, 'podIds', [i])
    const [p, m, votes] = await Promise.all([
      chain.read<unknown[]>(pods, 'pods', [raw]),
      chain.read<unknown[]>(pods, 'meta', [raw]),
      chain.read<bigint>(voting, 'podVotes', [raw])
    ])
    const pt = podTuple.safeParse([...p])
    const mt = metaTuple.safeParse([...m])
    if (!pt.success || !mt.success) continue
    out.push({
      id: podIdHex(raw),
      name: mt.data[0] === '' ? podIdHex(raw).slice(0, 12) : mt.data[0],
      uri: mt.data[1],
      kind: KIND[pt.data[1]]!,
      minVramMb: pt.data[2],
      deployer: pt.data[0],
      revenueBps: pt.data[3],
      retired: mt.data[2],
      votes
    })
  }
  return out
}

export interface DeployPodInput {
  /** sha256 of the weights (the pod id). */
  sha256: string
  kind: ModelKind
  minVramMb: number
  revenueBps: number
  name: string
  uri: string
}

/** Registers a pod in PodRegistry from the signing wallet (the deployer). */
export async function deployPod (chain: ChainClient, p: DeployPodInput): Promise<TxResult[]> {
  return [await chain.send('deploy pod', chain.contracts.pods, 'deployPod', ['0x' + podIdHex(p.sha256), p.kind === 'llm' ? 0 : 1, p.minVramMb, p.revenueBps, p.name, p.uri])]
}

export async function retirePod (chain: ChainClient, id: string): Promise<TxResult[]> {
  return [await chain.send('retire pod', chain.contracts.pods, 'retirePod', ['0x' + podIdHex(id)])]
}

/** Revenue a pod brought in this epoch (wei, all Payments redemptions for it since the epoch began). */
export async function podRevenueThisEpoch (chain: ChainClient, id: string): Promise<bigint> {
  const payments = chain.contracts.payments
  const [epoch, genesis, epochSeconds] = await Promise.all([
    chain.read<bigint>(payments, 'currentEpoch'),
    chain.read<bigint>(payments, 'genesis'),
    chain.read<bigint>(payments, 'epochSeconds')
  ])
  const start = genesis + epoch * epochSeconds
  let logs: Awaited<ReturnType<typeof payments.queryFilter>>
  try {
    logs = await payments.queryFilter(payments.filters.Redeemed!(null, null, '0x' + podIdHex(id)), chain.deployment.deployBlock, 'latest')
  } catch (e) {
    throw chainError(e, chain.artifacts, 'reading Redeemed events')
  }
  // logs come oldest first and block times only grow: walk back from the newest and stop at
  // the first block before the epoch began, so only this epoch's blocks are fetched
  let total = 0n
  let block = -1
  let t = 0n
  for (let i = logs.length - 1; i >= Math.max(0, logs.length - 10_000); i--) {
    const l = logs[i]!
    if (l.blockNumber !== block) {
      block = l.blockNumber
      t = BigInt((await chain.provider.getBlock(block))?.timestamp ?? 0)
    }
    if (t < start) break
    const args = (l as unknown as { args?: { amount?: bigint } }).args
    if (typeof args?.amount === 'bigint') total += args.amount
  }
  return total
}

export interface PodDirectoryOptions {
  /** How often the list is re-read from the chain. Default 5 s. */
  refreshMs: number
}

export const defaultPodDirectoryOptions: PodDirectoryOptions = { refreshMs: 5000 }

/** A cached list of pods, refreshed from the chain; `resolve` finds one by name or id. */
export class PodDirectory {
  private readonly o: PodDirectoryOptions
  private pods: Pod[] = []
  private timer: NodeJS.Timeout | null = null
  private refreshing: Promise<void> | null = null

  constructor (private readonly chain: ChainClient, private readonly logger: Logger, init: Partial<PodDirectoryOptions> = {}) {
    this.o = { ...defaultPodDirectoryOptions, ...init }
  }

  async start (): Promise<void> {
    await this.refresh()
    this.timer = setInterval(() => { this.refresh().catch(err => { this.logger.warn({ err: (err as Error).message }, 'cannot read pods from the chain') }) }, this.o.refreshMs)
    this.timer.unref()
  }

  stop (): void {
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
  }

  async refresh (): Promise<void> {
    this.refreshing ??= (async () => {
      try { this.pods = await readPods(this.chain) } finally { this.refreshing = null }
    })()
    await this.refreshing
  }

  list (): Pod[] { return this.pods }

  /** By exact name, id (with or without 0x) or an id prefix of 8+ hex digits. */
  resolve (ref: string): Pod | undefined {
    const byName = this.pods.find(p => p.name === ref)
    if (byName !== undefined) return byName
    const hex = (ref.startsWith('0x') ? ref.slice(2) : ref).toLowerCase()
    if (!/^[0-9a-f]{8,64}$/.test(hex)) return undefined
    const hits = this.pods.filter(p => p.id.startsWith(hex))
    return hits.length === 1 ? hits[0] : undefined
  }
}
