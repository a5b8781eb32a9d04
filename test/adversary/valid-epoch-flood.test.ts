import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { Wallet, hexlify, randomBytes, ZeroAddress, ZeroHash } from 'ethers'
import { until } from '../p2p/util.js'
import { POOL } from '../../src/core/typed-data.js'
import { countersign, receiptHash, signReceipt, TOPICS, type HeuristNode, type ReceiptMessage } from '../../src/p2p/index.js'
import { MAX_LEAVES, MAX_TABLE_MINERS } from '../../src/rewards/index.js'
import { whitepaperEpochCap, FLOOR_WEI_PER_UNIT, REDEMPTION_WINDOW_SECONDS } from '../../src/economics/index.js'
import { signVoucher } from '../../src/chain/index.js'
import { startNet, type Net } from './valid-fixture.js'

// Finding 6 of issue 16 at the service's real bounds (50,000 registered miners, 8,000 leaves per
// gossip message): paying gateways gossip countersigned receipts for hundreds of throwaway keys
// (never registered). The close must not pay for them: before, the organic check read each key's
// payout from NodeRegistry, one RPC per key (4,001 keys: 13.9 s of a 13.9 s close,
// bench/epoch-close.mjs). A key that never registered is paid out to itself, known from the one
// registration scan, so the close reads no throwaway key at all; the root is posted and only the
// registered miners have leaves. The 4,001- and 8,001-key runs are the bench's (a minute or more
// each on a 2-core box), not a test's.
const EPOCH = 3600n
const THROWAWAY = 300

describe('adversary: a flood of throwaway keys costs the epoch close no chain reads', () => {
  let net: Net
  beforeAll(async () => {
    net = await startNet({ accounts: 16, epochSeconds: EPOCH, miners: [{ account: 2 }], validators: [{ account: 4, sampleRate: 0.0001, epochs: true }] })
  }, 240_000)
  afterAll(async () => { await net?.stop() })

  it('files every throwaway receipt, reads none of their payouts, and posts a root for the registered miners only', async () => {
    const v = net.validators[0]!
    // the honest miner's paid jobs (revenue for the epoch) first
    for (let i = 0; i < 3; i++) {
      const r = await net.post('/v1/completions', { model: 'tiny-llama', prompt: `honest ${i}:`, max_tokens: 8, seed: i })
      expect(r.status).toBe(200)
      await r.json()
    }
    expect(v.epochs!.options.maxTableMiners).toBe(MAX_TABLE_MINERS)
    expect(v.epochs!.options.leavesPerMessage).toBe(MAX_LEAVES)
    const extras = [net.account(13), net.account(14)]
    for (const w of extras) await (await net.chainOf(w)).register(BigInt(net.devnet.deployment.params.minCollateral))
    const gateways: Array<{ w: Wallet, node: HeuristNode }> = []
    for (const i of [8, 9]) {
      const w = net.account(i)
      await (await net.chainOf(w)).deposit(10n ** 18n)
      gateways.push({ w, node: await net.extraNode(i) })
    }
    expect(await until(() => gateways.every(g => g.node.pubsub.getSubscribers(TOPICS.receipts).length > 0), 30_000)).toBe(true)

    // every payoutOf the validator's chain client sends, by the address asked about
    const nodes = v.chain.contracts.nodes.interface
    const selector = nodes.getFunction('payoutOf')!.selector
    const asked: string[] = []
    const onDebug = (e: { action: string, payload?: unknown }): void => {
      if (e.action !== 'sendRpcPayload') return
      for (const p of (Array.isArray(e.payload) ? e.payload : [e.payload]) as Array<{ method: string, params: Array<{ data?: string }> }>) {
        const data = p.method === 'eth_call' ? p.params[0]?.data : undefined
        if (data?.startsWith(selector) === true) asked.push(String(nodes.decodeFunctionData('payoutOf', data)[0]).toLowerCase())
      }
    }
    await v.chain.provider.on('debug', onDebug)

    const domain = net.domain
    const now = await net.devnet.now()
    const message = async (minerKey: Wallet, g: Wallet): Promise<ReceiptMessage> => {
      const signed = await signReceipt(minerKey, {
        jobId: hexlify(randomBytes(32)), requester: g.address, miner: minerKey.address, modelId: '0x' + net.model.id, pool: POOL.llm,
        inputHash: ZeroHash, outputHash: ZeroHash, paramsHash: ZeroHash, computeUnits: 1000n, startedAt: now - 5n, endedAt: now
      }, domain)
      return { v: 1, type: 'receipt', signed, chainId: Number(domain.chainId), verifyingContract: domain.verifyingContract, measured: { units: '1000', signature: countersign(g, receiptHash(signed, domain), 1000n) } }
    }
    const throwaway = Array.from({ length: THROWAWAY }, () => new Wallet(hexlify(randomBytes(32))))
    const batches: ReceiptMessage[][] = gateways.map(() => [])
    // under the receipts topic's burst (200 per publisher)
    for (const [n, k] of throwaway.entries()) batches[n % 2]!.push(await message(k, gateways[n % 2]!.w))
    for (const w of extras) batches[0]!.push(await message(w, gateways[0]!.w))
    await Promise.all(gateways.map(async (g, i) => { for (const m of batches[i]!) await g.node.publishReceipt(m) }))
    const filed = THROWAWAY + extras.length + 3
    expect(await until(async () => (await v.epochs!.ledger.entries(0n)).length === filed, 90_000, 250)).toBe(true)
    await net.redeemAll()
    // the first gateway pays the two extra registered miners at the floor for their receipts (points are bounded by payment)
    for (const w of extras) {
      const voucher = { payer: gateways[0]!.w.address, miner: w.address, podId: '0x' + '22'.repeat(32), podDeployer: ZeroAddress, podBps: 0, pool: POOL.llm, frontend: ZeroAddress, cumulativeAmount: 1000n * FLOOR_WEI_PER_UNIT.llama }
      await net.gatewayChain.redeemVoucher(voucher, await signVoucher(gateways[0]!.w, net.devnet.deployment, voucher))
    }
    const [llmRevenue] = await net.gatewayChain.read<[bigint, bigint]>(net.gatewayChain.contracts.payments, 'epochRevenue', [0n])
    expect(llmRevenue).toBeGreaterThan(0n)

    await net.devnet.timeTravel(EPOCH + REDEMPTION_WINDOW_SECONDS)
    const emission = net.gatewayChain.contracts.emission
    expect(await until(async () => await net.gatewayChain.read<boolean>(emission, 'posted', [0n]), 60_000, 200)).toBe(true)
    await v.chain.provider.off('debug', onDebug)
    const rec = v.epochs!.closed().find(r => r.epoch === 0n)!
    expect(rec.posted).toBe(true)
    expect(await net.gatewayChain.read<string>(emission, 'roots', [0n])).toBe(rec.tree.root)

    const registered = [net.miners[0]!.wallet.address, ...extras.map(w => w.address)].sort((a, b) => (BigInt(a) < BigInt(b) ? -1 : 1))
    expect(rec.tree.claims.map(c => c.account)).toEqual(registered)
    expect(rec.parts).toBe(1)
    const pool = whitepaperEpochCap(llmRevenue, EPOCH).emission
    expect(rec.tree.total).toBeLessThanOrEqual(pool)
    expect(pool - rec.tree.total).toBeLessThan(3n)
    // the close asked about registered miners only: not one of the 300 throwaway keys
    const flood = new Set(throwaway.map(k => k.address.toLowerCase()))
    expect(asked.filter(a => flood.has(a))).toEqual([])
    // each registered miner's payout read once; the gateways never registered either
    expect([...asked].sort()).toEqual(registered.map(a => a.toLowerCase()).sort())
  }, 300_000)
})
