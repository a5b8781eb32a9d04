import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { ZeroAddress, ZeroHash, type Wallet } from 'ethers'
import { until } from '../p2p/util.js'
import { POOL } from '../../src/core/typed-data.js'
import { countersign, receiptHash, signReceipt, TOPICS, type HeuristNode } from '../../src/p2p/index.js'
import { allocate, whitepaperEpochCap, FLOOR_WEI_PER_UNIT, REDEMPTION_WINDOW_SECONDS, WAD } from '../../src/economics/index.js'
import { signVoucher } from '../../src/chain/index.js'
import { startNet, type Net } from './valid-fixture.js'

// Finding 4 of issue 16, the part measured units left open: a registered miner whose operator
// also runs "gateway" keys (unrelated payout addresses, small deposits) countersigns any number
// of units for its own receipts. Now a (requester, miner, pool) triple earns at most the units
// its requester's redemptions to the miner in Payments bought at the protocol floor price,
// within the epoch's redemption window. Miner A's operator runs three sybil gateways, each
// countersigning 100× the units of the real work: G1 pays A at the floor for the real work,
// G2 pays 1 wei per countersigned unit, G3 pays nothing. Miner B does the same real work for an
// honest gateway H paying `heurist up`'s default price (1 gwei per unit). A earns exactly what
// G1's payment buys; B its share of the pool from the whitepaper's formulas, to the wei.
const EPOCH = 3600n
const UP_DEFAULT_PRICE = 1_000_000_000n

describe('adversary: points are bounded by what the requester paid the miner in Payments', () => {
  let net: Net
  beforeAll(async () => {
    net = await startNet({ epochSeconds: EPOCH, miners: [], validators: [{ account: 4, sampleRate: 0.0001, epochs: true }] })
  }, 240_000)
  afterAll(async () => { await net?.stop() })

  it('a sybil gateway countersigning 100× the units earns its miner only what it paid', async () => {
    const d = net.devnet.deployment
    const [a, b] = [net.account(2), net.account(3)]
    for (const w of [a, b]) await (await net.chainOf(w)).register(BigInt(d.params.minCollateral))
    const v = net.validators[0]!
    const real = 1000n // units of real work per job
    const jobs = 3n
    // G1 pays A at the floor for the real work; G2 1 wei per countersigned unit; G3 nothing; H pays B at up's default price
    const payers: Array<{ account: number, miner: Wallet, units: bigint, pays: bigint, deposit: bigint, w?: Wallet, node?: HeuristNode }> = [
      { account: 9, miner: a, units: 100n * real, pays: jobs * real * FLOOR_WEI_PER_UNIT.llama, deposit: 10n ** 16n },
      { account: 10, miner: a, units: 100n * real, pays: jobs * 100n * real, deposit: 10n ** 6n },
      { account: 11, miner: a, units: 100n * real, pays: 0n, deposit: 1n },
      { account: 8, miner: b, units: real, pays: jobs * real * UP_DEFAULT_PRICE, deposit: 10n * WAD }
    ]
    for (const p of payers) {
      p.w = net.account(p.account)
      await (await net.chainOf(p.w)).deposit(p.deposit)
      const node = await net.extraNode(p.account)
      p.node = node
      expect(await until(() => node.pubsub.getSubscribers(TOPICS.receipts).some(x => x.equals(v.node.peerId)), 30_000)).toBe(true)
    }

    const now = BigInt(Math.floor(Date.now() / 1000))
    let n = 0
    for (const p of payers) {
      for (let i = 0n; i < jobs; i++) {
        const signed = await signReceipt(p.miner, {
          jobId: '0x' + (++n).toString(16).padStart(64, '0'), requester: p.w!.address, miner: p.miner.address, modelId: '0x' + net.model.id, pool: POOL.llm,
          inputHash: ZeroHash, outputHash: ZeroHash, paramsHash: ZeroHash, computeUnits: p.units, startedAt: now - 5n, endedAt: now
        }, net.domain)
        const rh = receiptHash(signed, net.domain)
        await p.node!.publishReceipt({ v: 1, type: 'receipt', signed, chainId: Number(net.domain.chainId), verifyingContract: net.domain.verifyingContract, measured: { units: p.units.toString(), signature: countersign(p.w!, rh, p.units) } })
      }
      if (p.pays === 0n) continue
      // redeemed in this epoch, inside its window
      const voucher = { payer: p.w!.address, miner: p.miner.address, podId: '0x' + '22'.repeat(32), podDeployer: ZeroAddress, podBps: 0, pool: POOL.llm, frontend: ZeroAddress, cumulativeAmount: p.pays }
      await (await net.chainOf(p.miner)).redeemVoucher(voucher, await signVoucher(p.w!, d, voucher))
    }
    expect(await until(async () => (await v.epochs!.ledger.entries(0n)).length === 12, 30_000)).toBe(true)

    // the contract's view: every payment was organic (the sybils' payouts are not A's)
    const hChain = await net.chainOf(net.account(8))
    const [llmRevenue] = await hChain.read<[bigint, bigint]>(hChain.contracts.payments, 'epochRevenue', [0n])
    expect(llmRevenue).toBe(payers.reduce((s, p) => s + p.pays, 0n))
    const [related] = await hChain.read<[bigint, bigint]>(hChain.contracts.payments, 'epochRelatedRevenue', [0n])
    expect(related).toBe(0n)

    await net.devnet.timeTravel(EPOCH + REDEMPTION_WINDOW_SECONDS)
    expect(await until(async () => await hChain.read<boolean>(hChain.contracts.emission, 'posted', [0n]), 60_000, 200)).toBe(true)
    const rec = v.epochs!.closed().find(r => r.epoch === 0n)!
    const tree = rec.tree
    // A: G1's payment buys the real work's 3,000 units; G2's 300,000 wei buy none; G3 paid nothing
    const pool = whitepaperEpochCap(llmRevenue, EPOCH).emission
    const points = [{ w: a, points: jobs * real }, { w: b, points: jobs * real }].sort((x, y) => (BigInt(x.w.address) < BigInt(y.w.address) ? -1 : 1))
    const expected = allocate(pool, points.map(p => ({ id: p.w.address, points: p.points, multiplierWad: WAD })))
    const leaf = (w: Wallet): bigint | undefined => tree.claims.find(c => c.account === w.address)?.amount
    for (const [i, p] of points.entries()) expect(leaf(p.w)).toBe(expected.payouts[i]!.amount)
    expect(leaf(a)! + leaf(b)!).toBeLessThanOrEqual(pool)
    // the ledger's own view: A's sybil units above its payments are not earned
    expect(rec.table.pools.find(p => p.pool === 'llama')!.payouts.map(p => [p.operator, p.points])).toEqual(points.map(p => [p.w.address, p.points]))
  }, 240_000)
})
