import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { multiaddr } from '@multiformats/multiaddr'
import { RELAY_V2_HOP_CODEC } from '@libp2p/circuit-relay-v2'
import { basicHardware, buildAdvert, checkRelayAddrs, encodeMessage, isRelayed, JOB_PROTOCOL, TOPICS, type HeuristNode } from '../../src/p2p/index.js'
import { ScriptedExecutor, SCRIPT_MODEL } from '../p2p/scripted-executor.js'
import { testNode, until, stopAll } from '../p2p/util.js'

/**
 * Relays on 127.0.0.1 (no namespaces needed): a miner with no listen address of its own is
 * reachable only through its relay reservation; the relay's per-peer limits refuse abusive
 * peers, penalize them, and keep serving honest ones. The real NAT is in nat.test.ts.
 */

const sampling = { seed: 1, temperature: 0, topP: 1, topK: 0, maxTokens: 3, stop: [] }
const job = { kind: 'llm' as const, modelId: SCRIPT_MODEL.id, input: 'hi', sampling }

function varint (b: Uint8Array, at: number): [number, number] {
  let v = 0
  let mul = 1
  for (;;) {
    const x = b[at++]
    if (x === undefined) throw new Error('truncated varint')
    v += (x & 0x7f) * mul
    if ((x & 0x80) === 0) return [v, at]
    mul *= 128
  }
}

/** The `status` (field 5) of one length-prefixed HopMessage. */
function hopStatus (buf: Uint8Array): number {
  let [len, at] = varint(buf, 0)
  const end = at + len
  while (at < end) {
    let tag: number
    ;[tag, at] = varint(buf, at)
    if ((tag & 7) === 0) {
      let v: number
      ;[v, at] = varint(buf, at)
      if (tag >> 3 === 5) return v
    } else if ((tag & 7) === 2) {
      let l: number
      ;[l, at] = varint(buf, at)
      at += l
    } else throw new Error(`unexpected wire type ${tag & 7}`)
  }
  return -1
}

/** One raw HOP RESERVE on a fresh stream: the relay's status (100 OK, 200 RESERVATION_REFUSED, 202 PERMISSION_DENIED), or 'reset'. */
async function reserveOnce (from: HeuristNode, relay: HeuristNode): Promise<number | 'reset'> {
  try {
    const stream = await from.libp2p.dialProtocol(relay.peerId, RELAY_V2_HOP_CODEC, { signal: AbortSignal.timeout(5000) })
    // HopMessage { type: RESERVE (0) }, length-prefixed
    stream.send(Uint8Array.from([2, 0x08, 0x00]))
    let buf = Buffer.alloc(0)
    for await (const c of stream) {
      buf = Buffer.concat([buf, c.subarray()])
      const [len, at] = varint(buf, 0)
      if (buf.length >= at + len) break
    }
    stream.abort(new Error('done'))
    return hopStatus(buf)
  } catch {
    return 'reset'
  }
}

describe('relay on loopback: reservations, relayed jobs, limits', () => {
  let relay: HeuristNode
  let miner: HeuristNode
  let client: HeuristNode
  const nodes: HeuristNode[] = []

  beforeAll(async () => {
    relay = await testNode({ reachability: { relay: 'on', limits: { maxCircuitsPerPeer: 2, maxReserveRequestsPerMinute: 3, strikesToBan: 3 } } })
    nodes.push(relay)
    const relayAddr = relay.multiaddrs()[0]!
    // no TCP listener at all: only the relay reaches it
    miner = await testNode({ listen: [], bootstrap: [relayAddr], reachability: { relay: 'off', reservations: 1 } })
    nodes.push(miner)
    await miner.serveJobs(new ScriptedExecutor(['a', 'b', 'c'], 5))
    client = await testNode({ listen: [], bootstrap: [relayAddr], reachability: { relay: 'off' } })
    nodes.push(client)
  }, 30_000)
  afterAll(async () => { await stopAll(nodes) })

  it('a miner without a listen address becomes private-via-relay and holds a reservation on the relay', async () => {
    const r = await miner.reachability.waitFor(x => x.status === 'private-via-relay', AbortSignal.timeout(15_000))
    expect(r.private).toBe(true)
    expect(r.viaRelay).toBe(true)
    expect(r.relays).toEqual([relay.peerId.toString()])
    expect(r.relayAddrs.every(a => a.includes(`/p2p/${relay.peerId.toString()}/p2p-circuit`))).toBe(true)
    expect(relay.relay.hasReservation(miner.peerId.toString())).toBe(true)
    expect(relay.reachability.report().status).toBe('public')
    expect(relay.reachability.report().reservationsServed).toBe(1)
  })

  it('a job reaches the miner over a relayed (limited) connection and returns a valid receipt', async () => {
    const relayed = multiaddr(miner.reachability.report().relayAddrs[0]!)
    await client.libp2p.peerStore.merge(miner.peerId, { multiaddrs: [relayed] })
    const r = await client.runJob(miner.peerId, job, { timeoutMs: 15_000 })
    expect(r.receiptValid).toBe(true)
    expect(r.output.kind === 'llm' ? r.output.result.text : '').toBe('abc')
    const conns = client.libp2p.getConnections(miner.peerId)
    expect(conns.length).toBeGreaterThan(0)
    expect(conns.every(isRelayed)).toBe(true)
    expect(conns[0]!.limits).toBeDefined()
  })

  it('a second job reuses the open relayed connection instead of opening another circuit', async () => {
    const before = client.libp2p.getConnections(miner.peerId).map(c => c.id)
    const r = await client.runJob(miner.peerId, job, { timeoutMs: 15_000 })
    expect(r.receiptValid).toBe(true)
    expect(client.libp2p.getConnections(miner.peerId).map(c => c.id)).toEqual(before)
  })

  it('a peer asking for reservations too often is refused, struck, then banned; the honest miner keeps its slot', async () => {
    const greedy = await testNode({ listen: [], reachability: { relay: 'off' } })
    nodes.push(greedy)
    await greedy.dial(relay.multiaddrs()[0]!)
    const statuses: Array<number | 'reset'> = []
    for (let i = 0; i < 8; i++) statuses.push(await reserveOnce(greedy, relay))
    // 100 = OK, 202 = PERMISSION_DENIED (our gater): three a minute allowed, then refused
    expect(statuses).toEqual([100, 100, 100, 202, 202, 202, 202, 202])
    expect(relay.relay.stats.reservationsRefused).toBeGreaterThanOrEqual(5)
    expect(relay.relay.banned(greedy.peerId.toString())).toBe(true)
    expect(relay.relay.penalty(greedy.peerId.toString())).toBe(10)
    // gossip score of the banned peer falls below the graylist threshold
    expect(await until(() => relay.score(greedy.peerId.toString()) < -80, 5000)).toBe(true)
    expect(relay.relay.hasReservation(miner.peerId.toString())).toBe(true)
    expect((await client.runJob(miner.peerId, job, { timeoutMs: 15_000 })).receiptValid).toBe(true)
  })

  it('a peer opening relayed connections beyond the per-peer limit is refused and struck; nothing crashes', async () => {
    const hog = await testNode({ listen: [], reachability: { relay: 'off' } })
    nodes.push(hog)
    const relayed = multiaddr(miner.reachability.report().relayAddrs[0]!)
    const opened: string[] = []
    const failed: string[] = []
    for (let i = 0; i < 4; i++) {
      try {
        const c = await hog.libp2p.dial(relayed, { signal: AbortSignal.timeout(5000), force: true } as never)
        opened.push(c.id)
      } catch (e) { failed.push((e as Error).message) }
    }
    // maxCircuitsPerPeer = 2
    expect(opened.length).toBe(2)
    expect(failed.length).toBe(2)
    expect(relay.relay.stats.circuitsRefused).toBeGreaterThanOrEqual(2)
    expect(relay.relay.penalty(hog.peerId.toString())).toBeGreaterThanOrEqual(2)
    // the relay, the miner and honest clients are unaffected
    expect((await client.runJob(miner.peerId, job, { timeoutMs: 15_000 })).receiptValid).toBe(true)
    const hopStreams = relay.libp2p.getConnections(hog.peerId).flatMap(c => c.streams).filter(s => s.protocol === RELAY_V2_HOP_CODEC).length
    expect(hopStreams).toBeLessThanOrEqual(2)
  })

  it('an advert claiming a relayed address through us without a reservation, or ending at another peer, is rejected', async () => {
    const liar = await testNode({ listen: [], bootstrap: [relay.multiaddrs()[0]!], reachability: { relay: 'off' } })
    nodes.push(liar)
    expect(await until(() => relay.connectedPeers().includes(liar.peerId.toString()), 5000)).toBe(true)
    const relayBase = relay.multiaddrs()[0]!
    const noReservation = `${relayBase}/p2p-circuit/p2p/${liar.peerId.toString()}`
    const notOwn = `${relayBase}/p2p-circuit/p2p/${miner.peerId.toString()}`
    expect(checkRelayAddrs([noReservation], liar.peerId.toString(), { peerId: relay.peerId.toString(), hasReservation: p => relay.relay.hasReservation(p) })?.code).toBe('P2P_RELAY_ADDR_NO_RESERVATION')
    expect(checkRelayAddrs([notOwn], liar.peerId.toString(), { peerId: 'x', hasReservation: null })?.code).toBe('P2P_RELAY_ADDR_NOT_OWN')
    expect(checkRelayAddrs([`${relayBase}/p2p-circuit/p2p-circuit`], liar.peerId.toString(), { peerId: 'x', hasReservation: null })?.code).toBe('P2P_BAD_RELAY_ADDR')
    expect(checkRelayAddrs(miner.reachability.report().relayAddrs, miner.peerId.toString(), { peerId: relay.peerId.toString(), hasReservation: p => relay.relay.hasReservation(p) })).toBeNull()
    // over gossip: the relay rejects the lie and counts it by code
    const ex = new ScriptedExecutor()
    const advert = buildAdvert(liar, { hardware: basicHardware(), models: ex.models(), queueDepth: 0, maxJobs: 1, tokensPerSecond: 0, imagesPerSecond: 0, price: 0n, version: 't', paid: false }, Date.now(), 15_000)
    advert.addrs = [noReservation]
    await until(async () => {
      await liar.publish(TOPICS.capacity, encodeMessage(advert)).catch(() => {})
      advert.seq++
      return relay.stats.get(TOPICS.capacity, 'reject', 'P2P_RELAY_ADDR_NO_RESERVATION') > 0
    }, 8000, 600)
    expect(relay.stats.get(TOPICS.capacity, 'reject', 'P2P_RELAY_ADDR_NO_RESERVATION') > 0).toBe(true)
    expect(relay.peerTable.miners().some(m => m.peerId === liar.peerId.toString())).toBe(false)
  })
})

describe('job streams move to a direct connection once there is one', () => {
  const nodes: HeuristNode[] = []
  afterAll(async () => { await stopAll(nodes) })

  it('runs on the relayed connection first, then on the direct one as soon as it exists', async () => {
    const relay = await testNode({ reachability: { relay: 'on' } })
    nodes.push(relay)
    const miner = await testNode({ bootstrap: [relay.multiaddrs()[0]!], reachability: { relay: 'off', reservations: 1 } })
    nodes.push(miner)
    await miner.serveJobs(new ScriptedExecutor(['a', 'b', 'c'], 20))
    const client = await testNode({ listen: [], reachability: { relay: 'off' } })
    nodes.push(client)
    const r = await miner.reachability.waitFor(x => x.viaRelay, AbortSignal.timeout(15_000))
    await client.libp2p.peerStore.merge(miner.peerId, { multiaddrs: [multiaddr(r.relayAddrs[0]!)] })

    // which connection carries the job stream while tokens arrive
    const carrier = (): string[] => client.libp2p.getConnections(miner.peerId)
      .filter(c => c.streams.some(s => s.protocol === JOB_PROTOCOL))
      .map(c => isRelayed(c) ? 'relayed' : 'direct')
    let seen: string[] = []
    const first = await client.runJob(miner.peerId, job, { timeoutMs: 15_000, onToken: () => { seen = carrier() } })
    expect(first.receiptValid).toBe(true)
    expect(seen).toEqual(['relayed'])

    // a direct connection appears (what DCUtR does where the NATs allow; here a plain dial)
    const direct = miner.multiaddrs().find(a => !a.includes('p2p-circuit'))!
    await client.dial(direct)
    expect(client.libp2p.getConnections(miner.peerId).map(c => isRelayed(c) ? 'relayed' : 'direct').sort()).toEqual(['direct', 'relayed'])
    const second = await client.runJob(miner.peerId, job, { timeoutMs: 15_000, onToken: () => { seen = carrier() } })
    expect(second.receiptValid).toBe(true)
    expect(seen).toEqual(['direct'])
  })
})
