import { describe, it, expect, afterAll } from 'vitest'
import { TOPICS, advertGpus, basicHardware, buildAdvert, encodeMessage, type AdvertContent, type HeuristNode } from '../../src/p2p/index.js'
import { testNode, stopAll, until } from './util.js'

const GiB = 1024 ** 3
const a = 'a'.repeat(64)
const b = 'b'.repeat(64)
const content = (gpus?: AdvertContent['gpus']): AdvertContent => ({
  hardware: basicHardware(),
  models: [{ id: a, name: 'llm-a', kind: 'llm', contextSize: 4096, memoryBytes: GiB }, { id: b, name: 'sd', kind: 'image', contextSize: 0, memoryBytes: GiB }],
  queueDepth: 0, maxJobs: 2, tokensPerSecond: 1, imagesPerSecond: 0, price: 0n, version: 't', paid: false,
  ...(gpus === undefined ? {} : { gpus })
})

describe('several GPUs under one identity: per-GPU capacity in adverts', () => {
  it('maps each GPU\'s placed models to indices into the advert\'s models, bounded, and drops ids the advert does not carry', () => {
    const gpus = advertGpus([
      { index: 0, name: 'H100', vramTotal: 80 * GiB, vramFree: 79 * GiB, budgetFree: 60 * GiB, modelIds: [b, 'c'.repeat(64)] },
      { index: 1, name: 'H100', vramTotal: 80 * GiB, vramFree: 79 * GiB, budgetFree: 90 * GiB, modelIds: [a, a] }
    ], content().models)
    expect(gpus).toEqual([
      { name: 'H100', vramTotal: 80 * GiB, vramFree: 79 * GiB, index: 0, budgetFree: 60 * GiB, models: [1] },
      // a budget over the GPU's memory is clamped; a model listed twice once
      { name: 'H100', vramTotal: 80 * GiB, vramFree: 79 * GiB, index: 1, budgetFree: 80 * GiB, models: [0] }
    ])
  })

  const nodes: HeuristNode[] = []
  afterAll(async () => { await stopAll(nodes) })

  it('a receiver keeps per-GPU capacity, still reads adverts without it, and rejects one whose GPUs name models the advert lacks', async () => {
    const rx = await testNode()
    const miner = await testNode({ bootstrap: [rx.multiaddrs()[0]!] })
    const old = await testNode({ bootstrap: [rx.multiaddrs()[0]!] })
    const liar = await testNode({ bootstrap: [rx.multiaddrs()[0]!] })
    nodes.push(rx, miner, old, liar)
    for (const n of [miner, old, liar]) await n.dial(rx.multiaddrs()[0]!)
    expect(await until(() => [miner, old, liar].every(n => n.pubsub.getSubscribers(TOPICS.capacity).some(p => p.equals(rx.peerId))), 10_000)).toBe(true)

    const twoGpus = [
      { index: 0, name: 'GPU-0', vramTotal: 24 * GiB, vramFree: 23 * GiB, budgetFree: 10 * GiB, modelIds: [a] },
      { index: 1, name: 'GPU-1', vramTotal: 24 * GiB, vramFree: 23 * GiB, budgetFree: 20 * GiB, modelIds: [b] }
    ]
    await miner.publish(TOPICS.capacity, encodeMessage(buildAdvert(miner, content(twoGpus), Date.now(), 15_000)))
    // an advert as nodes wrote them before per-GPU capacity
    await old.publish(TOPICS.capacity, encodeMessage(buildAdvert(old, { ...content(), hardware: { gpus: [{ name: 'GPU', vramTotal: 8 * GiB, vramFree: 8 * GiB }], cpuCores: 4, ramBytes: 16 * GiB } }, Date.now(), 15_000)))
    const bad = buildAdvert(liar, content(), Date.now(), 15_000)
    await liar.publish(TOPICS.capacity, encodeMessage({ ...bad, hardware: { ...bad.hardware, gpus: [{ name: 'GPU', vramTotal: GiB, vramFree: GiB, index: 0, budgetFree: 0, models: [5] }] } }))

    expect(await until(() => rx.peerTable.get(miner.address) !== undefined && rx.peerTable.get(old.address) !== undefined, 10_000)).toBe(true)
    expect(rx.peerTable.get(miner.address)!.advert.hardware.gpus).toEqual([
      { name: 'GPU-0', vramTotal: 24 * GiB, vramFree: 23 * GiB, index: 0, budgetFree: 10 * GiB, models: [0] },
      { name: 'GPU-1', vramTotal: 24 * GiB, vramFree: 23 * GiB, index: 1, budgetFree: 20 * GiB, models: [1] }
    ])
    expect(rx.peerTable.get(old.address)!.advert.hardware.gpus).toEqual([{ name: 'GPU', vramTotal: 8 * GiB, vramFree: 8 * GiB }])
    expect(await until(() => rx.stats.get(TOPICS.capacity, 'reject', 'P2P_BAD_ADVERT') > 0, 10_000)).toBe(true)
    expect(rx.peerTable.get(liar.address)).toBeUndefined()
  })
})
