import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { cheatingExecutor } from '../../src/validation/index.js'
import { collateralOf, expectHonestKept, expectOnlyCandidate, expectSlashedOnce, type Net, startNet } from './valid-fixture.js'

// Issue 16: a miner that cuts jobs short (half the asked tokens) and signs them as a natural
// stop, at the gateway's default sampling (temperature 1, top-p 1, top-k 0). Every end token is
// in the support there, so no job fails the support or end check; what gives it away is where
// the jobs end: tiny-llama almost never draws an end token (q ≈ 1e-13 … 5e-8 per position), so
// each cut job's end p-value (A · q) is tiny, and Fisher's combination fails the miner's window
// within two such jobs. The window's verdict reaches the quorum and the contracts: the cheater
// is slashed once, F of its collateral to the wei; the honest miner keeps all of its own. The
// end statistic alone (Σ 1{end} − q, bound ≈ 17) would need about 17 such jobs.
// The same cut signed as an abort (which validators do not end-check: an aborted job is billed
// for what it made) is refused by the gateway: a cancelled job ends without a result, so a
// result saying 'abort' is one the requester did not ask for. Not paid, the client charged nothing.
const F = 5000n
const JOBS = 4

describe('adversary: a miner that truncates jobs and calls it a natural stop', () => {
  let net: Net
  let serving = new Set<number>([0, 1, 2])
  beforeAll(async () => {
    net = await startNet({
      miners: [
        { account: 2, serving: () => serving.has(0), executor: ({ engine, honest }) => cheatingExecutor('truncate', { llm: engine, images: new Map(), models: engine.loaded(), honest }) },
        { account: 6, serving: () => serving.has(1) },
        // the same cut, signed as an abort
        {
          account: 7,
          serving: () => serving.has(2),
          executor: ({ engine, honest }) => {
            const cut = cheatingExecutor('truncate', { llm: engine, images: new Map(), models: engine.loaded(), honest })
            return { models: () => engine.loaded(), async execute (job, o) { const r = await cut.execute(job, o); return r.kind === 'llm' ? { kind: 'llm', result: { ...r.result, finishReason: 'abort' } } : r } }
          }
        }
      ],
      validators: [{ account: 4, sampleRate: 1 }]
    })
  }, 240_000)
  afterAll(async () => { await net?.stop() })

  const only = async (m: number): Promise<void> => {
    serving = new Set([m])
    await expectOnlyCandidate(net, m)
  }
  // the gateway's default sampling: no temperature, top_p or top_k in the request
  const ask = async (i: number): Promise<{ finish: string, tokens: number, miner: string | null }> => {
    const r = await net.post('/v1/chat/completions', { model: 'tiny-llama', messages: [{ role: 'user', content: `tell me about ${i}` }], max_tokens: 32, seed: i })
    expect(r.status).toBe(200)
    const body = await r.json() as { choices: Array<{ finish_reason: string }>, usage: { completion_tokens: number } }
    return { finish: body.choices[0]!.finish_reason, tokens: body.usage.completion_tokens, miner: r.headers.get('x-heurist-miner') }
  }

  it('the honest miner: every job passes, its collateral untouched', async () => {
    const honest = net.miners[1]!
    const c0 = await collateralOf(net, honest.wallet.address)
    await only(1)
    for (let i = 0; i < 3; i++) {
      const a = await ask(i)
      // tiny-llama never ends on its own before max tokens
      expect(a).toMatchObject({ finish: 'length', tokens: 32 })
    }
    await expectHonestKept(net, { jobs: 3, honest, before: c0 })
    expect(net.validators[0]!.svc.validator.stats.windowsFailed).toBe(0)
  }, 120_000)

  it('the truncating miner: its window fails on where its jobs end, slashed F to the wei; the honest one keeps all', async () => {
    const cheater = net.miners[0]!
    const c0 = await collateralOf(net, cheater.wallet.address)
    const honest0 = await collateralOf(net, net.miners[1]!.wallet.address)
    await only(0)
    for (let i = 10; i < 10 + JOBS; i++) {
      const a = await ask(i)
      // the client got half the tokens it asked for, told it was a natural stop
      expect(a).toEqual({ finish: 'stop', tokens: 16, miner: cheater.node.peerId.toString() })
    }
    await expectSlashedOnce(net, { cheater, before: c0, fBps: F, honest: net.miners[1]!, honestBefore: honest0 })
  }, 120_000)

  it('the same cut signed as an abort: refused by the gateway, unpaid, the client charged nothing, nothing gossiped', async () => {
    const aborter = net.miners[2]!
    const c0 = await collateralOf(net, aborter.wallet.address)
    const credits = async (): Promise<bigint> => (await net.gateway.accounts.lookup(net.apiKey))!.credits
    await only(2)
    const stats = net.validators[0]!.svc.validator.stats
    const before = { credits: await credits(), vouchers: net.vouchers.length, seen: stats.seen }
    for (let i = 20; i < 22; i++) {
      const r = await net.post('/v1/chat/completions', { model: 'tiny-llama', messages: [{ role: 'user', content: `tell me about ${i}` }], max_tokens: 32, seed: i })
      expect(r.status).toBe(502)
      expect(JSON.stringify(await r.json())).toMatch(/the miner reports an abort the requester did not ask for/)
    }
    expect(aborter.vouchers).toEqual([])
    expect(net.vouchers.length).toBe(before.vouchers)
    expect(await credits()).toBe(before.credits)
    await net.idle()
    expect(stats.seen).toBe(before.seen)
    expect(await collateralOf(net, aborter.wallet.address)).toBe(c0)
  }, 120_000)
})
