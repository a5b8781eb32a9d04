import { z } from 'zod'
import { peerRoutingSymbol, type AbortOptions, type Connection, type PeerId, type PeerInfo, type PeerStore, type Stream } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { HeuristError } from '../core/errors.js'
import { FrameStream } from './frames.js'
import { ipOf, isCircuit, isLoopbackIp } from './reachability.js'

/**
 * Peer routing through the mesh: a node that must dial a peer it knows only by id (a
 * validator fetching a transcript from the gateway that gossiped a receipt, heard through a
 * miner) asks the peers it is connected to for the addresses they hold for that id, on
 * `/heurist/peer-addrs/1.0.0`. libp2p calls `findPeer` itself when a dial has no address.
 *
 * The answers are claims: a wrong address fails the Noise handshake (the peer id is checked),
 * so a lying peer can only make us try at most MAX_ADDRS addresses per lookup. Loopback
 * addresses are only handed to peers that asked over loopback.
 */
export const PEER_ADDRS_PROTOCOL = '/heurist/peer-addrs/1.0.0'

export interface MeshPeerRoutingOptions {
  /** Connected peers asked per lookup, in parallel. Default 8. */
  askAtMost: number
  /** How long one lookup may take. Default 5 s. */
  timeoutMs: number
}

export const defaultMeshPeerRoutingOptions: MeshPeerRoutingOptions = { askAtMost: 8, timeoutMs: 5_000 }

const MAX_ADDRS = 16
const MAX_REQUEST_BYTES = 256
const MAX_RESPONSE_BYTES = 8 * 1024
const requestSchema = z.object({ v: z.literal(1), peer: z.string().min(1).max(128) })
const responseSchema = z.object({ v: z.literal(1), addrs: z.array(z.string().min(1).max(256)).max(MAX_ADDRS) })

interface Components {
  registrar: { handle: (protocol: string, handler: (stream: Stream, connection: Connection) => void, options?: Record<string, unknown>) => Promise<void>, unhandle: (protocol: string) => Promise<void> }
  peerStore: PeerStore
  connectionManager: { getConnections: (peer?: PeerId) => Connection[] }
}

function loopbackAddr (a: string): boolean {
  const ip = ipOf(a)
  return ip !== null && !isCircuit(a) && isLoopbackIp(ip)
}

/** What we tell an asker about `peer`: the addresses our peer store holds, loopback only to a loopback asker. */
export function addrsToShare (known: string[], askerAddr: string): string[] {
  const askerOnLoopback = loopbackAddr(askerAddr)
  return [...new Set(known)].filter(a => askerOnLoopback || !loopbackAddr(a)).slice(0, MAX_ADDRS)
}

export class MeshPeerRouting {
  readonly o: MeshPeerRoutingOptions

  constructor (private readonly components: Components, init: Partial<MeshPeerRoutingOptions> = {}) {
    this.o = { ...defaultMeshPeerRoutingOptions, ...init }
  }

  readonly [Symbol.toStringTag] = '@heurist/mesh-peer-routing'

  get [peerRoutingSymbol] (): MeshPeerRouting { return this }

  async start (): Promise<void> {
    await this.components.registrar.handle(PEER_ADDRS_PROTOCOL, (stream, connection) => {
      this.answer(stream, connection).catch(() => {})
    }, { maxInboundStreams: 4, runOnLimitedConnection: true })
  }

  async stop (): Promise<void> {
    await this.components.registrar.unhandle(PEER_ADDRS_PROTOCOL).catch(() => {})
  }

  private async answer (stream: Stream, connection: Connection): Promise<void> {
    const timer = setTimeout(() => { stream.abort(new Error('peer-addrs request too slow')) }, 5_000)
    try {
      const frames = new FrameStream(stream, MAX_REQUEST_BYTES)
      const req = await frames.next(requestSchema, MAX_REQUEST_BYTES, 'peer-addrs request')
      if (req === null) return
      let addrs: string[] = []
      try {
        const peer = await this.components.peerStore.get(peerIdFromString(req.peer))
        addrs = addrsToShare(peer.addresses.map(a => a.multiaddr.toString()), connection.remoteAddr.toString())
      } catch { /* unknown peer or bad id: no addresses */ }
      frames.write({ v: 1, addrs })
      await frames.flush()
    } finally {
      clearTimeout(timer)
      await stream.close().catch(() => {})
    }
  }

  private async ask (conn: Connection, id: PeerId, signal: AbortSignal): Promise<Multiaddr[]> {
    const stream = await conn.newStream(PEER_ADDRS_PROTOCOL, { signal, runOnLimitedConnection: true })
    try {
      const frames = new FrameStream(stream, MAX_RESPONSE_BYTES)
      frames.write({ v: 1, peer: id.toString() })
      await frames.flush()
      const r = await frames.next(responseSchema, MAX_RESPONSE_BYTES, 'peer-addrs response')
      const out: Multiaddr[] = []
      for (const a of r?.addrs ?? []) { try { out.push(multiaddr(a)) } catch { /* skip a bad address */ } }
      if (out.length === 0) throw new HeuristError('P2P_PEER_NOT_FOUND', `${conn.remotePeer.toString()} knows no address for ${id.toString()}`)
      return out
    } finally {
      await stream.close().catch(() => {})
    }
  }

  /** Asks up to `askAtMost` connected peers at once; the first that knows an address answers. */
  async findPeer (id: PeerId, options: AbortOptions = {}): Promise<PeerInfo> {
    const seen = new Set<string>()
    const conns = this.components.connectionManager.getConnections()
      .filter(c => c.status === 'open' && !c.remotePeer.equals(id))
      .filter(c => { const k = c.remotePeer.toString(); if (seen.has(k)) return false; seen.add(k); return true })
      .slice(0, this.o.askAtMost)
    if (conns.length === 0) throw new HeuristError('P2P_PEER_NOT_FOUND', `no connected peer to ask for ${id.toString()}`)
    const timeout = AbortSignal.timeout(this.o.timeoutMs)
    const signal = options.signal === undefined ? timeout : AbortSignal.any([options.signal, timeout])
    try {
      const multiaddrs = await Promise.any(conns.map(async c => await this.ask(c, id, signal)))
      return { id, multiaddrs }
    } catch {
      throw new HeuristError('P2P_PEER_NOT_FOUND', `none of ${conns.length} connected peers knows an address for ${id.toString()}`)
    }
  }

  /**
   * Not a DHT: no closest peers. It must throw, not end empty: libp2p's random walk (relay
   * discovery) stops on an error but loops at once on an empty answer, spinning the CPU.
   */
  async * getClosestPeers (): AsyncGenerator<PeerInfo, void, undefined> {
    yield * []
    throw new HeuristError('P2P_NO_CLOSEST_PEERS', 'mesh peer routing finds peers by id only')
  }
}

export function meshPeerRouting (init: Partial<MeshPeerRoutingOptions> = {}): (components: Components) => MeshPeerRouting {
  return (components) => new MeshPeerRouting(components, init)
}
