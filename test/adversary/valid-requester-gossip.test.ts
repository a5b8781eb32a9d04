import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { ZeroHash } from 'ethers'
import { until } from '../p2p/util.js'
import { POOL } from '../../src/core/typed-data.js'
import { signReceipt, type HeuristNode } from '../../src/p2p/index.js'
import { cheatingExecutor } from '../../src/validation/index.js'
import { startNet, type Net } from './valid-fixture.js'

// Finding 2 of issue 16 (a cheater gossips its own receipt first), end to end: a miner serving
// random tokens signs and gossips a receipt for each job (requester = the gateway) before the
// gateway gossips the real one. Before, the validator took the first publisher for the gateway,
// asked the cheater for the transcript and got nothing, and the real receipt was dropped as a
// duplicate. Now only the requester's gossip counts: the cheater's is rejected, the real
// receipt reaches the validator, whose transcript comes from the gateway, and the cheater is
// slashed F of its collateral, to the wei.
const F = 5000n

describe('adversary: only the requester speaks for a receipt', () => {
  let net: Net
  let cheaterNode: HeuristNode | null = null
  let front = 0
  beforeAll(async () => {
    net = await startNet({
      miners: [{
        account: 2,
        executor: ({ engine, info, honest }) => {
          const cheat = cheatingExecutor('random-tokens', { llm: engine, images: new Map(), models: [info], honest })
          return {
            models: cheat.models,
            async execute (job, o) {
              const out = await cheat.execute(job, o)
              // first on the topic: a receipt for this job id, "requested" by the gateway
              if (cheaterNode !== null && job.kind === 'llm') {
                const now = BigInt(Math.floor(Date.now() / 1000))
                const signed = await signReceipt(net.miners[0]!.wallet, {
                  jobId: job.jobId, requester: net.gatewayWallet.address, miner: net.miners[0]!.wallet.address, modelId: '0x' + job.modelId, pool: POOL.llm,
                  inputHash: ZeroHash, outputHash: ZeroHash, paramsHash: ZeroHash, computeUnits: 1n, startedAt: now, endedAt: now
                }, net.domain)
                await cheaterNode.publishReceipt({ v: 1, type: 'receipt', signed, chainId: Number(net.domain.chainId), verifyingContract: net.domain.verifyingContract }).then(() => { front++ }, () => {})
              }
              return out
            }
          }
        }
      }],
      validators: [{ account: 4, sampleRate: 1 }]
    })
    cheaterNode = net.miners[0]!.node
  }, 240_000)
  afterAll(async () => { await net?.stop() })

  it('rejects the miner\'s gossip; the gateway\'s receipt is checked and the cheater slashed', async () => {
    const cheater = net.miners[0]!
    const chain = net.gatewayChain
    const collateral = async (): Promise<bigint> => await chain.read<bigint>(chain.contracts.nodes, 'collateralOf', [cheater.wallet.address])
    const c0 = await collateral()
    for (let i = 0; i < 3; i++) {
      const r = await net.post('/v1/completions', { model: 'tiny-llama', prompt: `first ${i}:`, max_tokens: 24, seed: i, top_k: 40 })
      expect(r.status).toBe(200)
      await r.json()
    }
    expect(front).toBe(3)
    expect(await until(async () => await collateral() < c0, 60_000, 200)).toBe(true)
    await net.idle()
    const v = net.validators[0]!
    expect(v.svc.validator.stats.unavailable).toBe(0)
    expect(v.svc.validator.stats.failed).toBeGreaterThan(0)
    // the cheater's receipts were rejected at the gossip layer
    expect(v.node.stats.get('heurist/1/receipts', 'reject', 'P2P_NOT_REQUESTER') + net.gateway.node.stats.get('heurist/1/receipts', 'reject', 'P2P_NOT_REQUESTER')).toBeGreaterThan(0)
    expect(await collateral()).toBe(c0 - c0 * F / 10_000n)
  }, 120_000)
})
