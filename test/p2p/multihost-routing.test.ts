import { describe, it, expect, afterEach } from 'vitest'
import { networkInterfaces } from 'node:os'
import { peerIdFromString } from '@libp2p/peer-id'
import { addrsToShare, PEER_ADDRS_PROTOCOL } from '../../src/p2p/peer-routing.js'
import { withoutLoopback } from '../../src/p2p/reachability.js'
import type { HeuristNode } from '../../src/p2p/index.js'
import { stopAll, testNode, until } from './util.js'

/**
 * Addresses across hosts (issue 22, findings 5 and 9): a peer known only by id is found
 * through the peers we are connected to; loopback is never advertised beside a real address;
 * p2p.announce replaces what is advertised (a /dns4 name included).
 */
const nodes: HeuristNode[] = []
afterEach(async () => { await stopAll(nodes.splice(0)) })

describe('peer routing through the mesh', () => {
  it('a validator bootstrapped to the miner alone reaches the gateway by id (the miner tells it where)', async () => {
    const gateway = await testNode()
    nodes.push(gateway)
    const miner = await testNode({ bootstrap: [gateway.multiaddrs()[0]!] })
    nodes.push(miner)
    expect(await until(() => miner.connectedPeers().includes(gateway.peerId.toString()), 10_000)).toBe(true)
    const validator = await testNode({ bootstrap: [miner.multiaddrs()[0]!] })
    nodes.push(validator)
    expect(await until(() => validator.connectedPeers().includes(miner.peerId.toString()), 10_000)).toBe(true)
    // the validator holds no address for the gateway: without mesh routing this dial fails with
    // "no valid addresses" (finding 9)
    const known = await validator.libp2p.peerStore.get(gateway.peerId).then(p => p.addresses.length).catch(() => 0)
    expect(known).toBe(0)
    const conn = await validator.libp2p.dial(gateway.peerId, { signal: AbortSignal.timeout(10_000) })
    expect(conn.remotePeer.equals(gateway.peerId)).toBe(true)
    // and the protocol is what found it (the miner is asked, the gateway's address comes back)
    expect(validator.libp2p.getProtocols()).toContain(PEER_ADDRS_PROTOCOL)
  }, 40_000)

  it('a peer nobody knows is not found, within the bound', async () => {
    const a = await testNode()
    nodes.push(a)
    const b = await testNode({ bootstrap: [a.multiaddrs()[0]!] })
    nodes.push(b)
    expect(await until(() => b.connectedPeers().length > 0, 10_000)).toBe(true)
    const stranger = peerIdFromString('16Uiu2HAmQ5JrUxPHKqJJqKiGnRZ5tcYEBs9sHaUvuFSCkuGAnTAK')
    const t0 = Date.now()
    await expect(b.libp2p.dial(stranger, { signal: AbortSignal.timeout(15_000) })).rejects.toThrow()
    expect(Date.now() - t0).toBeLessThan(15_000)
  }, 30_000)

  it('loopback addresses are shared only with a peer asking over loopback', () => {
    const known = ['/ip4/127.0.0.1/tcp/4021', '/ip4/10.0.0.5/tcp/4021', '/dns4/gw.example.org/tcp/4021']
    expect(addrsToShare(known, '/ip4/10.0.0.9/tcp/50000')).toEqual(['/ip4/10.0.0.5/tcp/4021', '/dns4/gw.example.org/tcp/4021'])
    expect(addrsToShare(known, '/ip4/127.0.0.1/tcp/50000')).toEqual(known)
    expect(addrsToShare(Array.from({ length: 40 }, (_, i) => `/ip4/10.0.0.${i}/tcp/1`), '/ip4/10.0.0.9/tcp/1')).toHaveLength(16)
  })
})

describe('advertised addresses', () => {
  it('loopback is dropped beside a real address, kept when it is the only one', () => {
    expect(withoutLoopback(['/ip4/127.0.0.1/tcp/4021', '/ip4/10.0.0.5/tcp/4021'])).toEqual(['/ip4/10.0.0.5/tcp/4021'])
    expect(withoutLoopback(['/ip4/127.0.0.1/tcp/4021', '/dns4/m.example.org/tcp/4021'])).toEqual(['/dns4/m.example.org/tcp/4021'])
    expect(withoutLoopback(['/ip4/127.0.0.1/tcp/4021', '/ip6/::1/tcp/4021'])).toEqual(['/ip4/127.0.0.1/tcp/4021', '/ip6/::1/tcp/4021'])
    // a relayed address through a relay on loopback is not a direct loopback address
    const relayed = '/ip4/127.0.0.1/tcp/4001/p2p/16Uiu2HAmQ5JrUxPHKqJJqKiGnRZ5tcYEBs9sHaUvuFSCkuGAnTAK/p2p-circuit'
    expect(withoutLoopback(['/ip4/127.0.0.1/tcp/4021', relayed])).toEqual(['/ip4/127.0.0.1/tcp/4021', relayed])
  })

  const lan = Object.values(networkInterfaces()).flat().find(i => i !== undefined && i.family === 'IPv4' && !i.internal)
  it(`a node on 0.0.0.0 advertises its interface addresses, not 127.0.0.1 (this host: ${lan?.address ?? 'no non-loopback IPv4 interface'})`, async () => {
    if (lan === undefined) throw new Error('this host has no non-loopback IPv4 interface to listen on')
    const n = await testNode({ listen: ['/ip4/0.0.0.0/tcp/0'] })
    nodes.push(n)
    const addrs = n.multiaddrs()
    expect(addrs.some(a => a.startsWith(`/ip4/${lan.address}/tcp/`))).toBe(true)
    expect(addrs.filter(a => a.startsWith('/ip4/127.'))).toEqual([])
  })

  it('p2p.announce replaces the advertised addresses, /dns4 included', async () => {
    const n = await testNode({ announce: ['/dns4/miner.example.org/tcp/4021', '/ip4/203.0.113.7/tcp/4021'] })
    nodes.push(n)
    const addrs = n.multiaddrs().map(a => a.replace(/\/p2p\/[^/]+$/, ''))
    expect(addrs.sort()).toEqual(['/dns4/miner.example.org/tcp/4021', '/ip4/203.0.113.7/tcp/4021'])
  })
})

describe('mesh peer routing is not a DHT', () => {
  it('getClosestPeers throws rather than ending empty (libp2p\'s random walk would spin on an empty answer)', async () => {
    const n = await testNode()
    nodes.push(n)
    const it = n.libp2p.peerRouting.getClosestPeers(new Uint8Array(32))
    await expect((async () => { for await (const _ of it) { /* none */ } })()).rejects.toThrow()
  })
})
