import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { join } from 'node:path'
import { Wallet, hexlify, randomBytes, ZeroAddress, ZeroHash } from 'ethers'
import { until } from '../p2p/util.js'
import { Store } from '../../src/core/store.js'
import { POOL } from '../../src/core/typed-data.js'
import { signReceipt, TOPICS, type HeuristNode, type SignedReceipt } from '../../src/p2p/index.js'
import { RewardClaimer } from '../../src/rewards/index.js'
import { signVoucher } from '../../src/chain/index.js'
import { whitepaperEpochCap, FLOOR_WEI_PER_UNIT, REDEMPTION_WINDOW_SECONDS } from '../../src/economics/index.js'
import { logger, startNet, type Net } from './valid-fixture.js'

// Finding 6 of issue 16 (blocked epoch), end to end: paying "gateways" gossip receipts for more
// throwaway miner keys (never registered) than one table takes, which used to stop the epoch
// with REWARDS_TOO_MANY_MINERS (no root at all). The case is 4,001 keys against the
// bound of 4,000; signing and checking 4,001 receipts takes minutes on a 2-core test machine,
// so the validator here runs with a bound of 5 (`maxTableMiners`, the same code path) and 6
// throwaway keys. Unregistered keys are now dropped before any bound, and a root whose leaves
// do not fit one gossip message travels in parts (one leaf per message here, so the three
// registered miners' root takes three): the root is posted, the honest miner puts the parts
// back together, claims its leaf and receives exactly that amount.
const EPOCH = 3600n
const BOUND = 5
const THROWAWAY = BOUND + 1

describe('adversary: throwaway miner keys cannot block an epoch', () => {
  let net: Net
  beforeAll(async () => {
    net = await startNet({ accounts: 16, epochSeconds: EPOCH, miners: [{ account: 2 }], validators: [{ account: 4, sampleRate: 0.0001, epochs: true, leavesPerMessage: 1, maxTableMiners: BOUND }] })
  }, 240_000)
  afterAll(async () => { await net?.stop() })

  it('drops the unregistered keys, posts the root in parts, and the honest miner claims its leaf to the wei', async () => {
    const miner = net.miners[0]!
    const store = await Store.open(join(net.dir, 'miner-store'))
    const claimer = new RewardClaimer({ node: miner.node, chain: miner.chain, store, logger, rewardsDir: join(net.dir, 'miner-rewards') }, { pollMs: 250, snapshotFile: null })
    try {
      // two more registered miners, paid by the first attacker: three leaves in all
      const extras = [net.account(13), net.account(14)]
      for (const w of extras) await (await net.chainOf(w)).register(BigInt(net.devnet.deployment.params.minCollateral))
      const publishers: Array<{ w: Wallet, node: HeuristNode }> = []
      for (const i of [8, 9]) {
        const w = net.account(i)
        await (await net.chainOf(w)).deposit(10n ** 18n)
        publishers.push({ w, node: await net.extraNode(i) })
      }
      const v = net.validators[0]!
      expect(await until(() => publishers.every(p => p.node.pubsub.getSubscribers(TOPICS.receipts).length > 0), 30_000)).toBe(true)

      const now = BigInt(Math.floor(Date.now() / 1000))
      const receipt = async (minerKey: Wallet, requester: string, n: number): Promise<SignedReceipt> => await signReceipt(minerKey, {
        jobId: '0x' + n.toString(16).padStart(64, '0'), requester, miner: minerKey.address, modelId: '0x' + net.model.id, pool: POOL.llm,
        inputHash: ZeroHash, outputHash: ZeroHash, paramsHash: ZeroHash, computeUnits: 1000n, startedAt: now - 5n, endedAt: now
      }, net.domain)
      const batches: SignedReceipt[][] = publishers.map(() => [])
      for (let n = 0; n < THROWAWAY; n++) batches[n % publishers.length]!.push(await receipt(new Wallet(hexlify(randomBytes(32))), publishers[n % publishers.length]!.w.address, n))
      for (const [k, w] of extras.entries()) batches[0]!.push(await receipt(w, publishers[0]!.w.address, THROWAWAY + k))
      await Promise.all(publishers.map(async (p, i) => {
        for (const signed of batches[i]!) await p.node.publishReceipt({ v: 1, type: 'receipt', signed, chainId: Number(net.domain.chainId), verifyingContract: net.domain.verifyingContract })
      }))
      // and the honest miner's paid jobs
      for (let i = 0; i < 3; i++) {
        const r = await net.post('/v1/completions', { model: 'tiny-llama', prompt: `honest ${i}:`, max_tokens: 8, seed: i })
        expect(r.status).toBe(200)
        await r.json()
      }
      const filed = THROWAWAY + extras.length + 3
      expect(await until(async () => (await v.epochs!.ledger.entries(0n)).length === filed, 60_000, 250)).toBe(true)
      await claimer.start()
      await net.redeemAll()
      // the attacker pays the two extra registered miners at the floor for their receipts (points are bounded by payment)
      for (const w of extras) {
        const voucher = { payer: publishers[0]!.w.address, miner: w.address, podId: '0x' + '22'.repeat(32), podDeployer: ZeroAddress, podBps: 0, pool: POOL.llm, frontend: ZeroAddress, cumulativeAmount: 1000n * FLOOR_WEI_PER_UNIT.llama }
        await net.gatewayChain.redeemVoucher(voucher, await signVoucher(publishers[0]!.w, net.devnet.deployment, voucher))
      }
      const [llmRevenue] = await net.gatewayChain.read<[bigint, bigint]>(net.gatewayChain.contracts.payments, 'epochRevenue', [0n])

      const before = await net.gatewayChain.read<bigint>(net.gatewayChain.contracts.token, 'balanceOf', [miner.wallet.address])
      await net.devnet.timeTravel(EPOCH + REDEMPTION_WINDOW_SECONDS)
      const emission = net.gatewayChain.contracts.emission
      expect(await until(async () => !/^0x0+$/.test(await net.gatewayChain.read<string>(emission, 'roots', [0n])), 60_000, 200)).toBe(true)
      const rec = v.epochs!.closed().find(r => r.epoch === 0n)!
      expect(rec.parts).toBe(3)
      const registered = [miner.wallet.address, ...extras.map(w => w.address)].sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : 1))
      expect(rec.tree.claims.map(c => c.account)).toEqual(registered)
      // the whole LLM pool goes to the three registered miners (less the allocation's rounding dust)
      const pool = whitepaperEpochCap(llmRevenue, EPOCH).emission
      expect(rec.tree.total).toBeLessThanOrEqual(pool)
      expect(pool - rec.tree.total).toBeLessThan(3n)

      const leaf = rec.tree.claims.find(c => c.account === miner.wallet.address)!
      expect(await until(() => claimer.earnings().some(e => e.epoch === 0n && e.claimed), 30_000, 200)).toBe(true)
      expect(claimer.earnings().find(e => e.epoch === 0n)!.amount).toBe(leaf.amount)
      expect(await net.gatewayChain.read<bigint>(net.gatewayChain.contracts.token, 'balanceOf', [miner.wallet.address]) - before).toBe(leaf.amount)
    } finally {
      await claimer.stop()
      await store.close()
    }
  }, 300_000)
})
