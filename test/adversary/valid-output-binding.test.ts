import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { randomInt } from 'node:crypto'
import sharp from 'sharp'
import { until, testNode } from '../p2p/util.js'
import { identityFromPrivateKey } from '../../src/core/identity.js'
import { pixelSha256, type ModelInfo } from '../../src/inference/index.js'
import { Advertiser, basicHardware, type JobExecutor } from '../../src/p2p/index.js'
import { REASON } from '../../src/validation/index.js'
import { collateralOf, expectOnlyCandidate, expectSlashedOnce, logger, type Net, startNet } from './valid-fixture.js'

// Finding 1 of issue 16 (a cheater makes the gateway take the blame), end to end. Receipts now
// commit to exactly what the client receives (text, token ids, finish reason, context size;
// the delivered PNG's pixel hash), and the gateway checks the delivered output against the
// receipt before paying:
// - a miner that delivers made-up text over honest token ids signs both: the validator fails
//   the miner (not the gateway) and the quorum slashes it, F of its collateral to the wei;
// - a miner that streams one text and signs another is refused by the gateway: not paid, the
//   client's credits untouched;
// - a miner that sends a blank PNG with another image's pixel hash is refused the same way.
const F = 5000n

function madeUp (n: number): string {
  return Array.from({ length: n }, () => String.fromCharCode(randomInt(97, 123))).join('')
}

describe('adversary: outputs are bound to the miner\'s signature', () => {
  let net: Net
  // which miners advertise the model now (the gateway routes only to those)
  let serving = new Set<number>([0, 1, 2, 3])
  beforeAll(async () => {
    net = await startNet({
      miners: [
        // made-up text, streamed as is, signed with the honest token ids
        {
          account: 2,
          serving: () => serving.has(0),
          executor: ({ engine }) => ({
            models: () => engine.loaded(),
            async execute (job, o) {
              if (job.kind !== 'llm') throw new Error('llm only')
              const r = await engine.generate({ modelId: job.modelId, input: job.input, sampling: job.sampling }, { signal: o.signal })
              const text = madeUp(r.text.length + 3)
              o.onToken?.(text, r.tokens.at(-1) ?? 0)
              return { kind: 'llm', result: { ...r, text } }
            }
          })
        },
        // streams made-up text, signs the honest result
        {
          account: 3,
          serving: () => serving.has(1),
          executor: ({ engine }) => ({
            models: () => engine.loaded(),
            async execute (job, o) {
              if (job.kind !== 'llm') throw new Error('llm only')
              const r = await engine.generate({ modelId: job.modelId, input: job.input, sampling: job.sampling }, { signal: o.signal })
              o.onToken?.(madeUp(r.text.length), r.tokens.at(-1) ?? 0)
              return { kind: 'llm', result: r }
            }
          })
        },
        { account: 6, serving: () => serving.has(2) },
        // stops at a quarter of max_tokens and signs a context that would make that a `length` end
        {
          account: 9,
          serving: () => serving.has(3),
          executor: ({ engine }) => ({
            models: () => engine.loaded(),
            async execute (job, o) {
              if (job.kind !== 'llm') throw new Error('llm only')
              const r = await engine.generate({ modelId: job.modelId, input: job.input, sampling: { ...job.sampling, maxTokens: Math.max(1, Math.floor(job.sampling.maxTokens / 4)) } }, { signal: o.signal, onToken: o.onToken })
              const prompt = engine.promptTokens(job.modelId, job.input).tokens.length
              return { kind: 'llm', result: { ...r, finishReason: 'length', contextSize: prompt + r.tokens.length } }
            }
          })
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
  const credits = async (): Promise<bigint> => (await net.gateway.accounts.lookup(net.apiKey))!.credits
  const collateral = async (a: string): Promise<bigint> => await collateralOf(net, a)

  it('made-up text over honest token ids: the validator fails the miner, not the gateway, and it is slashed F', async () => {
    const cheater = net.miners[0]!
    const c0 = await collateral(cheater.wallet.address)
    const honest0 = await collateral(net.miners[2]!.wallet.address)
    await only(0)
    for (let i = 0; i < 3; i++) {
      const r = await net.post('/v1/completions', { model: 'tiny-llama', prompt: `made up ${i}:`, max_tokens: 16, seed: i })
      expect(r.status).toBe(200)
      expect(r.headers.get('x-heurist-miner')).toBe(cheater.node.peerId.toString())
      await r.json()
    }
    await expectSlashedOnce(net, { cheater, before: c0, fBps: F, honest: net.miners[2]!, honestBefore: honest0 })
    const events = await net.gatewayChain.contracts.slashing.queryFilter(net.gatewayChain.contracts.slashing.filters.MinerSlashed!(cheater.wallet.address))
    expect(events.length).toBe(1)
    expect(REASON.inconsistentOutput).toBe(6)
  }, 120_000)

  it('streamed text that is not the signed text: refused, unpaid, the client charged nothing', async () => {
    const liar = net.miners[1]!
    await only(1)
    const before = { credits: await credits(), vouchers: net.vouchers.length }
    const r = await net.post('/v1/completions', { model: 'tiny-llama', prompt: 'streamed lie:', max_tokens: 16, seed: 3 })
    expect(r.status).toBe(502)
    expect(JSON.stringify(await r.json())).toMatch(/streamed text differs from the signed result/)
    expect(liar.vouchers.length).toBe(0)
    expect(net.vouchers.length).toBe(before.vouchers)
    expect(await credits()).toBe(before.credits)

    // streamed to the client: the bytes are out, but the job is not paid and not charged
    const s = await net.post('/v1/completions', { model: 'tiny-llama', prompt: 'streamed lie again:', max_tokens: 16, seed: 4, stream: true })
    expect(s.status).toBe(200)
    const body = await s.text()
    expect(body).toMatch(/miner_failed/)
    expect(body).toMatch(/streamed text differs from the signed result/)
    expect(liar.vouchers.length).toBe(0)
    expect(net.vouchers.length).toBe(before.vouchers)
    expect(await credits()).toBe(before.credits)
  }, 120_000)

  it('a context size the miner does not advertise, signed to excuse a short `length` end: refused, unpaid', async () => {
    const shorter = net.miners[3]!
    await only(3)
    const before = { credits: await credits(), vouchers: net.vouchers.length }
    const r = await net.post('/v1/completions', { model: 'tiny-llama', prompt: 'short:', max_tokens: 32, seed: 5 })
    expect(r.status).toBe(502)
    expect(JSON.stringify(await r.json())).toMatch(/signed context \d+, advertises 1024/)
    expect(shorter.vouchers.length).toBe(0)
    expect(net.vouchers.length).toBe(before.vouchers)
    expect(await credits()).toBe(before.credits)
  }, 120_000)

  it('a blank PNG with another image\'s pixel hash: refused, unpaid, the client charged nothing', async () => {
    const info: ModelInfo = { id: 'c'.repeat(64), name: 'fake-sd', kind: 'image', contextSize: 0, memoryBytes: 1 << 20 }
    const other = new Uint8Array(64 * 64 * 3).fill(200)
    const blank: JobExecutor = {
      models: () => [info],
      async execute (job) {
        if (job.kind !== 'image') throw new Error('image only')
        const { width, height } = job.image
        const png = new Uint8Array(await sharp(new Uint8Array(width * height * 3), { raw: { width, height, channels: 3 } }).png().toBuffer())
        return { kind: 'image', result: { png, pixelSha256: pixelSha256(other), width, height, ms: 1, threads: 1, optimizationLevel: 'basic' } }
      }
    }
    const w = net.account(7)
    await (await net.chainOf(w)).register(BigInt(net.devnet.deployment.params.minCollateral))
    const node = await testNode({ identity: identityFromPrivateKey(w.privateKey), bootstrap: [net.gateway.node.multiaddrs()[0]!] })
    const adv = new Advertiser(node, { intervalMs: 1000, describe: () => ({ hardware: basicHardware(), models: [info], queueDepth: 0, maxJobs: 1, tokensPerSecond: 0, imagesPerSecond: 5, price: 1n, version: 'test', paid: true }) }, logger)
    try {
      await node.serveJobs(blank, { receiptDomain: net.domain })
      adv.start()
      expect(await until(() => net.gateway.backend.candidates(info.id).length === 1, 15_000, 100)).toBe(true)
      const c0 = await credits()
      const v0 = net.vouchers.length
      const r = await net.post('/v1/images/generations', { model: 'fake-sd', prompt: 'a cat', size: '64x64', seed: 1 })
      expect(r.status).toBe(502)
      expect(JSON.stringify(await r.json())).toMatch(/does not decode to the pixels its receipt signs/)
      expect(await credits()).toBe(c0)
      expect(net.vouchers.length).toBe(v0)
    } finally {
      adv.stop()
      await node.stop()
    }
  }, 120_000)
})
