import { createLibp2p, type Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@libp2p/noise'
import { yamux } from '@libp2p/yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { bootstrap } from '@libp2p/bootstrap'
import { gossipsub, type GossipSub, type Message } from '@libp2p/gossipsub'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { peerIdFromString } from '@libp2p/peer-id'
import type { PeerId } from '@libp2p/interface'
import { HeuristError } from '../core/errors.js'
import type { Identity } from '../core/identity.js'
import type { Logger } from '../core/logger.js'
import type { Store } from '../core/store.js'
import {
  GossipStats, GossipValidationError, createAdvertValidator, createReceiptValidator, gossipValidatorFn, topicScoreParams,
  type AdvertValidatorOptions, type ReceiptValidatorOptions
} from './gossip.js'
import { TOPICS, allVerdictTopics, encodeMessage, type Advert, type ReceiptMessage } from './messages.js'
import { PeerTable, type PeerTableOptions } from './peer-table.js'
import { JobServer, runJob, type JobExecutor, type JobRequest, type JobServerOptions, type RunJobOptions, type RunJobResult } from './job.js'
import { meshPeerRouting } from './peer-routing.js'
import { Reachability, RelayGuard, checkRelayAddrs, withoutLoopback, openStreamPreferDirect, reachabilityOptions, reachabilityParts, type ReachabilityInit } from './reachability.js'

/**
 * A Heurist mesh node: libp2p (TCP, Noise, Yamux, identify, ping, bootstrap) with gossipsub
 * (strict signing, peer scoring, peer exchange), the validated topics, the peer table fed by
 * capacity adverts, and the job protocol (client always; server once `serveJobs` is called).
 * The PeerId is derived from the operator's secp256k1 key, so each peer's EVM address is
 * read off its PeerId.
 */
export interface HeuristNodeOptions {
  identity: Identity
  /** Multiaddrs to listen on. Default `/ip4/127.0.0.1/tcp/0`. */
  listen: string[]
  /** Peers (multiaddrs with /p2p/) to join through. Default none. */
  bootstrap: string[]
  /**
   * Addresses to advertise instead of the ones found from the listen addresses (a public IP
   * behind a port forward, a `/dns4/name/tcp/port`). Default none: the listen addresses, with
   * loopback dropped whenever another address exists.
   */
  announce: string[]
  /**
   * Loopback relaxations for a local devnet or tests: 127.0.0.1 is whitelisted from gossipsub's
   * IP-colocation penalty and from the inbound connection rate limit. Never on a public node.
   */
  devnet: boolean
  logger: Logger
  /** Keeps the peers' uptime history; null = in memory only. */
  store: Store | null
  /** Gossipsub heartbeat. Default 1000 ms (the gossipsub spec's value). */
  heartbeatMs: number
  advertValidator?: Partial<AdvertValidatorOptions>
  receiptValidator?: Partial<ReceiptValidatorOptions>
  peerTable?: Partial<PeerTableOptions>
  /** Connections kept at most. Default 100. */
  maxConnections: number
  /** Below this many connections, redial bootstrap peers and dial miners heard in adverts. Default 8 (gossipsub's D is 6). */
  targetPeers: number
  /** Relays, AutoNAT, DCUtR (see reachability.ts). Default: relay server when a listen address is public, no reservations. */
  reachability?: ReachabilityInit
  /**
   * Whether to subscribe to the capacity adverts and the receipts (default both). A node that
   * does not use them (a miner at scale: it routes no jobs, and validators, not miners, need
   * receipts) leaves them out and neither receives nor relays them: its own adverts still go,
   * by gossipsub's flood publish, to every connected peer that is subscribed (gateways,
   * validators). Such a node must keep peers that are (its bootstrap list): the maintenance
   * loop redials them when none of its connected peers carries a topic it publishes on.
   */
  subscribe: { capacity: boolean, receipts: boolean }
}

/** Receipts held while no peer subscribes to the receipts topic (see publishReceipt); ~2 kB each. */
export const MAX_HELD_RECEIPTS = 1024

export const defaultHeuristNodeOptions = {
  listen: ['/ip4/127.0.0.1/tcp/0'],
  bootstrap: [] as string[],
  announce: [] as string[],
  devnet: false,
  store: null,
  heartbeatMs: 1000,
  maxConnections: 100,
  targetPeers: 8,
  subscribe: { capacity: true, receipts: true }
}

export type HeuristNodeInit = Partial<HeuristNodeOptions> & Pick<HeuristNodeOptions, 'identity' | 'logger'>

type Services = { pubsub: GossipSub, identify: unknown, ping: unknown, meshRouting: unknown }

export class HeuristNode {
  readonly o: HeuristNodeOptions
  readonly stats = new GossipStats()
  readonly peerTable: PeerTable
  private node: Libp2p<Services> | null = null
  private relayGuard: RelayGuard | null = null
  private reach: Reachability | null = null
  private jobServer: JobServer | null = null
  private readonly receiptListeners = new Set<(m: ReceiptMessage, from: string) => void>()
  private readonly heldReceipts: Uint8Array[] = []

  constructor (init: HeuristNodeInit) {
    this.o = { ...defaultHeuristNodeOptions, ...init }
    this.peerTable = new PeerTable(this.o.store, this.o.logger, this.o.peerTable)
  }

  get identity (): Identity { return this.o.identity }
  get address (): string { return this.o.identity.address }
  get peerId (): PeerId { return this.o.identity.peerId }

  get libp2p (): Libp2p<Services> {
    if (this.node === null) throw new HeuristError('P2P_NOT_STARTED', 'the node is not started')
    return this.node
  }

  get pubsub (): GossipSub { return this.libp2p.services.pubsub }

  async start (): Promise<void> {
    if (this.node !== null) return
    const o = this.o
    this.bootstrapTargets = o.bootstrap.map(ma => {
      try {
        const addr = multiaddr(ma)
        const id = addr.getComponents().find(c => c.name === 'p2p')?.value
        if (id !== undefined) return { ma, addr, id, peerId: peerIdFromString(id) }
      } catch { /* reported below */ }
      throw new HeuristError('P2P_BAD_BOOTSTRAP', `bootstrap address ${ma} has no /p2p/<peerId>`, { usage: true })
    })
    const bootstrapPeers = new Set(this.bootstrapTargets.map(b => b.id))
    const loopback = ['127.0.0.1', '::1']
    const reach = reachabilityParts(o.listen, reachabilityOptions(o.reachability), o.logger)
    const guard = this.relayGuard = reach.guard
    this.node = await createLibp2p<Services>({
      privateKey: o.identity.libp2pKey,
      addresses: {
        listen: [...o.listen, ...reach.listen],
        ...(o.announce.length > 0 ? { announce: o.announce } : {}),
        // no other host can dial our 127.0.0.1: never advertise it beside a real address
        announceFilter: (addrs: Multiaddr[]) => withoutLoopback(addrs)
      },
      transports: [tcp(), ...reach.transports],
      connectionGater: guard.gater(),
      connectionEncrypters: [noise()],
      // a gateway opens a stream per job and may open dozens at once on a fresh connection:
      // yamux's default of 10 streams before the receiver is ready would abort the connection
      streamMuxers: [yamux({ maxEarlyStreams: 256 })],
      peerDiscovery: o.bootstrap.length > 0 ? [bootstrap({ list: o.bootstrap, timeout: 0 })] : [],
      connectionManager: {
        maxConnections: o.maxConnections,
        ...(o.devnet ? { allow: ['/ip4/127.0.0.1', '/ip6/::1'] } : {})
      },
      services: {
        identify: identify(),
        ping: ping(),
        // a peer known only by id (a gateway heard through a miner) is found through the mesh
        meshRouting: meshPeerRouting() as never,
        ...reach.services,
        pubsub: gossipsub({
          globalSignaturePolicy: 'StrictSign',
          allowPublishToZeroTopicPeers: true,
          ignoreDuplicatePublishError: true,
          // Peer exchange is how nodes find each other beyond the bootstrap star: a pruning
          // peer hands over others' signed records. We accept PX only from peers scoring at
          // least acceptPXThreshold, which the app-specific score gives to our bootstrap peers.
          doPX: true,
          heartbeatInterval: o.heartbeatMs,
          allowedTopics: [...Object.values(TOPICS), ...allVerdictTopics()],
          maxInboundDataLength: 1024 * 1024,
          scoreParams: {
            topics: topicScoreParams() as never,
            appSpecificScore: (p: string) => (bootstrapPeers.has(p) ? 1 : 0) - guard.penalty(p),
            appSpecificWeight: 10,
            ...(o.devnet ? { IPColocationFactorWhitelist: new Set(loopback) } : {})
          },
          scoreThresholds: { gossipThreshold: -10, publishThreshold: -50, graylistThreshold: -80, acceptPXThreshold: 10, opportunisticGraftThreshold: 20 }
        }) as never
      }
    })
    guard.attach(this.node as never)
    this.reach = new Reachability(reach.relayServer, guard, o.logger)
    this.reach.attach(this.node as never)
    const ps = this.pubsub
    const validateAdvert = createAdvertValidator(o.advertValidator)
    const self = this.peerId.toString()
    // relayed addresses must lead to the advertiser, and through us only with a reservation
    const advertWithRelayCheck = (msg: Message): Advert => {
      const advert = validateAdvert(msg)
      const from = msg.type === 'signed' ? msg.from.toString() : ''
      const bad = checkRelayAddrs(advert.addrs, from, { peerId: self, hasReservation: reach.relayServer ? (p: string) => guard.hasReservation(p) : null })
      if (bad !== null) throw new GossipValidationError('reject', bad.code, bad.message)
      return advert
    }
    ps.topicValidators.set(TOPICS.capacity, gossipValidatorFn(TOPICS.capacity, advertWithRelayCheck, (advert: Advert, msg: Message) => {
      if (msg.type !== 'signed') return
      this.peerTable.update(msg.from.toString(), advert)
      this.maybeConnect(msg.from, advert)
    }, o.logger, this.stats))
    ps.topicValidators.set(TOPICS.receipts, gossipValidatorFn(TOPICS.receipts, createReceiptValidator(o.receiptValidator), (m: ReceiptMessage, msg: Message) => {
      const from = msg.type === 'signed' ? msg.from.toString() : ''
      for (const l of this.receiptListeners) l(m, from)
    }, o.logger, this.stats))
    // on a heartbeat once a subscriber was already known at the one before, not on its
    // subscription: gossipsub may not have its stream to that peer open yet, and would send the
    // message to nobody (and then take a republish for a duplicate)
    let subscriberAtLastBeat = false
    ps.addEventListener('gossipsub:heartbeat', () => {
      const now = ps.getSubscribers(TOPICS.receipts).length > 0
      if (now && subscriberAtLastBeat) this.flushHeldReceipts()
      subscriberAtLastBeat = now
    })
    if (o.bootstrap.length > 0) {
      this.maintenance = setInterval(() => { this.redialBootstrap() }, 3000)
      this.maintenance.unref()
    }
    if (o.subscribe.capacity) ps.subscribe(TOPICS.capacity)
    if (o.subscribe.receipts) ps.subscribe(TOPICS.receipts)
    o.logger.info({ peerId: this.peerId.toString(), address: this.address, addrs: this.multiaddrs(), devnet: o.devnet }, 'p2p node started')
  }

  private discoveryDials = 0
  private maintenance: NodeJS.Timeout | null = null
  /** The bootstrap addresses, parsed once at start. */
  private bootstrapTargets: Array<{ ma: string, addr: Multiaddr, id: string, peerId: PeerId }> = []

  /**
   * Discovery beside gossipsub peer exchange: a node with fewer than `targetPeers` connections
   * dials miners it hears adverts from (their addresses are in the signed advert), so the mesh
   * does not stay a star around the bootstrap node. At most two such dials at a time.
   */
  private maybeConnect (from: PeerId, advert: Advert): void {
    const node = this.node
    if (node === null || advert.addrs.length === 0 || this.discoveryDials >= 2) return
    if (node.getPeers().length >= this.o.targetPeers || node.getConnections(from).length > 0) return
    this.discoveryDials++
    node.peerStore.merge(from, { multiaddrs: parseAddrs(advert.addrs) })
      .then(async () => { await node.dial(from, { signal: AbortSignal.timeout(10_000) }) })
      .catch(err => { this.o.logger.debug({ peer: from.toString(), err: (err as Error).message }, 'discovery dial failed') })
      .finally(() => { this.discoveryDials-- })
  }

  /** The bootstrap module dials once; a node left with too few peers (a failed dial, a restart of the bootstrap node) redials. */
  private redialBootstrap (): void {
    const node = this.node
    if (node === null) return
    // a node that publishes adverts without subscribing needs a connected subscriber to hear them
    const noAdvertPeer = !this.o.subscribe.capacity && this.pubsub.getSubscribers(TOPICS.capacity).length === 0
    if (node.getPeers().length >= this.o.targetPeers && !noAdvertPeer) return
    for (const { ma, addr, id, peerId } of this.bootstrapTargets) {
      if (id === this.peerId.toString() || node.getConnections(peerId).length > 0) continue
      node.dial(addr, { signal: AbortSignal.timeout(10_000) }).catch(err => { this.o.logger.debug({ addr: ma, err: (err as Error).message }, 'bootstrap redial failed') })
    }
  }

  /** Serves `/heurist/job/1.0.0` with `executor`. */
  async serveJobs (executor: JobExecutor, options: Partial<JobServerOptions> = {}): Promise<JobServer> {
    if (this.jobServer !== null) return this.jobServer
    this.jobServer = new JobServer(this.libp2p, this.identity.wallet, executor, this.o.logger, options)
    await this.jobServer.start()
    return this.jobServer
  }

  get jobs (): JobServer | null { return this.jobServer }

  /** Runs a job on a miner (see `runJob`). Dials the addresses from its advert if needed. */
  async runJob (peer: PeerId | string, job: JobRequest, options: RunJobOptions = {}): Promise<RunJobResult> {
    const id = typeof peer === 'string' ? peerIdFromString(peer) : peer
    // a peer-store write per job is off the time to first token when a connection is already open
    if (!this.libp2p.getConnections(id).some(c => c.status === 'open')) await this.learnAddrs(id)
    // on a relayed connection until DCUtR (or a direct dial) gives a direct one
    const node = this.libp2p
    // optimistic protocol select: the protocol name goes out with the request frame, saving a
    // round trip before the job starts (a miner without the protocol fails the first read instead)
    const dialer = { peerId: node.peerId, dialProtocol: async (p: PeerId, protocol: string, opts?: { signal?: AbortSignal }) => await openStreamPreferDirect(node, p, protocol, { ...opts, negotiateFully: false }) }
    return await runJob(dialer, id, job, options)
  }

  /** Adds a miner's advertised addresses to the peer store so it can be dialled. */
  private async learnAddrs (id: PeerId): Promise<void> {
    const entry = this.peerTable.miners().find(e => e.peerId === id.toString())
    if (entry === undefined || entry.advert.addrs.length === 0) return
    await this.libp2p.peerStore.merge(id, { multiaddrs: parseAddrs(entry.advert.addrs) }).catch(() => {})
  }

  /** Publishes a capacity advert (must be ours: validators reject anyone else's). */
  async publishAdvert (advert: Advert): Promise<void> {
    await this.publish(TOPICS.capacity, encodeMessage(advert))
  }

  /**
   * Gossips a receipt. Gossipsub sends a message published while it knows no peer subscribed
   * to the topic nowhere, and later peers never hear of it (its gossip window is seconds): the
   * miner would lose the points of a job it was paid for. So a receipt published then is held
   * (at most MAX_HELD_RECEIPTS, the oldest dropped and counted) and published one heartbeat
   * after a peer subscribed to the receipts topic.
   */
  async publishReceipt (m: ReceiptMessage): Promise<void> {
    const data = encodeMessage(m)
    if (this.pubsub.getSubscribers(TOPICS.receipts).length > 0) {
      await this.publish(TOPICS.receipts, data)
      return
    }
    this.heldReceipts.push(data)
    this.stats.inc(TOPICS.receipts, 'held', 'NO_SUBSCRIBER')
    if (this.heldReceipts.length > MAX_HELD_RECEIPTS) {
      this.heldReceipts.shift()
      this.stats.inc(TOPICS.receipts, 'dropped', 'HELD_OVERFLOW')
    }
  }

  /** How many receipts wait for a subscriber (see publishReceipt). */
  get heldReceiptCount (): number { return this.heldReceipts.length }

  private flushHeldReceipts (): void {
    if (this.node === null || this.heldReceipts.length === 0 || this.pubsub.getSubscribers(TOPICS.receipts).length === 0) return
    const held = this.heldReceipts.splice(0)
    for (const data of held) {
      this.publish(TOPICS.receipts, data).catch(err => { this.o.logger.warn({ err: (err as Error).message }, 'held receipt not published') })
    }
    this.o.logger.debug({ receipts: held.length }, 'held receipts published')
  }

  /** Raw publish (tests use it to play a misbehaving peer). */
  async publish (topic: string, data: Uint8Array): Promise<void> {
    await this.pubsub.publish(topic, data)
  }

  onReceipt (fn: (m: ReceiptMessage, from: string) => void): () => void {
    this.receiptListeners.add(fn)
    return () => { this.receiptListeners.delete(fn) }
  }

  /** Where others can reach us: public, private via relay, or unreachable (see reachability.ts). */
  get reachability (): Reachability {
    if (this.reach === null) throw new HeuristError('P2P_NOT_STARTED', 'the node is not started')
    return this.reach
  }

  /** The relay's per-peer limits and penalties (refusals, bans). */
  get relay (): RelayGuard {
    if (this.relayGuard === null) throw new HeuristError('P2P_NOT_STARTED', 'the node is not started')
    return this.relayGuard
  }

  multiaddrs (): string[] {
    return this.node === null ? [] : this.node.getMultiaddrs().map(m => m.toString())
  }

  connectedPeers (): string[] {
    return this.libp2p.getPeers().map(p => p.toString())
  }

  /** Gossipsub's score of a peer (graylisted below −80). */
  score (peer: string): number {
    return (this.pubsub as unknown as { getScore: (p: string) => number }).getScore(peer)
  }

  async dial (ma: string): Promise<void> {
    await this.libp2p.dial(multiaddr(ma))
  }

  /** Stops the job server (draining for `graceMs`), then libp2p; flushes peer history. */
  async stop (graceMs = 0): Promise<void> {
    if (this.jobServer !== null) {
      await this.jobServer.drain(graceMs)
      await this.jobServer.stop()
      this.jobServer = null
    }
    this.reach?.detach()
    this.relayGuard?.detach()
    if (this.maintenance !== null) clearInterval(this.maintenance)
    this.maintenance = null
    if (this.node !== null) {
      await this.node.stop()
      this.node = null
    }
    await this.peerTable.flush()
  }
}

/** The multiaddrs among an advert's addresses that parse (a bad one is skipped, not fatal). */
function parseAddrs (addrs: string[]): Multiaddr[] {
  const out: Multiaddr[] = []
  for (const a of addrs) { try { out.push(multiaddr(a)) } catch { /* skip a bad address */ } }
  return out
}

export async function createHeuristNode (init: HeuristNodeInit): Promise<HeuristNode> {
  const node = new HeuristNode(init)
  await node.start()
  return node
}
