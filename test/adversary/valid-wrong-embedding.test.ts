import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { until } from '../p2p/util.js'
import { cheatingExecutor, REASON } from '../../src/validation/index.js'
import { collateralOf, expectHonestKept, expectSlashedOnce, startNet, type Net } from './valid-fixture.js'

// Issue 18: a miner that answers embedding jobs with another model's vectors (a cheaper model
// of the same dimension) under the claimed model's id. The receipt's output hash covers the
// vectors; the validator re-embeds the inputs with the claimed model and the cosine falls far
// below 0.99: the job fails alone and the quorum slashes the miner F of its collateral, to
// the wei. An honest miner's embedding jobs all pass and it keeps all of its collateral.
const F = 5000n

describe('adversary: a miner that serves another model\'s embeddings', () => {
  let net: Net
  let serving = new Set<number>([0, 1])
  beforeAll(async () => {
    net = await startNet({
      embed: true,
      miners: [
        { account: 2, serving: () => serving.has(0), executor: ({ engine, honest }) => cheatingExecutor('wrong-embedding', { llm: engine, images: new Map(), models: engine.loaded(), honest }) },
        { account: 6, serving: () => serving.has(1) }
      ],
      validators: [{ account: 4, sampleRate: 1 }]
    })
  }, 240_000)
  afterAll(async () => { await net?.stop() })

  const only = async (m: number): Promise<void> => {
    serving = new Set([m])
    expect(await until(() => net.gateway.backend.models().some(x => x.name === 'tiny-embed') && net.gateway.backend.candidates(net.gateway.backend.models().find(x => x.name === 'tiny-embed')!.id).every(c => c.address === net.miners[m]!.wallet.address), 15_000, 100)).toBe(true)
  }
  const collateral = async (a: string): Promise<bigint> => await collateralOf(net, a)
  const ask = async (i: number): Promise<Response> => await net.post('/v1/embeddings', { model: 'tiny-embed', input: [`first text ${i}`, `second text ${i}`] })

  it('the honest miner: every embedding job passes, its collateral untouched', async () => {
    const honest = net.miners[1]!
    const c0 = await collateral(honest.wallet.address)
    await only(1)
    for (let i = 0; i < 3; i++) {
      const r = await ask(i)
      expect(r.status).toBe(200)
      expect(((await r.json()) as { data: unknown[] }).data).toHaveLength(2)
    }
    await expectHonestKept(net, { jobs: 3, honest, before: c0 })
  }, 120_000)

  it('the cheater: failed for an embedding mismatch and slashed F to the wei; the honest one keeps all', async () => {
    const cheater = net.miners[0]!
    const c0 = await collateral(cheater.wallet.address)
    const honest0 = await collateral(net.miners[1]!.wallet.address)
    await only(0)
    for (let i = 10; i < 13; i++) {
      const r = await ask(i)
      expect(r.status).toBe(200)
      expect(r.headers.get('x-heurist-miner')).toBe(cheater.node.peerId.toString())
      await r.json()
    }
    await expectSlashedOnce(net, { cheater, before: c0, fBps: F, honest: net.miners[1]!, honestBefore: honest0 })
    expect(REASON.embeddingMismatch).toBe(7)
  }, 120_000)
})
