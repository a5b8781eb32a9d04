import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { ZeroHash, type Wallet } from 'ethers'
import { until } from '../p2p/util.js'
import { POOL } from '../../src/core/typed-data.js'
import { countersign, receiptHash, signReceipt, TOPICS, type HeuristNode, type SignedReceipt } from '../../src/p2p/index.js'
import { allocate, whitepaperEpochCap, FLOOR_WEI_PER_UNIT, REDEMPTION_WINDOW_SECONDS, WAD } from '../../src/economics/index.js'
import { signVoucher } from '../../src/chain/index.js'
import { startNet, type Net } from './valid-fixture.js'

// Finding 4 of issue 16 (forged points), the part this branch closes: points came from the
// miner's own signed compute units. Now the requester countersigns the units it measured in
// the receipt's gossip message (a countersignature by anyone else is rejected on the topic),
// and a receipt earns at most those. Two registered miners, the same paying gateway, the same
// measured work; miner A signs nine times the units. The epoch's root splits the pool by the
// measured units: A gains nothing by its claim, B loses nothing, to the wei.
// A colluding gateway that countersigns whatever its miner claims is bounded by what it paid
// the miner in Payments: valid-paid-points. Here both are paid at the floor price per unit.
const EPOCH = 3600n

describe('adversary: points follow the units the requester measured, not the miner\'s claim', () => {
  let net: Net
  beforeAll(async () => {
    net = await startNet({ epochSeconds: EPOCH, miners: [], validators: [{ account: 4, sampleRate: 0.0001, epochs: true }] })
  }, 240_000)
  afterAll(async () => { await net?.stop() })

  it('a miner claiming nine times the measured units gets the same share as one claiming them', async () => {
    const d = net.devnet.deployment
    const [a, b] = [net.account(2), net.account(3)]
    for (const w of [a, b]) await (await net.chainOf(w)).register(BigInt(d.params.minCollateral))
    const gw = net.account(8)
    const gwChain = await net.chainOf(gw)
    await gwChain.deposit(10n * WAD)
    const node: HeuristNode = await net.extraNode(8)
    const v = net.validators[0]!
    expect(await until(() => node.pubsub.getSubscribers(TOPICS.receipts).some(p => p.equals(v.node.peerId)), 30_000)).toBe(true)

    const now = BigInt(Math.floor(Date.now() / 1000))
    const measured = 1000n
    let n = 0
    const publish = async (miner: Wallet, claimed: bigint): Promise<SignedReceipt> => {
      const signed = await signReceipt(miner, {
        jobId: '0x' + (++n).toString(16).padStart(64, '0'), requester: gw.address, miner: miner.address, modelId: '0x' + net.model.id, pool: POOL.llm,
        inputHash: ZeroHash, outputHash: ZeroHash, paramsHash: ZeroHash, computeUnits: claimed, startedAt: now - 5n, endedAt: now
      }, net.domain)
      const rh = receiptHash(signed, net.domain)
      await node.publishReceipt({ v: 1, type: 'receipt', signed, chainId: Number(net.domain.chainId), verifyingContract: net.domain.verifyingContract, measured: { units: measured.toString(), signature: countersign(gw, rh, measured) } })
      return signed
    }
    for (let i = 0; i < 3; i++) { await publish(a, 9n * measured); await publish(b, measured) }
    expect(await until(async () => (await v.epochs!.ledger.entries(0n)).length === 6, 30_000)).toBe(true)

    // both were paid the same for the same measured work, in this epoch
    for (const w of [a, b]) {
      const voucher = { payer: gw.address, miner: w.address, podId: '0x' + '22'.repeat(32), podDeployer: '0x0000000000000000000000000000000000000000', podBps: 0, pool: POOL.llm, frontend: '0x0000000000000000000000000000000000000000', cumulativeAmount: 3n * measured * FLOOR_WEI_PER_UNIT.llama }
      await (await net.chainOf(w)).redeemVoucher(voucher, await signVoucher(gw, d, voucher))
    }
    const [llmRevenue] = await gwChain.read<[bigint, bigint]>(gwChain.contracts.payments, 'epochRevenue', [0n])
    await net.devnet.timeTravel(EPOCH + REDEMPTION_WINDOW_SECONDS)
    expect(await until(async () => !/^0x0+$/.test(await gwChain.read<string>(gwChain.contracts.emission, 'roots', [0n])), 60_000, 200)).toBe(true)
    const tree = v.epochs!.closed().find(r => r.epoch === 0n)!.tree
    const pool = whitepaperEpochCap(llmRevenue, EPOCH).emission
    const expected = allocate(pool, [{ id: 'a', points: 3n * measured, multiplierWad: WAD }, { id: 'b', points: 3n * measured, multiplierWad: WAD }])
    const leaf = (w: Wallet): bigint | undefined => tree.claims.find(c => c.account === w.address)?.amount
    expect(leaf(a)).toBe(expected.payouts[0]!.amount)
    expect(leaf(b)).toBe(expected.payouts[1]!.amount)
    expect(leaf(a)).toBe(leaf(b))
  }, 240_000)
})
