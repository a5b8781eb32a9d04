import { describe, it, expect, afterEach } from 'vitest'
import { hexlify, randomBytes, type EventLog } from 'ethers'
import { heuristDomain, PaymentAuthorizationTypes, type PaymentAuthorization } from '../../src/core/typed-data.js'
import { encodePaymentHeader } from '../../src/gateway/index.js'
import { FLOOR_WEI_PER_UNIT, REDEMPTION_WINDOW_SECONDS, paidTripleKey } from '../../src/economics/index.js'
import { epochSchedule, paidInEpoch } from '../../src/rewards/index.js'
import { until } from '../p2p/util.js'
import { startBench, startHonestMiner, heardAll, honestUnits, type Bench } from '../adversary/gwmoney-fixture.js'

/**
 * Honest miners keep their points under the payment cap (issue 16, finding 4): a receipt earns
 * at most what its requester's redemptions to the miner paid inside the epoch's redemption
 * window (chain time (end(N−1) + W, end(N) + W]). So when the chain passes an epoch's end, the
 * miner's voucher inbox redeems everything owed whatever its threshold, and a Pay-by-User
 * gateway settles every session that owes anything; both land inside the ended epoch's window
 * and count for it (and only it). Real devnet, gateway, miner and contracts.
 */
const messages = [{ role: 'user' as const, content: 'hi' }]
const PRICE = FLOOR_WEI_PER_UNIT.llama

/** Moves the chain to one second past epoch 0's end, as time would; returns that end. */
async function toEpochEnd (b: Bench): Promise<bigint> {
  const s = await epochSchedule(b.gwChain)
  const end = s.genesis + s.epochSeconds
  const latest = BigInt((await b.gwChain.provider.getBlock('latest'))!.timestamp)
  await b.devnet.timeTravel(end - latest + 1n)
  return end
}

async function redemptions (b: Bench): Promise<Array<{ log: EventLog, time: bigint }>> {
  const out: Array<{ log: EventLog, time: bigint }> = []
  for (const log of await b.gwChain.events('payments', 'Redeemed', b.d.deployBlock)) out.push({ log, time: BigInt((await b.gwChain.provider.getBlock(log.blockNumber))!.timestamp) })
  return out
}

describe('payments land inside the ended epoch\'s redemption window', () => {
  let b: Bench | null = null
  afterEach(async () => { await b?.stop(); b = null })

  it('the voucher inbox redeems everything owed when the chain passes an epoch\'s end, whatever its threshold; it counts for that epoch', async () => {
    b = await startBench({ gatewayDeposit: 10n ** 19n })
    const miner = await startHonestMiner(b, 2, PRICE) // threshold 10^30: never reached
    expect(await heardAll(b, [miner.node])).toBe(true)
    const { apiKey } = await b.gw.accounts.create(10n ** 17n)
    const client = b.client(apiKey)
    for (let i = 0; i < 3; i++) {
      const r = await client.chat.completions.create({ model: 'scripted', messages, max_tokens: 3 })
      expect(r.choices[0]!.message.content).toBe('one two three')
    }
    expect(await until(() => miner.inbox.stats.received === 3, 10_000, 50)).toBe(true)
    const owed = await miner.inbox.owed()
    expect(owed).toBe(3n * honestUnits(messages, 3) * PRICE)
    expect(miner.inbox.stats.transactions).toBe(0)

    const end = await toEpochEnd(b)
    expect(await until(() => miner.inbox.stats.transactions === 1, 15_000, 100)).toBe(true)
    expect(miner.inbox.stats.epochPasses).toBe(1)
    const [r] = await redemptions(b)
    expect(r!.log.args[1]).toBe(miner.wallet.address)
    expect(r!.log.args[4]).toBe(owed)
    expect(r!.time).toBeGreaterThan(end)
    expect(r!.time).toBeLessThanOrEqual(end + REDEMPTION_WINDOW_SECONDS)
    // what the payment cap reads: epoch 0's window credits the gateway (the receipts' requester), epoch 1's nothing
    const s = await epochSchedule(b.gwChain)
    const key = paidTripleKey(b.gwWallet.address, miner.wallet.address, 'llama')
    expect((await paidInEpoch(b.gwChain, 0n, s)).get(key)).toBe(owed)
    expect((await paidInEpoch(b.gwChain, 1n, s)).has(key)).toBe(false)

    // a voucher for a job finishing at the boundary, arriving just after it, is redeemed at once too
    const r2 = await client.chat.completions.create({ model: 'scripted', messages, max_tokens: 3 })
    expect(r2.choices[0]!.message.content).toBe('one two three')
    expect(await until(() => miner.inbox.stats.transactions === 2, 10_000, 100)).toBe(true)
    expect(await miner.inbox.owed()).toBe(0n)
  }, 120_000)

  it('a Pay-by-User gateway settles every session that owes anything at the epoch\'s end; the settlement credits the gateway (the requester), not the user', async () => {
    // the gateway's clock follows the chain's (moved to two minutes before epoch 0's end below),
    // so the user's authorization is still valid on chain when the epoch ends
    let offset = 0
    b = await startBench({ gatewayDeposit: 10n ** 19n, payByUser: { settleThresholdWei: 10n ** 30n, settleIntervalMs: 200, now: () => Math.floor(Date.now() / 1000) + offset } })
    const s = await epochSchedule(b.gwChain)
    const latest = BigInt((await b.gwChain.provider.getBlock('latest'))!.timestamp)
    await b.devnet.timeTravel(s.genesis + s.epochSeconds - 120n - latest)
    offset = Number(BigInt((await b.gwChain.provider.getBlock('latest'))!.timestamp)) - Math.floor(Date.now() / 1000)
    const miner = await startHonestMiner(b, 2, PRICE)
    expect(await heardAll(b, [miner.node])).toBe(true)
    const user = b.devnet.accounts[6]!
    await (await b.chainOf(6)).deposit(10n ** 18n)
    const cost = honestUnits(messages, 3) * PRICE
    const session = hexlify(randomBytes(32))
    for (let i = 1n; i <= 2n; i++) {
      const authorization: PaymentAuthorization = { payer: user.address, frontend: b.gwWallet.address, session, maxAmount: i * cost, expiry: BigInt(Math.floor(Date.now() / 1000) + offset + 3600) }
      const signature = await user.signTypedData(heuristDomain(b.d.chainId, b.d.contracts.Payments), PaymentAuthorizationTypes, authorization)
      const r = await fetch(`${b.gw.gateway.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-payment': encodePaymentHeader(b.d.chainId, { authorization, signature }) },
        body: JSON.stringify({ model: 'scripted', messages, max_tokens: 3 })
      })
      expect(r.status).toBe(200)
      await r.json()
    }
    const pu = b.gw.payByUser!
    // under the threshold and far from expiry: nothing settled while the epoch runs
    await new Promise(resolve => setTimeout(resolve, 600))
    expect(pu.stats.settlements).toBe(0)

    const end = await toEpochEnd(b)
    expect(await until(() => pu.stats.settlements === 1, 15_000, 100)).toBe(true)
    expect(pu.stats.epochPasses).toBeGreaterThanOrEqual(1)
    const [r] = await redemptions(b)
    expect(r!.log.args[0]).toBe(user.address)
    expect(r!.log.args[1]).toBe(miner.wallet.address)
    expect(r!.log.args[10]).toBe(b.gwWallet.address)
    expect(r!.log.args[4]).toBe(2n * cost)
    expect(r!.time).toBeGreaterThan(end)
    expect(r!.time).toBeLessThanOrEqual(end + REDEMPTION_WINDOW_SECONDS)
    const paid = await paidInEpoch(b.gwChain, 0n, s)
    expect(paid.get(paidTripleKey(b.gwWallet.address, miner.wallet.address, 'llama'))).toBe(2n * cost)
    expect(paid.has(paidTripleKey(user.address, miner.wallet.address, 'llama'))).toBe(false)
  }, 120_000)
})
