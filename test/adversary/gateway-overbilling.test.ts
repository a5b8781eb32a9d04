import { describe, it, expect, afterEach } from 'vitest'
import { reservationFor } from '../../src/gateway/billing.js'
import { modelWeightGib } from '../../src/economics/index.js'
import { SCRIPT_MODEL } from '../p2p/scripted-executor.js'
import { startBench, startHonestMiner, startRogueMiner, heardAll, honestUnits, signedTotal, type Bench } from './gwmoney-fixture.js'
import { until } from '../p2p/util.js'

/**
 * Attack 5 of issue 15: the gateway pays what the miner bills. A registered miner signs a
 * receipt claiming 600 HEU of compute for a 3-token job; and 50 concurrent requests on a key
 * funded for about two try to get vouchers signed past the key's credits. The gateway bills
 * from what it measured (its count of the delivered tokens × the advert's model weight), in
 * the unit it reserved in, never above the reservation, and pays nothing on a receipt that
 * claims more.
 */
const PRICE = 10n ** 9n // wei per compute unit, `heurist up`'s default
const HEU = 10n ** 18n
const messages = [{ role: 'user' as const, content: 'hi' }]

describe('attack: the miner bills the gateway', () => {
  let b: Bench | null = null
  afterEach(async () => { await b?.stop(); b = null })

  it('a receipt claiming 600 HEU for a 3-token job is not paid; the key is not charged; the honest miner is paid exactly what was measured', async () => {
    b = await startBench({ gatewayDeposit: 10n * HEU })
    const honest = await startHonestMiner(b, 2, PRICE)
    const rogue = await startRogueMiner(b, { register: 3, price: PRICE, tokensPerSecond: 1e7, behaviour: { kind: 'overbill', units: () => 600n * HEU / PRICE } })
    expect(await heardAll(b, [honest.node, rogue.node])).toBe(true)
    const { apiKey } = await b.gw.accounts.create(1n * HEU)
    const client = b.client(apiKey)
    const rogueHeuBefore = (await b.gwChain.balances(rogue.identity.address)).heu
    const depositBefore = (await b.gwChain.balances(b.gwWallet.address)).deposit

    // the rogue advertises 10^7 tokens/s: untried, it is tried first and serves the answer
    const first = await client.chat.completions.create({ model: 'scripted', messages, max_tokens: 3 }).withResponse()
    expect(first.response.headers.get('x-heurist-miner')).toBe(rogue.node.peerId.toString())
    expect(first.data.choices[0]!.message.content).toBe('one two three')
    expect(rogue.requests).toHaveLength(1)
    // ... but its receipt claims 600 HEU: no voucher for it, and the key is not charged
    expect((await b.gw.vouchers.all()).filter(v => v.miner.toLowerCase() === rogue.identity.address.toLowerCase())).toEqual([])
    expect((await b.gw.accounts.lookup(apiKey))!.credits).toBe(1n * HEU)

    // the next request goes to the honest miner, and is billed what the gateway measured
    const second = await client.chat.completions.create({ model: 'scripted', messages, max_tokens: 3 }).withResponse()
    expect(second.response.headers.get('x-heurist-miner')).toBe(honest.node.peerId.toString())
    expect(rogue.requests).toHaveLength(1)
    const cost = honestUnits(messages, 3) * PRICE
    expect(honestUnits(messages, 3)).toBe(8n) // ⌈2 bytes / 4⌉ + 4 per message, + 3 tokens; weight 1 GiB
    // (the voucher is signed right after the response)
    expect(await until(async () => await signedTotal(b!) === cost)).toBe(true)
    expect((await b.gw.accounts.lookup(apiKey))!.credits).toBe(1n * HEU - cost)
    expect((await b.gw.vouchers.all()).map(v => v.miner)).toEqual([honest.wallet.address])
    expect(await until(async () => honest.inbox.stats.received === 1)).toBe(true)

    // on chain: the honest miner redeems exactly the measured cost; the rogue has nothing to redeem
    await honest.inbox.stop()
    expect(honest.inbox.stats.redeemed).toBe(cost)
    expect((await b.gwChain.balances(b.gwWallet.address)).deposit).toBe(depositBefore - cost)
    expect((await b.gwChain.balances(rogue.identity.address)).heu).toBe(rogueHeuBefore)
  }, 120_000)

  it('50 concurrent requests on a key funded for about two: the vouchers signed never exceed the key\'s credits, to the wei', async () => {
    b = await startBench({ gatewayDeposit: 10n * HEU })
    const honest = await startHonestMiner(b, 2, PRICE)
    expect(await heardAll(b, [honest.node])).toBe(true)
    // a request with max_tokens 5 reserves its worst case (5 tokens); the scripted miner delivers 3
    const reserve = reservationFor({ kind: 'llm', input: messages, maxTokens: 5 }, modelWeightGib(SCRIPT_MODEL.memoryBytes), PRICE)
    expect(reserve).toBe(10n * PRICE)
    const credits = 2n * reserve + reserve / 2n
    const { apiKey } = await b.gw.accounts.create(credits)
    const client = b.client(apiKey)
    const depositBefore = (await b.gwChain.balances(b.gwWallet.address)).deposit

    const results = await Promise.allSettled(Array.from({ length: 50 }, async () => await client.chat.completions.create({ model: 'scripted', messages, max_tokens: 5 })))
    const served = results.filter(r => r.status === 'fulfilled')
    const refused = results.filter(r => r.status === 'rejected')
    expect(served).toHaveLength(2)
    expect(refused.every(r => (r.reason as { status?: number }).status === 402)).toBe(true)

    const charged = 2n * honestUnits(messages, 3) * PRICE
    expect(await until(async () => await signedTotal(b!) === charged)).toBe(true)
    expect(charged).toBeLessThanOrEqual(credits)
    const account = (await b.gw.accounts.lookup(apiKey))!
    expect(account.credits).toBe(credits - charged)
    expect(account.spent).toBe(charged)
    expect(b.gw.accounts.available(account)).toBe(credits - charged) // nothing left reserved

    expect(await until(async () => honest.inbox.stats.received === 2)).toBe(true)
    await honest.inbox.stop()
    expect(honest.inbox.stats.redeemed).toBe(charged)
    expect((await b.gwChain.balances(b.gwWallet.address)).deposit).toBe(depositBefore - charged)
  }, 120_000)
})
