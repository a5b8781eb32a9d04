/**
 * Dashboard sources for each role, built from the parts the role already runs: the mesh
 * node's peer table, the job server's or gateway's counters, the reward claimer's earnings,
 * and slashes read from the chain (cached: one log query every few seconds at most).
 */
import type { HeuristNode, JobServer } from '../p2p/index.js'
import { addressFromPeerId } from '../core/identity.js'
import type { ChainClient } from '../chain/index.js'
import type { GatewayService } from '../gateway/index.js'
import { slashes as readSlashes, type RewardClaimer } from '../rewards/index.js'
import type { DashboardPeer, DashboardSlash, DashboardSnapshot, DashboardSource } from './types.js'

/** Connected mesh peers, with what their capacity advert says when they are miners. */
function peersOf (node: HeuristNode): DashboardPeer[] {
  const adverts = new Map(node.peerTable.miners().map(m => [m.peerId, m]))
  return node.connectedPeers().map(peerId => {
    const m = adverts.get(peerId)
    return {
      peerId,
      address: m?.address ?? addressFromPeerId(peerId) ?? '',
      models: m === undefined ? [] : m.advert.models.map(x => x.name),
      tokensPerSecond: m?.advert.tokensPerSecond ?? 0,
      imagesPerSecond: m?.advert.imagesPerSecond ?? 0,
      queueDepth: m?.advert.queueDepth ?? 0,
      lastSeen: m?.lastSeen ?? Date.now()
    }
  })
}

/** Slashes on chain, re-read at most every `everyMs`. */
export function slashFeed (chain: ChainClient | null, everyMs = 3000): () => Promise<DashboardSlash[]> {
  let at = 0
  let cached: DashboardSlash[] = []
  return async () => {
    if (chain === null) return []
    if (Date.now() - at >= everyMs) {
      at = Date.now()
      cached = (await readSlashes(chain).catch(() => [])).map(s => ({ miner: s.miner, amount: s.amount.toString(), block: s.block, tx: s.tx }))
    }
    return cached
  }
}

function earningsOf (claimers: RewardClaimer[]): DashboardSnapshot['earnings'] {
  return claimers.flatMap(c => c.earnings().map(e => ({ epoch: e.epoch.toString(), account: e.account, amount: e.amount.toString(), claimed: e.claimed })))
}

function pointsOf (claimers: RewardClaimer[]): { epoch: string | null, points: DashboardSnapshot['points'] } {
  let epoch: string | null = null
  let llama = 0n
  let waifu = 0n
  let any = false
  for (const c of claimers) {
    const s = c.points()
    if (s === null) continue
    epoch = s.epoch
    const mine = s.miners.find(m => m.operator.toLowerCase() === c.operator.toLowerCase())
    any = true
    if (mine !== undefined) { llama += BigInt(mine.llama); waifu += BigInt(mine.waifu) }
  }
  return { epoch, points: any ? { llama: llama.toString(), waifu: waifu.toString() } : null }
}

/** The gateway endpoints that run a job on a miner. */
const JOB_ENDPOINTS: ReadonlySet<string> = new Set(['/v1/chat/completions', '/v1/completions', '/v1/images/generations'])

export interface MinerPart { node: HeuristNode, jobs: JobServer, claimer: RewardClaimer | null }

/** One miner (`heurist mine`) or several in one process (`heurist up`), with an optional gateway. */
export function nodeSource (o: { role: string, miners: MinerPart[], gateway?: GatewayService, chain: ChainClient | null }): DashboardSource {
  const slashes = slashFeed(o.chain)
  const claimers = o.miners.flatMap(m => (m.claimer === null ? [] : [m.claimer]))
  let lastTokens = 0
  let lastAt = Date.now()
  let gwRate = 0
  return {
    async snapshot () {
      const view = o.gateway?.node ?? o.miners[0]?.node
      const jobs = { served: 0, failed: 0, running: 0 }
      let tokensPerSecond = 0
      for (const m of o.miners) {
        const s = m.jobs.stats
        jobs.served += s.served
        jobs.failed += s.failed
        jobs.running += s.running
        // the job server's figure is a moving average over its last jobs: count it while busy
        if (s.running > 0) tokensPerSecond += s.tokensPerSecond
      }
      if (o.gateway !== undefined) {
        // the gateway's own view: tokens served per second between two snapshots
        const metrics = o.gateway.gateway.metrics
        const completion = (await metrics.tokens.get()).values.filter(v => v.labels.direction === 'completion').reduce((s, v) => s + v.value, 0)
        const now = Date.now()
        if (now - lastAt >= 500) { gwRate = Math.max(0, (completion - lastTokens) * 1000 / (now - lastAt)); lastTokens = completion; lastAt = now }
        tokensPerSecond = gwRate
        // jobs as the gateway's clients saw them (a miner's retried failure is no failed job; a
        // request the gateway failed is one even when no miner counted it): answers of the job
        // endpoints, 200 = served, 5xx or a stream that ended in an error event = failed
        const requests = (await metrics.requests.get()).values.filter(v => JOB_ENDPOINTS.has(String(v.labels.endpoint)))
        const streamErrors = requests.filter(v => v.labels.status === 'stream_error').reduce((s, v) => s + v.value, 0)
        jobs.served = requests.filter(v => String(v.labels.status) === '200').reduce((s, v) => s + v.value, 0) - streamErrors
        jobs.failed = requests.filter(v => Number(v.labels.status) >= 500).reduce((s, v) => s + v.value, 0) + streamErrors
        if (o.miners.length === 0) jobs.running = Object.values(o.gateway.gateway.pending()).reduce((s, n) => s + n, 0)
      }
      const { epoch, points } = pointsOf(claimers)
      return {
        role: o.role,
        address: view?.address ?? '',
        peers: view === undefined ? [] : peersOf(view),
        jobs,
        tokensPerSecond,
        epoch,
        points,
        earnings: earningsOf(claimers),
        slashes: await slashes()
      }
    }
  }
}
