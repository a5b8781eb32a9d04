import { describe, it, expect, afterEach } from 'vitest'
import { TopicValidatorResult } from '@libp2p/gossipsub'
import { basicHardware, buildAdvert, TOPICS, type HeuristNode } from '../../src/p2p/index.js'
import { testNode, until, stopAll } from '../p2p/util.js'

/**
 * Advert censorship (issue 23): a miner that leaves the adverts topic (p2p.subscribeAdverts =
 * false) no longer relays through other miners; its adverts reach the network only through the
 * subscribed peers it is connected to (gateways, validators: its bootstrap list). One of them
 * drops every advert it gets (a gateway keeping a miner from its competitors). Flood publish
 * sends the advert to every connected subscriber, so one honest relay is enough: the other
 * gateway, not connected to the miner, still hears it.
 */
describe('adversary: a relay drops a quiet miner\'s adverts', () => {
  let nodes: HeuristNode[] = []
  afterEach(async () => { await stopAll(nodes); nodes = [] })

  it('the advert reaches a gateway through the one honest relay', async () => {
    const censor = await testNode()
    let dropped = 0
    // subscribed like an honest gateway, but ignores (so never forwards) every advert
    censor.pubsub.topicValidators.set(TOPICS.capacity, () => { dropped++; return TopicValidatorResult.Ignore })
    const honest = await testNode()
    nodes.push(censor, honest)
    const relays = [censor.multiaddrs()[0]!, honest.multiaddrs()[0]!]
    const gateway = await testNode({ bootstrap: relays })
    const miner = await testNode({ bootstrap: relays, subscribe: { capacity: false, receipts: false } })
    nodes.push(gateway, miner)
    // the miner knows both relays take adverts; the honest relay has the gateway in its mesh
    expect(await until(() => [censor, honest].every(r => miner.pubsub.getSubscribers(TOPICS.capacity).some(p => p.equals(r.peerId))), 20_000, 50)).toBe(true)
    expect(await until(() => honest.pubsub.getMeshPeers(TOPICS.capacity).includes(gateway.peerId.toString()), 20_000, 50)).toBe(true)
    expect(miner.connectedPeers()).not.toContain(gateway.peerId.toString())

    await miner.publishAdvert(buildAdvert(miner, { hardware: basicHardware(), models: [], queueDepth: 0, maxJobs: 1, tokensPerSecond: 10, imagesPerSecond: 0, price: 1n, version: 'test', paid: false }, Date.now(), 15_000))
    expect(await until(() => gateway.peerTable.get(miner.address) !== undefined && dropped >= 1, 20_000, 50)).toBe(true)
    // the censor got it and dropped it; the gateway heard it from the honest relay
    expect(censor.peerTable.get(miner.address)).toBeUndefined()
    expect(gateway.peerTable.get(miner.address)?.peerId).toBe(miner.peerId.toString())
  })
})
