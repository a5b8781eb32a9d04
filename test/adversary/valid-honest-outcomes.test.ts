import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { until } from '../p2p/util.js'
import { startNet, type Net } from './valid-fixture.js'

// Finding 7 of issue 16 (honest miners failed or never checked), over the mesh: two honest
// miners with different llama.cpp contexts (256 and 512 tokens) serve jobs at the gateway's
// defaults (temperature 1, top-p 1, top-k 0), many ending on stop strings (text cut before the
// stop string, tokens keeping it) and some ending where the miner's own context ran out. A
// validator with a 1,024-token context checks every job: all are validated, none fails, no
// gateway is blamed, and no collateral moves.
describe('adversary: honest outcomes are never failed', () => {
  let net: Net
  let favoured = 0
  beforeAll(async () => {
    net = await startNet({
      miners: [
        { account: 2, contextSize: 256, serving: () => favoured === 0 },
        { account: 3, contextSize: 512, serving: () => favoured === 1 }
      ],
      validators: [{ account: 4, sampleRate: 1 }],
      validatorContextSize: 1024
    })
  }, 240_000)
  afterAll(async () => { await net?.stop() })

  it('stop strings, default sampling and each miner\'s own context: every job validated, none failed', async () => {
    const chain = net.gatewayChain
    const collateral = async (a: string): Promise<bigint> => await chain.read<bigint>(chain.contracts.nodes, 'collateralOf', [a])
    const c0 = await Promise.all(net.miners.map(async m => await collateral(m.wallet.address)))
    const modelId = net.model.id
    const finishes: string[] = []
    const lengths: number[] = []
    let jobs = 0
    const complete = async (body: Record<string, unknown>, chat: boolean): Promise<void> => {
      const r = await net.post(chat ? '/v1/chat/completions' : '/v1/completions', { model: 'tiny-llama', ...body })
      expect(r.status).toBe(200)
      const j = await r.json() as { choices: Array<{ text?: string, message?: { content: string }, finish_reason: string }>, usage: { completion_tokens: number } }
      const text = j.choices[0]!.text ?? j.choices[0]!.message!.content
      for (const s of (body.stop ?? []) as string[]) expect(text.includes(s)).toBe(false)
      finishes.push(j.choices[0]!.finish_reason)
      lengths.push(j.usage.completion_tokens)
      jobs++
    }
    const stops = [['e'], ['a', 'Z'], ['x', 'q', '7'], ['ab', 'k']]
    for (const m of [0, 1]) {
      favoured = m
      // only miner m advertises the model now: the gateway routes every job to it
      expect(await until(() => { const cs = net.gateway.backend.candidates(modelId); return cs.length === 1 && cs[0]!.address === net.miners[m]!.wallet.address }, 15_000, 100)).toBe(true)
      for (let i = 0; i < stops.length; i++) {
        await complete({ prompt: `miner ${m} job ${i}:`, max_tokens: 64, seed: 10 * m + i, stop: stops[i] }, false)
        await complete({ messages: [{ role: 'user', content: `question ${i}` }], max_tokens: 48, seed: 100 + 10 * m + i, stop: stops[i] }, true)
      }
      // the gateway's default max_tokens (256) on the 256-token miner, and 600 on the 512-token
      // one: both end where their own context runs out
      await complete({ prompt: `long ${m}:`, seed: 7 + m, ...(m === 1 ? { max_tokens: 600 } : {}) }, false)
    }
    const stats = net.validators[0]!.svc.validator.stats
    expect(await until(() => stats.seen === jobs, 20_000)).toBe(true)
    await net.idle()
    expect(stats.sampled).toBe(jobs)
    expect(stats.passed).toBe(jobs)
    expect(stats.failed).toBe(0)
    expect(stats.gatewayBlamed).toBe(0)
    expect(stats.unavailable).toBe(0)
    // the cases the finding is about did happen
    expect(finishes.filter(f => f === 'stop').length).toBeGreaterThanOrEqual(6)
    expect(lengths.at(stops.length * 2)).toBeLessThan(256) // cut by the 256-token context
    expect(lengths.at(-1)).toBeLessThan(512) // cut by the 512-token context
    expect(lengths.at(-1)).toBeGreaterThan(256)
    expect(await Promise.all(net.miners.map(async m => await collateral(m.wallet.address)))).toEqual(c0)
  }, 300_000)
})
