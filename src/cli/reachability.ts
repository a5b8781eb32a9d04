import { Wallet } from 'ethers'
import type { HeuristConfig } from '../core/config.js'
import { identityFromPrivateKey } from '../core/identity.js'
import { probeReachability, type ReachabilityInit } from '../p2p/index.js'
import type { CommandContext } from './context.js'

/**
 * Maps the `p2p.relay*` config keys to the node's reachability options. `serving`: this node
 * serves jobs (a miner), so when it is not public it reserves relay slots to be reachable.
 */
export function reachabilityFromConfig (config: HeuristConfig, serving: boolean): ReachabilityInit {
  const p = config.p2p
  return {
    relay: p.relay,
    reservations: serving ? p.relayReservations : 0,
    limits: {
      maxReservations: p.relayMaxReservations,
      dataLimitBytes: BigInt(p.relayDataLimit),
      durationLimitMs: p.relayDurationMs,
      maxCircuitsPerPeer: p.relayMaxCircuitsPerPeer
    }
  }
}

export interface ReachabilityCheckResult {
  name: string
  status: 'ok' | 'warn' | 'fail'
  detail: string
  data?: Record<string, unknown>
}

/**
 * `heurist doctor`'s reachability check: a short-lived node with this machine's p2p settings
 * joins the bootstrap peers and reports public / private via relay / unreachable, and the
 * addresses others see.
 */
export async function reachabilityCheck (ctx: CommandContext): Promise<ReachabilityCheckResult> {
  const name = 'reachability'
  if (ctx.config.p2p.bootstrap.length === 0) {
    return { name, status: 'warn', detail: 'not checked: no bootstrap peers configured (p2p.bootstrap), so no peer can tell how it sees this node', data: { status: 'unknown' } }
  }
  const r = await probeReachability({
    identity: identityFromPrivateKey(Wallet.createRandom().privateKey),
    logger: ctx.logger.child({ probe: 'reachability' }, { level: 'warn' }),
    listen: ctx.config.p2p.listen,
    bootstrap: ctx.config.p2p.bootstrap,
    devnet: ctx.config.p2p.devnet,
    reachability: reachabilityFromConfig(ctx.config, true)
  })
  const seen = r.observedAddrs.length > 0 ? `; peers see this node as ${r.observedAddrs.join(', ')}` : ''
  const data = { ...r }
  if (r.bootstrapReached === 0) return { name, status: 'fail', detail: `no bootstrap peer answered (${ctx.config.p2p.bootstrap.length} configured): cannot join the mesh`, data }
  if (r.status === 'public') {
    const how = r.evidence === 'autonat' ? `peers dialled ${r.publicAddrs.join(', ')} back` : 'relay server on (public listen address or p2p.relay = on)'
    return { name, status: 'ok', detail: `public: ${how}${seen}`, data }
  }
  if (r.status === 'private-via-relay') {
    return { name, status: 'ok', detail: `private (behind NAT), reachable via relay ${r.relays.join(', ')}${seen}`, data }
  }
  if (r.status === 'private-direct') {
    return { name, status: 'ok', detail: `private network: peers on it dial ${r.lanAddrs.join(', ')} directly (no NAT between this node and its bootstrap peer); hosts outside that network cannot${seen}`, data }
  }
  return { name, status: 'warn', detail: `unreachable: no public address and no relay reservation within ${Math.round(r.waitedMs / 1000)} s${seen}`, data }
}
