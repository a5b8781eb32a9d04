import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { ZeroAddress, ZeroHash, type Wallet } from 'ethers'
import { until } from '../p2p/util.js'
import { POOL } from '../../src/core/typed-data.js'
import { countersign, receiptHash, signReceipt, TOPICS, type HeuristNode } from '../../src/p2p/index.js'
import { allocate, whitepaperEpochCap, FLOOR_WEI_PER_UNIT, REDEMPTION_WINDOW_SECONDS, WAD } from '../../src/economics/index.js'
import { signVoucher } from '../../src/chain/index.js'
import { startNet, type Net } from './valid-fixture.js'

// Finding 4 of issue 16, organic = paid by a payer unrelated to the miner. A receipt's requester
// funded a deposit, countersigned the units and paid the vouchers, yet it is the miner's own key
// or its owner's: Payments books that revenue as related (no cap rises with it), and the ledger
// now applies the same rule (payoutOf(requester) = payoutOf(miner)), so those receipts earn
// nothing. Three registered miners doing the same measured work: A paid by its own key, B paid
// by its owner's key, C paid by an unrelated gateway. The epoch's root gives C the whole pool,
// to the wei, and A and B no leaf.
const EPOCH = 3600n

describe('adversary: a miner paying for its own jobs (its key or its owner\'s) earns no points', () => {
  let net: Net
  beforeAll(async () => {
    net = await startNet({ epochSeconds: EPOCH, miners: [], validators: [{ account: 4, sampleRate: 0.0001, epochs: true }] })
  }, 240_000)
  afterAll(async () => { await net?.stop() })

  it('related payers earn the miner nothing; the unrelated payer\'s miner gets its exact allocation', async () => {
    const d = net.devnet.deployment
    const [a, b, owner, c, gw] = [net.account(2), net.account(3), net.account(5), net.account(6), net.account(8)]
    await (await net.chainOf(a)).register(BigInt(d.params.minCollateral))
    await (await net.chainOf(b)).register(BigInt(d.params.minCollateral), owner.address)
    await (await net.chainOf(c)).register(BigInt(d.params.minCollateral))
    const v = net.validators[0]!
    const payers: Array<{ payer: Wallet, account: number, miner: Wallet, node?: HeuristNode }> = [
      { payer: a, account: 2, miner: a }, { payer: owner, account: 5, miner: b }, { payer: gw, account: 8, miner: c }
    ]
    for (const p of payers) {
      await (await net.chainOf(p.payer)).deposit(10n * WAD)
      const node = await net.extraNode(p.account)
      p.node = node
      expect(await until(() => node.pubsub.getSubscribers(TOPICS.receipts).some(x => x.equals(v.node.peerId)), 30_000)).toBe(true)
    }

    const now = BigInt(Math.floor(Date.now() / 1000))
    const measured = 1000n
    let n = 0
    for (const p of payers) {
      for (let i = 0; i < 3; i++) {
        const signed = await signReceipt(p.miner, {
          jobId: '0x' + (++n).toString(16).padStart(64, '0'), requester: p.payer.address, miner: p.miner.address, modelId: '0x' + net.model.id, pool: POOL.llm,
          inputHash: ZeroHash, outputHash: ZeroHash, paramsHash: ZeroHash, computeUnits: measured, startedAt: now - 5n, endedAt: now
        }, net.domain)
        const rh = receiptHash(signed, net.domain)
        await p.node!.publishReceipt({ v: 1, type: 'receipt', signed, chainId: Number(net.domain.chainId), verifyingContract: net.domain.verifyingContract, measured: { units: measured.toString(), signature: countersign(p.payer, rh, measured) } })
      }
      // each payer pays its miner for the three jobs at the floor price, in this epoch's window
      const voucher = { payer: p.payer.address, miner: p.miner.address, podId: '0x' + '22'.repeat(32), podDeployer: ZeroAddress, podBps: 0, pool: POOL.llm, frontend: ZeroAddress, cumulativeAmount: 3n * measured * FLOOR_WEI_PER_UNIT.llama }
      await (await net.chainOf(p.miner)).redeemVoucher(voucher, await signVoucher(p.payer, d, voucher))
    }
    expect(await until(async () => (await v.epochs!.ledger.entries(0n)).length === 9, 30_000)).toBe(true)

    // the contract's own view: A's and B's revenue was between related parties, C's was organic
    const gwChain = await net.chainOf(gw)
    const [related] = await gwChain.read<[bigint, bigint]>(gwChain.contracts.payments, 'epochRelatedRevenue', [0n])
    expect(related).toBe(2n * 3n * measured * FLOOR_WEI_PER_UNIT.llama)
    const [llmRevenue] = await gwChain.read<[bigint, bigint]>(gwChain.contracts.payments, 'epochRevenue', [0n])
    expect(llmRevenue).toBe(3n * measured * FLOOR_WEI_PER_UNIT.llama)

    await net.devnet.timeTravel(EPOCH + REDEMPTION_WINDOW_SECONDS)
    expect(await until(async () => !/^0x0+$/.test(await gwChain.read<string>(gwChain.contracts.emission, 'roots', [0n])), 60_000, 200)).toBe(true)
    const tree = v.epochs!.closed().find(r => r.epoch === 0n)!.tree
    const pool = whitepaperEpochCap(llmRevenue, EPOCH).emission
    const expected = allocate(pool, [{ id: 'c', points: 3n * measured, multiplierWad: WAD }])
    const leaf = (w: Wallet): bigint | undefined => tree.claims.find(x => x.account === w.address)?.amount
    expect(leaf(c)).toBe(expected.payouts[0]!.amount)
    expect(leaf(a)).toBeUndefined()
    expect(leaf(b)).toBeUndefined()
    expect(leaf(owner)).toBeUndefined()
  }, 240_000)
})
