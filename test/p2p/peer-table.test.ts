import { describe, it, expect } from 'vitest'
import { Wallet } from 'ethers'
import { PeerTable, buildAdvert, basicHardware, type Advert } from '../../src/p2p/index.js'
import { silentLogger } from '../../src/core/logger.js'

// The peer table answers a gateway's per-request lookup from an index by model (issue 23:
// 10,000 adverts): the index must follow re-adverts, expiry and pruning exactly.
const M1 = '1'.repeat(64)
const M2 = '2'.repeat(64)

function advert (address: string, models: string[], ttlMs = 1000): Advert {
  const node = { address, multiaddrs: () => [] } as never
  const a = buildAdvert(node, { hardware: basicHardware(), models: models.map(id => ({ id, name: id.slice(0, 4), kind: 'llm' as const, contextSize: 512, memoryBytes: 1e9 })) as never, queueDepth: 0, maxJobs: 1, tokensPerSecond: 1, imagesPerSecond: 0, price: 1n, version: 't', paid: false }, 1, ttlMs)
  return a
}

describe('peer table by model', () => {
  it('follows re-adverts, expiry and the size bound', () => {
    let now = 1_000_000
    const t = new PeerTable(null, silentLogger(), { now: () => now, maxMiners: 3 })
    const [a, b, c, d] = Array.from({ length: 4 }, () => Wallet.createRandom().address)
    t.update('pa', advert(a!, [M1, M2]))
    now += 10
    t.update('pb', advert(b!, [M1]))
    expect(t.miners(M1).map(e => e.address)).toEqual([b, a]) // freshest first
    expect(t.miners(M2).map(e => e.address)).toEqual([a])
    // a drops M2: gone from M2's list at once
    now += 10
    t.update('pa', advert(a!, [M1]))
    expect(t.miners(M2)).toEqual([])
    expect(t.miners(M1).map(e => e.address)).toEqual([a, b])
    // expiry: b's advert lives 1 s; a is refreshed just before b expires
    now += 980
    t.update('pa', advert(a!, [M1, M2]))
    now += 20
    expect(t.miners(M1).map(e => e.address)).toEqual([a])
    expect(t.miners().map(e => e.address)).toEqual([a])
    // the bound counts live entries: c and d fit once b was pruned
    t.update('pc', advert(c!, [M2], 5000))
    t.update('pd', advert(d!, [M2], 5000))
    expect(t.miners(M2).map(e => e.address).sort()).toEqual([a, c, d].sort())
    expect(t.miners('3'.repeat(64))).toEqual([])
  })
})
