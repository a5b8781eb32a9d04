import { describe, it, expect, afterEach } from 'vitest'
import { Advertiser, basicHardware, type HeuristNode } from '../../src/p2p/index.js'
import { silentLogger } from '../../src/core/logger.js'
import { testNode, until, stopAll } from './util.js'

const MODEL = { id: 'a'.repeat(64), name: 'tiny', kind: 'llm' as const, contextSize: 512, memoryBytes: 1 << 20 }

describe('mesh over real TCP on 127.0.0.1', () => {
  let nodes: HeuristNode[] = []
  const advertisers: Advertiser[] = []
  afterEach(async () => {
    advertisers.forEach(a => { a.stop() })
    await stopAll(nodes)
    nodes = []
  })

  it('10-node mesh joined through one bootstrap node: every node sees every advert', async () => {
    const boot = await testNode()
    nodes.push(boot)
    const bootAddr = boot.multiaddrs()[0]!
    for (let i = 0; i < 9; i++) nodes.push(await testNode({ bootstrap: [bootAddr] }))
    for (const n of nodes) {
      const a = new Advertiser(n, { intervalMs: 1000, describe: () => ({ hardware: basicHardware(), models: [MODEL], queueDepth: 0, maxJobs: 1, tokensPerSecond: 10, imagesPerSecond: 0, price: 0n, version: 'test', paid: false }) }, silentLogger())
      advertisers.push(a)
      a.start()
    }
    const everyone = new Set(nodes.map(n => n.address.toLowerCase()))
    const allSeen = await until(() => nodes.every(n => {
      const seen = new Set(n.peerTable.miners().map(m => m.address.toLowerCase()))
      // a node hears everyone else's advert (its own is not delivered back to it)
      return [...everyone].every(a => a === n.address.toLowerCase() || seen.has(a))
    }), 30_000, 200)
    expect(allSeen).toBe(true)
    // the adverts carry what the miner said
    const m = nodes[3]!.peerTable.miners(MODEL.id).find(e => e.address === nodes[7]!.address)
    expect(m?.advert.models[0]?.id).toBe(MODEL.id)
    expect(m?.peerId).toBe(nodes[7]!.peerId.toString())
    // nobody's honest advert was rejected
    expect(nodes.reduce((s, n) => s + n.stats.get('heurist/1/capacity', 'reject'), 0)).toBe(0)
  })
})
