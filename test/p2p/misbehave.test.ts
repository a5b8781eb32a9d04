import { describe, it, expect, afterAll } from 'vitest'
import { Wallet } from 'ethers'
import {
  Advertiser, PROTOCOL_VERSION, TOPICS, basicHardware, buildAdvert, encodeMessage, signReceipt,
  type HeuristNode, type AdvertContent
} from '../../src/p2p/index.js'
import { silentLogger } from '../../src/core/logger.js'
import { testNode, until, stopAll } from './util.js'

const content = (): AdvertContent => ({ hardware: basicHardware(), models: [{ id: 'd'.repeat(64), name: 'm', kind: 'llm', contextSize: 128, memoryBytes: 1 }], queueDepth: 0, maxJobs: 1, tokensPerSecond: 1, imagesPerSecond: 0, price: 0n, version: 't', paid: false })
const GRAYLIST = -80

describe('a misbehaving peer on gossip', () => {
  const nodes: HeuristNode[] = []
  const advertisers: Advertiser[] = []
  afterAll(async () => { advertisers.forEach(a => { a.stop() }); await stopAll(nodes) })

  it('is rejected message by message with typed codes, falls below the graylist threshold, and honest adverts keep flowing', async () => {
    const honest: HeuristNode[] = []
    for (let i = 0; i < 4; i++) honest.push(await testNode(i === 0 ? {} : { bootstrap: [honest[0]!.multiaddrs()[0]!] }))
    nodes.push(...honest)
    const evil = await testNode({ bootstrap: [honest[0]!.multiaddrs()[0]!] })
    nodes.push(evil)
    for (const h of honest) await evil.dial(h.multiaddrs()[0]!)
    // the evil node needs the honest nodes in its topic mesh to publish to them
    expect(await until(() => evil.pubsub.getSubscribers(TOPICS.capacity).length >= 4 && honest.every(h => h.pubsub.getSubscribers(TOPICS.capacity).some(p => p.equals(evil.peerId))), 10_000)).toBe(true)

    const enc = new TextEncoder()
    const validAdvert = (seq: number): ReturnType<typeof buildAdvert> => buildAdvert(evil, content(), seq, 15_000)
    // 1. malformed bytes, 2. wrong version, 3. oversized, 4. schema, 5. advert for another operator (a forged identity)
    await evil.publish(TOPICS.capacity, new Uint8Array([0xc3, 0x28, 0xff]))
    await evil.publish(TOPICS.capacity, encodeMessage({ ...validAdvert(1), v: PROTOCOL_VERSION + 1 }))
    await evil.publish(TOPICS.capacity, enc.encode(JSON.stringify({ ...validAdvert(2), pad: 'x'.repeat(20_000) })))
    await evil.publish(TOPICS.capacity, encodeMessage({ ...validAdvert(3), queueDepth: -1 }))
    await evil.publish(TOPICS.capacity, encodeMessage({ ...validAdvert(4), operator: honest[1]!.address }))
    // 6. a receipt signed by someone other than the miner it names
    const other = Wallet.createRandom()
    const signed = await signReceipt(other, { jobId: '0x' + '1'.repeat(64), requester: evil.address, miner: honest[2]!.address, modelId: '0x' + 'd'.repeat(64), pool: 0, inputHash: '0x' + '2'.repeat(64), outputHash: '0x' + '3'.repeat(64), paramsHash: '0x' + '4'.repeat(64), computeUnits: 5n, startedAt: 1n, endedAt: 2n })
    await evil.publish(TOPICS.receipts, encodeMessage({ v: 1, type: 'receipt', signed, chainId: 0, verifyingContract: '0x0000000000000000000000000000000000000000' }))
    // 7. a flood of otherwise valid adverts
    for (let i = 0; i < 20; i++) await evil.publish(TOPICS.capacity, encodeMessage(validAdvert(100 + i)))

    const rejected = (code: string, topic: string = TOPICS.capacity): number => honest.reduce((s, h) => s + h.stats.get(topic, 'reject', code), 0)
    expect(await until(() => rejected('P2P_RATE_LIMITED') >= 4, 10_000)).toBe(true)
    for (const code of ['P2P_MALFORMED', 'P2P_BAD_VERSION', 'P2P_MESSAGE_TOO_LARGE', 'P2P_SCHEMA', 'P2P_OPERATOR_MISMATCH']) expect(rejected(code), code).toBeGreaterThan(0)
    expect(rejected('P2P_BAD_SIGNATURE', TOPICS.receipts)).toBeGreaterThan(0)
    // no honest node believes the forged advert: honest[1]'s entry (if any) is its own
    for (const h of honest) expect(h.peerTable.get(honest[1]!.address)?.peerId ?? honest[1]!.peerId.toString()).toBe(honest[1]!.peerId.toString())

    // every honest node now scores the liar below the graylist threshold
    const evilId = evil.peerId.toString()
    expect(await until(() => honest.every(h => h.score(evilId) < GRAYLIST), 10_000)).toBe(true)

    // honest traffic goes on: every honest node hears every other honest node's advert
    for (const h of honest) {
      const a = new Advertiser(h, { intervalMs: 1000, describe: content }, silentLogger())
      advertisers.push(a)
      a.start()
    }
    const ok = await until(() => honest.every(h => honest.every(o => o === h || h.peerTable.get(o.address) !== undefined)), 15_000, 100)
    expect(ok).toBe(true)
    expect(honest.every(h => h.score(honest[0]!.peerId.toString()) >= 0 || h === honest[0])).toBe(true)
  })
})
