import { describe, it, expect, afterEach } from 'vitest'
import { defaultGatewayOptions } from '../../src/gateway/index.js'
import { reservationFor } from '../../src/gateway/billing.js'
import { modelWeightGib } from '../../src/economics/index.js'
import { SCRIPT_MODEL } from '../p2p/scripted-executor.js'
import { startBench, startHonestMiner, startRogueMiner, heardAll, honestUnits, signedTotal, type Bench } from './gwmoney-fixture.js'
import { until } from '../p2p/util.js'

/**
 * Attack 6 of issue 15: price griefing. A registered miner advertises a price of 10^60 wei per
 * unit (and another one the highest price under the gateway's ceiling, and the fastest speed),
 * hoping the gateway reserves every request at that price and answers 402 to every key. The
 * gateway drops adverts over `gateway.maxPrice` before routing and reserving, and reserves at
 * the price of the eligible miners the key can afford.
 */
const PRICE = 10n ** 9n
const HEU = 10n ** 18n
const messages = [{ role: 'user' as const, content: 'hi' }]

describe('attack: an absurd price advert', () => {
  let b: Bench | null = null
  afterEach(async () => { await b?.stop(); b = null })

  it('one advert at 10^60 wei (and one at the ceiling) does not make any key 402: a key funded for one honest job is served by the honest miner and charged its price', async () => {
    b = await startBench({ gatewayDeposit: 10n * HEU })
    const honest = await startHonestMiner(b, 2, PRICE)
    const absurd = await startRogueMiner(b, { register: 3, price: 10n ** 60n, tokensPerSecond: 1e7, behaviour: { kind: 'overbill', units: () => 1n } })
    const dear = await startRogueMiner(b, { register: 4, price: defaultGatewayOptions.maxPricePerUnit, tokensPerSecond: 1e7, behaviour: { kind: 'overbill', units: () => 1n } })
    expect(await heardAll(b, [honest.node, absurd.node, dear.node])).toBe(true)
    const absurdHeu = (await b.gwChain.balances(absurd.identity.address)).heu
    const dearHeu = (await b.gwChain.balances(dear.identity.address)).heu
    const depositBefore = (await b.gwChain.balances(b.gwWallet.address)).deposit

    // credits for exactly one job's worst case at the honest price
    const credits = reservationFor({ kind: 'llm', input: messages, maxTokens: 3 }, modelWeightGib(SCRIPT_MODEL.memoryBytes), PRICE)
    const { apiKey } = await b.gw.accounts.create(credits)
    const r = await b.client(apiKey).chat.completions.create({ model: 'scripted', messages, max_tokens: 3 }).withResponse()
    expect(r.response.headers.get('x-heurist-miner')).toBe(honest.node.peerId.toString())
    expect(r.data.choices[0]!.message.content).toBe('one two three')
    expect(absurd.requests).toHaveLength(0)
    expect(dear.requests).toHaveLength(0)

    const cost = honestUnits(messages, 3) * PRICE
    expect(await until(async () => await signedTotal(b!) === cost)).toBe(true)
    expect((await b.gw.vouchers.all()).map(v => v.miner)).toEqual([honest.wallet.address])
    expect((await b.gw.accounts.lookup(apiKey))!.credits).toBe(credits - cost)

    // a key that can afford the dear miner's reservation may be routed there; the absurd one is never eligible
    const { apiKey: rich } = await b.gw.accounts.create(5n * HEU)
    const richServed = await b.client(rich).chat.completions.create({ model: 'scripted', messages, max_tokens: 3 }).withResponse()
    expect(absurd.requests).toHaveLength(0)
    const honestJobs = 1n + (richServed.response.headers.get('x-heurist-miner') === honest.node.peerId.toString() ? 1n : 0n)

    const paid = honestJobs * cost
    // the honest miner holds its latest voucher (delivered after the response) before it redeems
    expect(await until(async () => await honest.inbox.owed() === paid)).toBe(true)
    await honest.inbox.stop()
    expect(honest.inbox.stats.redeemed).toBe(paid)
    expect((await b.gwChain.balances(b.gwWallet.address)).deposit).toBe(depositBefore - paid)
    expect((await b.gwChain.balances(absurd.identity.address)).heu).toBe(absurdHeu)
    expect((await b.gwChain.balances(dear.identity.address)).heu).toBe(dearHeu)
  }, 120_000)
})
