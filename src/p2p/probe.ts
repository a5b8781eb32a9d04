import type { Identity } from '../core/identity.js'
import type { Logger } from '../core/logger.js'
import { createHeuristNode } from './node.js'
import type { ReachabilityInit, ReachabilityReport } from './reachability.js'

export interface ReachabilityProbeOptions {
  /** A throwaway key is fine: peers judge the network path, not the identity. */
  identity: Identity
  logger: Logger
  /** The node's listen addresses; ports are replaced by 0 so a running node on the same host keeps its own. */
  listen: string[]
  bootstrap: string[]
  devnet: boolean
  reachability: ReachabilityInit
  /** How long to wait for a relay reservation or a verified address. Default 15 s. */
  timeoutMs?: number
}

export interface ReachabilityProbeResult extends ReachabilityReport {
  /** Bootstrap peers we connected to (0: the mesh could not be reached, so reachability is unknown). */
  bootstrapReached: number
  waitedMs: number
}

/**
 * Starts a short-lived node with this machine's listen and bootstrap settings and watches
 * what the mesh makes of it: a relay server or AutoNAT-verified address (public), a relay
 * reservation (private, reachable via relay), or neither (unreachable). Bounded by `timeoutMs`.
 */
export async function probeReachability (o: ReachabilityProbeOptions): Promise<ReachabilityProbeResult> {
  const t0 = Date.now()
  const timeoutMs = o.timeoutMs ?? 15_000
  const listen = o.listen.map(a => a.replace(/\/tcp\/\d+/, '/tcp/0'))
  const node = await createHeuristNode({
    identity: o.identity,
    logger: o.logger,
    listen,
    bootstrap: o.bootstrap,
    devnet: o.devnet,
    reachability: { ...o.reachability, reservations: Math.max(1, o.reachability.reservations ?? 1) }
  })
  try {
    const signal = AbortSignal.timeout(timeoutMs)
    const bootIds = o.bootstrap.map(a => /\/p2p\/([^/]+)$/.exec(a)?.[1]).filter((x): x is string => x !== undefined)
    const reached = (): number => node.connectedPeers().filter(p => bootIds.includes(p)).length
    // settled: others can reach us (or we know they cannot after the wait) and a peer told us how it sees us
    await node.reachability.waitFor(r => r.status !== 'unreachable' && (r.observedAddrs.length > 0 || bootIds.length === 0), signal).catch(() => {})
    return { ...node.reachability.report(), bootstrapReached: reached(), waitedMs: Date.now() - t0 }
  } finally {
    await node.stop()
  }
}
