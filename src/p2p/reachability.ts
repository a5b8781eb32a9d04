import { circuitRelayServer, circuitRelayTransport, RELAY_V2_HOP_CODEC, type CircuitRelayService } from '@libp2p/circuit-relay-v2'
import { autoNAT } from '@libp2p/autonat'
import { dcutr } from '@libp2p/dcutr'
import { multiaddr } from '@multiformats/multiaddr'
import { isIPv4, isIPv6 } from 'node:net'
import { networkInterfaces } from 'node:os'
import type { Connection, ConnectionGater, IdentifyResult, Libp2p, PeerId, Stream } from '@libp2p/interface'
import { HeuristError } from '../core/errors.js'
import type { Logger } from '../core/logger.js'
import { BoundedMap } from './bounded-map.js'

/**
 * Reachability (whitepaper §2.1.2: many compute nodes sit in homes without a public IP or an
 * open port). Every node dials over circuit relay v2; nodes with a public address also serve
 * as relays, with bounded reservations and per-peer, data and duration limits; AutoNAT tells
 * a node whether others can dial its addresses; a private miner reserves slots on a few relays
 * and advertises the relayed addresses; DCUtR upgrades relayed connections to direct ones
 * where the NATs allow it. Job streams run on relayed (limited) connections and prefer a
 * direct connection as soon as there is one (`openStreamPreferDirect`).
 */

export interface RelayLimits {
  /** Reservations this relay holds at once. Default 128 (each costs a connection and a little state). */
  maxReservations: number
  /** Reservations from one IP address: many identities behind one host cannot take every slot. Default 8. */
  maxReservationsPerIp: number
  /** A reservation lives this long unless refreshed. Default 1 h (libp2p's 2 h holds slots of vanished miners longer). */
  reservationTtlMs: number
  /**
   * Bytes (both directions together) one relayed connection may carry before the relay closes
   * it. Default 8 MiB: an LLM reply is kilobytes, a 512² PNG about 1 MiB as base64; anything
   * bigger should have moved to a direct connection by then (libp2p's 128 KiB default is
   * smaller than one image result).
   */
  dataLimitBytes: bigint
  /** How long one relayed connection may stay open. Default 5 min (a long job, then DCUtR or a new circuit). */
  durationLimitMs: number
  /** Relayed connections one peer may have open through this relay at once. Default 8. */
  maxCircuitsPerPeer: number
  /** Reservation requests one peer may make per minute (honest peers refresh every few minutes). Default 10. */
  maxReserveRequestsPerMinute: number
  /** Refusals (strikes) after which a peer is banned from the relay and graylisted on gossip. Default 5. */
  strikesToBan: number
  /** How long a ban lasts. Default 10 min. */
  banMs: number
}

export interface ReachabilityOptions {
  /**
   * Serve as a relay for NATed peers: `on`, `off`, or `auto` = when one of our listen addresses
   * is a public IP (bootstrap nodes, gateways and validators on servers). Default `auto`.
   */
  relay: 'auto' | 'on' | 'off'
  /**
   * Relay slots to reserve when this node is not a relay itself (a miner behind NAT). One
   * relay is a single point of failure, so a miner asks for 2. Default 0: a node that only
   * dials out (a client) needs none; `heurist mine` sets it.
   */
  reservations: number
  /** Ask peers to dial our addresses back (AutoNAT v1). Default true. */
  autonat: boolean
  /** Upgrade relayed connections to direct ones (DCUtR). Default true. */
  dcutr: boolean
  /** Relay-server limits (used when this node relays). */
  limits: RelayLimits
  /** Relayed connections other peers may open to us at once (inbound STOP streams per relay connection). Default 64. */
  maxInboundRelayed: number
}

export const defaultRelayLimits: RelayLimits = {
  maxReservations: 128,
  maxReservationsPerIp: 8,
  reservationTtlMs: 60 * 60_000,
  dataLimitBytes: 8n * 1024n * 1024n,
  durationLimitMs: 5 * 60_000,
  maxCircuitsPerPeer: 8,
  maxReserveRequestsPerMinute: 10,
  strikesToBan: 5,
  banMs: 10 * 60_000
}

export const defaultReachabilityOptions: ReachabilityOptions = {
  relay: 'auto',
  reservations: 0,
  autonat: true,
  dcutr: true,
  limits: defaultRelayLimits,
  maxInboundRelayed: 64
}

export type ReachabilityInit = Partial<Omit<ReachabilityOptions, 'limits'>> & { limits?: Partial<RelayLimits> }

export function reachabilityOptions (init: ReachabilityInit = {}): ReachabilityOptions {
  return { ...defaultReachabilityOptions, ...init, limits: { ...defaultRelayLimits, ...init.limits } }
}

// ---- addresses ----

const PRIVATE_V4: Array<[number, number]> = [
  [0x00000000, 8], [0x0a000000, 8], [0x64400000, 10], [0x7f000000, 8], [0xa9fe0000, 16], [0xac100000, 12], [0xc0a80000, 16]
]

/** True for loopback, private (RFC 1918), CGNAT, link-local and unspecified addresses. */
export function isPrivateIp (ip: string): boolean {
  if (isIPv4(ip)) {
    const n = ip.split('.').reduce((a, o) => a * 256 + Number(o), 0)
    return PRIVATE_V4.some(([net, bits]) => Math.floor(n / 2 ** (32 - bits)) === Math.floor(net / 2 ** (32 - bits)))
  }
  if (isIPv6(ip)) {
    const l = ip.toLowerCase()
    if (l === '::' || l === '::1') return true
    if (l.startsWith('::ffff:')) return isPrivateIp(l.slice(7))
    return /^f[cd]/.test(l) || /^fe[89ab]/.test(l)
  }
  return true
}

/** The IP of a `/ip4|ip6/...` multiaddr, or null. */
export function ipOf (ma: string): string | null {
  const m = /^\/ip[46]\/([^/]+)/.exec(ma)
  return m === null ? null : m[1]!
}

export function isCircuit (ma: string): boolean { return ma.includes('/p2p-circuit') }

/** True for 127.0.0.0/8 and ::1 (and their IPv4-mapped form). */
export function isLoopbackIp (ip: string): boolean {
  const l = ip.toLowerCase()
  return /^127\./.test(l) || l === '::1' || /^::ffff:127\./.test(l)
}

/**
 * The addresses a node advertises (identify, adverts): loopback ones are dropped when it has
 * any other direct address, since no other host can dial 127.0.0.1 to reach us (a node
 * listening on loopback only, a devnet or a test, keeps them).
 */
export function withoutLoopback<T extends { toString: () => string }> (addrs: T[]): T[] {
  const loop = (a: T): boolean => { const s = a.toString(); const ip = ipOf(s); return !isCircuit(s) && ip !== null && isLoopbackIp(ip) }
  if (!addrs.some(a => !isCircuit(a.toString()) && !loop(a))) return addrs
  return addrs.filter(a => !loop(a))
}

/**
 * True when we would listen on a public IP (so this node can serve as a relay): a public
 * address named in `listen`, or a wildcard (0.0.0.0 / ::) on a host with a public interface
 * address (a server's usual set-up).
 */
export function hasPublicListenAddr (listen: string[], interfaces: string[] = interfaceAddrs()): boolean {
  return listen.some(a => {
    const ip = ipOf(a)
    if (ip === null || isCircuit(a)) return false
    if (ip === '0.0.0.0') return interfaces.some(x => isIPv4(x) && !isPrivateIp(x))
    if (ip === '::') return interfaces.some(x => isIPv6(x) && !isPrivateIp(x))
    return !isPrivateIp(ip)
  })
}

function interfaceAddrs (): string[] {
  return Object.values(networkInterfaces()).flatMap(list => (list ?? []).map(i => i.address))
}

/**
 * Orders addresses for an advert: public direct ones, then relayed ones, then private ones
 * (dialers try them in turn; a private address only helps a peer on the same LAN).
 */
export function advertOrder (addrs: string[]): string[] {
  const rank = (a: string): number => isCircuit(a) ? 1 : (ipOf(a) !== null && !isPrivateIp(ipOf(a)!) ? 0 : 2)
  return [...addrs].sort((a, b) => rank(a) - rank(b))
}

export interface RelayAddrProblem { code: string, message: string }

/**
 * Checks the relayed addresses a peer claims in its advert: each must be
 * `<relay addr>/p2p/<relay>/p2p-circuit[/p2p/<advertiser>]`, through a relay other than the
 * advertiser, ending at the advertiser itself; and when we are the relay named, the
 * advertiser must hold a reservation with us. Returns the first problem, or null.
 */
export function checkRelayAddrs (addrs: string[], advertiser: string, self: { peerId: string, hasReservation: ((peer: string) => boolean) | null }): RelayAddrProblem | null {
  for (const a of addrs) {
    if (!isCircuit(a)) continue
    let parts: Array<{ name: string, value?: string }>
    try { parts = multiaddr(a).getComponents() } catch { return { code: 'P2P_BAD_RELAY_ADDR', message: 'a relayed address does not parse' } }
    const at = parts.findIndex(c => c.name === 'p2p-circuit')
    if (parts.filter(c => c.name === 'p2p-circuit').length !== 1) return { code: 'P2P_BAD_RELAY_ADDR', message: 'a relayed address must go through exactly one relay' }
    const relay = parts.slice(0, at).findLast(c => c.name === 'p2p')?.value
    if (relay === undefined) return { code: 'P2P_BAD_RELAY_ADDR', message: 'a relayed address must name its relay (/p2p/<relay>/p2p-circuit)' }
    if (relay === advertiser) return { code: 'P2P_BAD_RELAY_ADDR', message: 'a peer cannot be its own relay' }
    const after = parts.slice(at + 1)
    const dest = after.find(c => c.name === 'p2p')?.value
    if (after.length > 1 || (after.length === 1 && dest === undefined)) return { code: 'P2P_BAD_RELAY_ADDR', message: 'a relayed address may only end in /p2p/<advertiser>' }
    if (dest !== undefined && dest !== advertiser) return { code: 'P2P_RELAY_ADDR_NOT_OWN', message: `relayed address ends at ${dest}, not at the advertiser` }
    if (relay === self.peerId && self.hasReservation !== null && !self.hasReservation(advertiser)) {
      return { code: 'P2P_RELAY_ADDR_NO_RESERVATION', message: 'claims a relayed address through us without a reservation' }
    }
  }
  return null
}

// ---- the relay's guard: per-peer limits and penalties ----

interface GuardedNode {
  getConnections: (peer?: PeerId) => Connection[]
  services: { relay?: unknown }
  addEventListener: (type: 'peer:disconnect', fn: (evt: CustomEvent<PeerId>) => void) => void
  removeEventListener: (type: 'peer:disconnect', fn: (evt: CustomEvent<PeerId>) => void) => void
}

export interface RelayGuardStats {
  reservationsRefused: number
  circuitsRefused: number
  bans: number
}

/**
 * Enforces the per-peer relay limits libp2p's relay server does not have (reservation rate,
 * reservations per IP, open circuits per peer) through the connection gater, and keeps
 * strikes: each refusal that only an abusive peer provokes is a strike; `strikesToBan` of them
 * ban the peer from the relay for `banMs` and push its gossip score below the graylist.
 */
export class RelayGuard {
  readonly stats: RelayGuardStats = { reservationsRefused: 0, circuitsRefused: 0, bans: 0 }
  private node: GuardedNode | null = null
  private readonly strikes = new BoundedMap<number>(10_000)
  private readonly bannedUntil = new Map<string, number>()
  private readonly reserveTimes = new BoundedMap<number[]>(10_000)

  constructor (private readonly limits: RelayLimits, private readonly logger: Logger, private readonly now: () => number = Date.now) {}

  attach (node: GuardedNode): void {
    this.node = node
    node.addEventListener('peer:disconnect', this.onDisconnect)
  }

  detach (): void {
    this.node?.removeEventListener('peer:disconnect', this.onDisconnect)
    this.node = null
  }

  // a reservation is only usable while its peer is connected (the relay dials nobody), but
  // libp2p keeps it until its TTL: free the slot as soon as the peer is gone
  private readonly onDisconnect = (evt: CustomEvent<PeerId>): void => {
    this.relay?.reservations.delete(evt.detail)
  }

  private get relay (): CircuitRelayService | null {
    return (this.node?.services.relay as CircuitRelayService | undefined) ?? null
  }

  /** True when `peer` holds a reservation on this relay. */
  hasReservation (peer: string): boolean {
    const r = this.relay
    if (r === null) return false
    for (const id of r.reservations.keys()) if (id.toString() === peer) return true
    return false
  }

  get reservationCount (): number { return this.relay?.reservations.size ?? 0 }

  banned (peer: string): boolean {
    const until = this.bannedUntil.get(peer)
    if (until === undefined) return false
    if (until > this.now()) return true
    this.bannedUntil.delete(peer)
    this.strikes.delete(peer)
    return false
  }

  /** Gossip penalty (app-specific score, before its weight): 1 per strike, 10 while banned. */
  penalty (peer: string): number {
    return this.banned(peer) ? 10 : (this.strikes.get(peer) ?? 0)
  }

  strike (peer: string, reason: string): void {
    const n = (this.strikes.get(peer) ?? 0) + 1
    this.strikes.set(peer, n)
    this.logger.debug({ peer, reason, strikes: n }, 'relay strike')
    if (n >= this.limits.strikesToBan && !this.banned(peer)) {
      this.bannedUntil.set(peer, this.now() + this.limits.banMs)
      this.stats.bans++
      this.logger.warn({ peer, reason, banMs: this.limits.banMs }, 'peer banned from the relay')
    }
  }

  /** The gater hooks libp2p's relay server consults. */
  gater (): Partial<ConnectionGater> {
    return {
      denyInboundRelayReservation: async (peer: PeerId) => this.denyReservation(peer.toString()),
      denyOutboundRelayedConnection: async (source: PeerId, destination: PeerId) => this.denyCircuit(source, destination)
    }
  }

  denyReservation (peer: string): boolean {
    if (this.banned(peer)) { this.stats.reservationsRefused++; return true }
    const t = this.now()
    const recent = (this.reserveTimes.get(peer) ?? []).filter(x => x > t - 60_000)
    recent.push(t)
    this.reserveTimes.set(peer, recent)
    if (recent.length > this.limits.maxReserveRequestsPerMinute) {
      this.stats.reservationsRefused++
      this.strike(peer, 'reservation requests over the rate limit')
      return true
    }
    // many identities on one host: refuse past the per-IP share, without a strike (a shared NAT is honest)
    const ip = this.ipOfPeer(peer)
    const relay = this.relay
    if (ip !== null && relay !== null && !this.hasReservation(peer)) {
      let same = 0
      for (const r of relay.reservations.values()) if (ipOf(r.addr.toString()) === ip) same++
      if (same >= this.limits.maxReservationsPerIp) { this.stats.reservationsRefused++; return true }
    }
    return false
  }

  denyCircuit (source: PeerId, destination: PeerId): boolean {
    const src = source.toString()
    if (this.banned(src) || this.banned(destination.toString())) { this.stats.circuitsRefused++; return true }
    // each open relayed connection is one HOP stream from its source; the one asking now is counted too
    let open = 0
    for (const c of this.node?.getConnections(source) ?? []) open += c.streams.filter(s => s.protocol === RELAY_V2_HOP_CODEC).length
    if (open > this.limits.maxCircuitsPerPeer) {
      this.stats.circuitsRefused++
      this.strike(src, 'relayed connections over the per-peer limit')
      return true
    }
    return false
  }

  private ipOfPeer (peer: string): string | null {
    for (const c of this.node?.getConnections() ?? []) {
      if (c.remotePeer.toString() === peer && !isCircuit(c.remoteAddr.toString())) return ipOf(c.remoteAddr.toString())
    }
    return null
  }
}

// ---- libp2p parts ----

export interface ReachabilityParts {
  relayServer: boolean
  /** Extra listen addresses: one `/p2p-circuit` per relay slot to reserve. */
  listen: string[]
  transports: Array<ReturnType<typeof circuitRelayTransport>>
  services: Record<string, (components: never) => unknown>
  guard: RelayGuard
}

/** The transports, services, listen addresses and gater a node needs for relays, AutoNAT and DCUtR. */
export function reachabilityParts (listen: string[], o: ReachabilityOptions, logger: Logger): ReachabilityParts {
  if (!Number.isInteger(o.reservations) || o.reservations < 0 || o.reservations > 8) throw new HeuristError('P2P_BAD_OPTION', 'relay reservations must be an integer from 0 to 8', { usage: true })
  const relayServer = o.relay === 'on' || (o.relay === 'auto' && hasPublicListenAddr(listen))
  const l = o.limits
  const services: Record<string, (components: never) => unknown> = {}
  if (o.autonat) services.autonat = autoNAT() as never
  if (o.dcutr) services.dcutr = dcutr() as never
  if (relayServer) {
    services.relay = circuitRelayServer({
      reservations: {
        maxReservations: l.maxReservations,
        reservationTtl: l.reservationTtlMs,
        applyDefaultLimit: true,
        defaultDataLimit: l.dataLimitBytes,
        defaultDurationLimit: l.durationLimitMs
      },
      // per connection: the circuits a peer may keep open, plus room for its reservation refreshes
      maxInboundHopStreams: l.maxCircuitsPerPeer + 2
    }) as never
  }
  return {
    relayServer,
    listen: relayServer ? [] : Array.from({ length: o.reservations }, () => '/p2p-circuit'),
    transports: [circuitRelayTransport({ maxInboundStopStreams: o.maxInboundRelayed, reservationCompletionTimeout: 10_000 })],
    services,
    guard: new RelayGuard(l, logger)
  }
}

// ---- where others can reach us ----

export type ReachabilityStatus = 'public' | 'private-via-relay' | 'private-direct' | 'unreachable'

export interface ReachabilityReport {
  /**
   * public: others can dial us directly; private-via-relay: only through relay reservations;
   * private-direct: peers on our private network dial us directly (a LAN, a VPC); unreachable: none of these.
   */
  status: ReachabilityStatus
  /** No verified public address of our own. */
  private: boolean
  /** Reachable through at least one relay reservation. */
  viaRelay: boolean
  /** Why we say public: `relay` (we serve as a relay on a public listen address or by `--relay`) or `autonat` (peers dialled a public address back). */
  evidence: 'relay' | 'autonat' | 'relay-reservation' | 'lan' | 'none'
  relayServer: boolean
  /** Our public addresses that peers confirmed (AutoNAT). */
  publicAddrs: string[]
  /** Our private (non-loopback) addresses that peers on the same network reach directly: one saw us there with no NAT between, or dialled us there. */
  lanAddrs: string[]
  /** Our relayed addresses (one set per reservation). */
  relayAddrs: string[]
  /** The relays we hold reservations on. */
  relays: string[]
  /** How peers see us (identify's observed address): the NAT's public side for a home node. */
  observedAddrs: string[]
  /** Reservations held by others on us (when we relay). */
  reservationsServed: number
}

type AnyLibp2p = Libp2p<Record<string, unknown>>

/** Tracks our reachability from libp2p's own view (addresses, identify) and reports changes. */
export class Reachability {
  private node: AnyLibp2p | null = null
  private readonly observed: string[] = []
  private last: ReachabilityStatus | null = null
  private readonly listeners = new Set<(r: ReachabilityReport) => void>()
  private readonly onSelf = (): void => { this.check() }
  /** Private IPs of ours that peers dialled directly (inbound, not relayed). */
  private readonly dialledAt = new Set<string>()
  private readonly onConnection = (evt: CustomEvent<Connection>): void => {
    const c = evt.detail
    if (c.direction !== 'inbound' || isRelayed(c)) return
    const remote = ipOf(c.remoteAddr.toString())
    if (remote === null || isLoopbackIp(remote) || !isPrivateIp(remote)) return
    // the peer dialled one of our private listen addresses: we are reachable on its network
    for (const a of this.node?.getMultiaddrs() ?? []) {
      const ip = ipOf(a.toString())
      if (ip !== null && !isCircuit(a.toString()) && !isLoopbackIp(ip) && isPrivateIp(ip) && this.dialledAt.size < 64) this.dialledAt.add(ip)
    }
    this.check()
  }
  private readonly onIdentify = (evt: CustomEvent<IdentifyResult>): void => {
    const ma = evt.detail.observedAddr?.toString()
    if (ma === undefined || this.observed.includes(ma)) return
    this.observed.push(ma)
    if (this.observed.length > 8) this.observed.shift()
    this.check()
  }

  constructor (private readonly relayServer: boolean, private readonly guard: RelayGuard, private readonly logger: Logger) {}

  attach (node: AnyLibp2p): void {
    this.node = node
    node.addEventListener('self:peer:update', this.onSelf)
    node.addEventListener('peer:identify', this.onIdentify)
    node.addEventListener('connection:open', this.onConnection as never)
    this.check()
  }

  detach (): void {
    this.node?.removeEventListener('self:peer:update', this.onSelf)
    this.node?.removeEventListener('peer:identify', this.onIdentify)
    this.node?.removeEventListener('connection:open', this.onConnection as never)
    this.node = null
  }

  report (): ReachabilityReport {
    const addrs = this.node?.getMultiaddrs().map(m => m.toString()) ?? []
    const relayAddrs = addrs.filter(isCircuit)
    // libp2p lists a public listen address only once AutoNAT verified it
    const publicAddrs = addrs.filter(a => !isCircuit(a) && ipOf(a) !== null && !isPrivateIp(ipOf(a)!))
    const relays = [...new Set(relayAddrs.map(a => {
      const parts = multiaddr(a).getComponents()
      const at = parts.findIndex(c => c.name === 'p2p-circuit')
      return parts.slice(0, at).findLast(c => c.name === 'p2p')?.value ?? ''
    }).filter(r => r !== ''))]
    // a peer that saw us at one of our own private addresses has no NAT between us: peers on
    // that network dial the address directly, as do those that already dialled us there
    const observedIps = new Set(this.observed.map(ipOf).filter((x): x is string => x !== null))
    const lanAddrs = addrs.filter(a => {
      const ip = ipOf(a)
      return ip !== null && !isCircuit(a) && !isLoopbackIp(ip) && isPrivateIp(ip) && (observedIps.has(ip) || this.dialledAt.has(ip))
    })
    const pub = this.relayServer || publicAddrs.length > 0
    const status: ReachabilityStatus = pub ? 'public' : relayAddrs.length > 0 ? 'private-via-relay' : lanAddrs.length > 0 ? 'private-direct' : 'unreachable'
    return {
      status,
      private: !pub,
      viaRelay: relayAddrs.length > 0,
      evidence: publicAddrs.length > 0 ? 'autonat' : this.relayServer ? 'relay' : relayAddrs.length > 0 ? 'relay-reservation' : lanAddrs.length > 0 ? 'lan' : 'none',
      relayServer: this.relayServer,
      publicAddrs,
      lanAddrs,
      relayAddrs,
      relays,
      observedAddrs: [...this.observed],
      reservationsServed: this.guard.reservationCount
    }
  }

  /** Calls `fn` with each new status (not with the current one). */
  onChange (fn: (r: ReachabilityReport) => void): () => void {
    this.listeners.add(fn)
    return () => { this.listeners.delete(fn) }
  }

  /** Resolves once `pred` holds for the report, or rejects when `signal` aborts. */
  async waitFor (pred: (r: ReachabilityReport) => boolean, signal: AbortSignal): Promise<ReachabilityReport> {
    const now = this.report()
    if (pred(now)) return now
    return await new Promise((resolve, reject) => {
      const timer = setInterval(() => { const r = this.report(); if (pred(r)) done(r) }, 250)
      const onAbort = (): void => { cleanup(); reject(new HeuristError('P2P_TIMEOUT', 'reachability did not settle in time')) }
      const cleanup = (): void => { clearInterval(timer); off(); signal.removeEventListener('abort', onAbort) }
      const done = (r: ReachabilityReport): void => { cleanup(); resolve(r) }
      const off = this.onChange(r => { if (pred(r)) done(r) })
      signal.addEventListener('abort', onAbort, { once: true })
    })
  }

  private check (): void {
    if (this.node === null) return
    const r = this.report()
    if (r.status === this.last) return
    this.last = r.status
    this.logger.info({ reachability: r.status, relays: r.relays, relayAddrs: r.relayAddrs, publicAddrs: r.publicAddrs, lanAddrs: r.lanAddrs, observedAddrs: r.observedAddrs, relayServer: r.relayServer }, 'reachability')
    for (const l of this.listeners) l(r)
  }
}

// ---- job streams over relayed connections ----

/**
 * Opens `protocol` to `peer` on the best connection we have: a direct one if there is one
 * (after DCUtR, or a direct dial), else an open relayed (limited) one, else a new dial. The
 * protocol must be allowed on limited connections (its handler registered with
 * `runOnLimitedConnection`).
 */
export async function openStreamPreferDirect (node: Pick<AnyLibp2p, 'getConnections' | 'dial'>, peer: PeerId, protocol: string, options: { signal?: AbortSignal, negotiateFully?: boolean } = {}): Promise<Stream> {
  const pick = (): Connection | undefined => node.getConnections(peer)
    .filter(c => c.status === 'open')
    .sort((a, b) => Number(a.limits !== undefined) - Number(b.limits !== undefined))[0]
  const conn = pick() ?? await node.dial(peer, { signal: options.signal })
  return await conn.newStream(protocol, { signal: options.signal, runOnLimitedConnection: true, negotiateFully: options.negotiateFully ?? true })
}

/** True when the connection goes through a relay. */
export function isRelayed (c: Connection): boolean { return isCircuit(c.remoteAddr.toString()) }
