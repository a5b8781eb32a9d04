import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { until } from '../p2p/util.js'
import { cheatingExecutor, REASON } from '../../src/validation/index.js'
import { startNet, type Net } from './valid-fixture.js'

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
  const collateral = async (a: string): Promise<bigint> => await net.gatewayChain.read<bigint>(net.gatewayChain.contracts.nodes, 'collateralOf', [a])
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
    const stats = net.validators[0]!.svc.validator.stats
    expect(await until(() => stats.passed >= 3, 60_000, 100)).toBe(true)
    await net.idle()
    expect(stats.failed).toBe(0)
    expect(stats.gatewayBlamed).toBe(0)
    expect(await collateral(honest.wallet.address)).toBe(c0)
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
    expect(await until(async () => await collateral(cheater.wallet.address) < c0, 60_000, 200)).toBe(true)
    await net.idle()
    const stats = net.validators[0]!.svc.validator.stats
    expect(stats.gatewayBlamed).toBe(0)
    expect(stats.failed).toBeGreaterThan(0)
    expect(stats.slashesSubmitted).toBe(1)
    expect(await collateral(cheater.wallet.address)).toBe(c0 - c0 * F / 10_000n)
    expect(await collateral(net.miners[1]!.wallet.address)).toBe(honest0)
    expect(REASON.embeddingMismatch).toBe(7)
  }, 120_000)
})
