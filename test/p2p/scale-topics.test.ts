import { describe, it, expect, afterEach } from 'vitest'
import { hexlify, randomBytes } from 'ethers'
import { Advertiser, advertKey, basicHardware, buildAdvert, signReceipt, unpaidReceiptDomain, TOPICS, type AdvertContent, type HeuristNode } from '../../src/p2p/index.js'
import { silentLogger } from '../../src/core/logger.js'
import { testNode, until, stopAll } from './util.js'

/**
 * Issue 23: at 10,000 miners a miner cannot take every advert and receipt. A node may leave
 * both topics: its own adverts still reach the gateway (flood publish to subscribed peers),
 * and it hears nobody's. Adverts follow changes, not only the clock.
 */
const content = (over: Partial<AdvertContent> = {}): AdvertContent => ({ hardware: basicHardware(), models: [], queueDepth: 0, maxJobs: 1, tokensPerSecond: 100, imagesPerSecond: 0, price: 1n, version: 'test', paid: false, ...over })

describe('adverts and receipts only where they are used', () => {
  let nodes: HeuristNode[] = []
  let advertisers: Advertiser[] = []
  afterEach(async () => {
    advertisers.forEach(a => { a.stop() })
    await stopAll(nodes)
    nodes = []; advertisers = []
  })

  it('a miner subscribed to neither topic reaches the gateway and hears no advert or receipt; a subscribed miner beside it hears them all', async () => {
    const gw = await testNode(); nodes.push(gw)
    const boot = [gw.multiaddrs()[0]!]
    const quiet = [await testNode({ bootstrap: boot, subscribe: { capacity: false, receipts: false } }), await testNode({ bootstrap: boot, subscribe: { capacity: false, receipts: false } })]
    const full = await testNode({ bootstrap: boot })
    nodes.push(...quiet, full)
    // the gateway sees the others' subscriptions (none for the quiet ones), so the mesh is up
    expect(await until(() => gw.pubsub.getSubscribers(TOPICS.capacity).length === 1 && gw.connectedPeers().length === 3, 20_000, 50)).toBe(true)
    // and each publisher knows the gateway is subscribed (flood publish goes to known subscribers)
    expect(await until(() => [...quiet, full].every(n => n.pubsub.getSubscribers(TOPICS.capacity).some(p => p.equals(gw.peerId))), 20_000, 50)).toBe(true)
    // and the gateway has grafted the subscribed miner into both meshes (it relays to mesh peers)
    expect(await until(() => [TOPICS.capacity, TOPICS.receipts].every(t => gw.pubsub.getMeshPeers(t).includes(full.peerId.toString())), 20_000, 50)).toBe(true)
    expect(quiet.every(q => !q.pubsub.getTopics().includes(TOPICS.capacity) && !q.pubsub.getTopics().includes(TOPICS.receipts))).toBe(true)

    for (const n of [...quiet, full]) await n.publishAdvert(buildAdvert(n, content(), Date.now(), 15_000))
    const all = [...quiet, full].map(n => n.address)
    expect(await until(() => all.every(a => gw.peerTable.get(a) !== undefined), 20_000, 50)).toBe(true)

    // a receipt the gateway (its requester) gossips
    const receipt = { jobId: hexlify(randomBytes(32)), requester: gw.address, miner: quiet[0]!.address, modelId: hexlify(randomBytes(32)), pool: 0, inputHash: hexlify(randomBytes(32)), outputHash: hexlify(randomBytes(32)), paramsHash: hexlify(randomBytes(32)), computeUnits: 5n, startedAt: 1n, endedAt: 2n }
    const signed = await signReceipt(quiet[0]!.identity.wallet, receipt, unpaidReceiptDomain)
    await gw.publishReceipt({ v: 1, type: 'receipt', signed, chainId: 0, verifyingContract: unpaidReceiptDomain.verifyingContract })

    // the subscribed miner hears the two quiet miners' adverts and the receipt (what the quiet ones would hear)
    expect(await until(() => full.peerTable.get(quiet[0]!.address) !== undefined && full.peerTable.get(quiet[1]!.address) !== undefined && full.stats.get(TOPICS.receipts, 'accept') === 1, 20_000, 50)).toBe(true)
    for (const q of quiet) {
      expect(q.peerTable.miners()).toEqual([])
      expect(q.stats.get(TOPICS.capacity, 'accept') + q.stats.get(TOPICS.receipts, 'accept')).toBe(0)
    }
  })

  it('publishes an advert when its content changes, long before the heartbeat', async () => {
    const gw = await testNode(); nodes.push(gw)
    const miner = await testNode({ bootstrap: [gw.multiaddrs()[0]!], subscribe: { capacity: false, receipts: false } }); nodes.push(miner)
    expect(await until(() => gw.connectedPeers().length === 1 && miner.pubsub.getSubscribers(TOPICS.capacity).length === 1, 20_000, 50)).toBe(true)
    let queueDepth = 0
    const heard: number[] = []
    gw.peerTable.onAdvert(e => { if (e.address === miner.address) heard.push(e.advert.queueDepth) })
    const a = new Advertiser(miner, { intervalMs: 600_000, checkMs: 200, describe: () => content({ queueDepth }) }, silentLogger())
    advertisers.push(a)
    a.start()
    expect(await until(() => heard.length === 1, 10_000, 20)).toBe(true)
    queueDepth = 3
    expect(await until(() => heard.length === 2, 10_000, 20)).toBe(true)
    expect(heard).toEqual([0, 3])
    expect(a.published).toEqual({ heartbeat: 0, change: 1 })
  })

  it('counts as news what routing uses, not jitter', () => {
    const base = content({ tokensPerSecond: 100 })
    const addrs = ['/ip4/127.0.0.1/tcp/1']
    const key = advertKey(base, addrs)
    expect(advertKey(content({ tokensPerSecond: 104 }), addrs)).toBe(key) // 4 %: same step
    expect(advertKey({ ...base, hardware: { ...base.hardware, ramBytes: base.hardware.ramBytes + 1 } }, addrs)).toBe(key)
    expect(advertKey(content({ tokensPerSecond: 160 }), addrs)).not.toBe(key)
    expect(advertKey(content({ queueDepth: 1 }), addrs)).not.toBe(key)
    expect(advertKey(content({ maxJobs: 2 }), addrs)).not.toBe(key)
    expect(advertKey(content({ price: 2n }), addrs)).not.toBe(key)
    expect(advertKey(base, ['/ip4/127.0.0.1/tcp/2'])).not.toBe(key)
  })
})
