import { describe, it, expect, afterEach } from 'vitest'
import OpenAI from 'openai'
import { testNode } from '../p2p/util.js'
import { SCRIPT_MODEL } from '../p2p/scripted-executor.js'
import { startBench, startGateway, startHonestMiner, heardAll, honestUnits, signedTotal, type Bench } from './gwmoney-fixture.js'
import { until } from '../p2p/util.js'

/**
 * Attack 8 of issue 15, its free-work half: requesters with no Payments deposit (a bare libp2p
 * key dialling the miner, or a gateway that never deposited or deposited 1 wei and hands out
 * API keys anyway) get jobs served, and the miner is paid with vouchers nothing backs. The
 * miner admits only requesters whose deposit covers the job at its price; the rest get a typed
 * `rejected` frame (P2P_NO_DEPOSIT) before any work starts.
 */
const PRICE = 10n ** 9n
const HEU = 10n ** 18n
const messages = [{ role: 'user' as const, content: 'hi' }]

describe('attack: free work from a miner', () => {
  let b: Bench | null = null
  afterEach(async () => { await b?.stop(); b = null })

  it('a requester with no deposit, or one that does not cover the job, is refused before any work; a funded gateway is served and pays exactly', async () => {
    b = await startBench({ gatewayDeposit: 10n * HEU })
    const honest = await startHonestMiner(b, 2, PRICE)
    expect(await heardAll(b, [honest.node])).toBe(true)
    const minerHeuBefore = (await honest.chain.balances(honest.wallet.address)).heu

    // 1. a bare key with no deposit asks the miner directly
    const stranger = await testNode({ bootstrap: [honest.node.multiaddrs()[0]!] })
    b.defer(async () => { await stranger.stop() })
    await stranger.dial(honest.node.multiaddrs()[0]!)
    const refused = await stranger.runJob(honest.node.peerId, { kind: 'llm', modelId: SCRIPT_MODEL.id, input: 'hi', sampling: { seed: 1, temperature: 0, topP: 1, topK: 0, maxTokens: 3, stop: [] } }).then(() => null, (e: unknown) => e)
    expect(refused).toMatchObject({ code: 'P2P_JOB_REJECTED' })
    expect((refused as { details?: { code?: string } }).details?.code).toBe('P2P_NO_DEPOSIT')

    // 2. a gateway that deposited 1 wei (less than one job) sells API keys anyway
    const cheap = await startGateway(b, 5, 1n, { requestTimeoutMs: 20_000 }, [honest.node.multiaddrs()[0]!])
    const cheapClient = new OpenAI({ apiKey: (await cheap.accounts.create(1n * HEU)).apiKey, baseURL: `${cheap.gateway.url}/v1`, maxRetries: 0, timeout: 30_000 })
    const heard = Date.now() + 20_000
    while (cheap.node.peerTable.miners(SCRIPT_MODEL.id).length === 0 && Date.now() < heard) await new Promise(resolve => setTimeout(resolve, 100))
    await expect(cheapClient.chat.completions.create({ model: 'scripted', messages, max_tokens: 3 })).rejects.toMatchObject({ status: 502, code: 'miner_failed' })
    // the miner did no work for either of them
    expect(honest.exec.seen).toHaveLength(0)
    expect(honest.server.stats.rejected).toBe(2)

    // 3. the funded gateway's key is served, and the miner is paid what was measured
    const { apiKey } = await b.gw.accounts.create(1n * HEU)
    const r = await b.client(apiKey).chat.completions.create({ model: 'scripted', messages, max_tokens: 3 })
    expect(r.choices[0]!.message.content).toBe('one two three')
    expect(honest.exec.seen).toHaveLength(1)
    const cost = honestUnits(messages, 3) * PRICE
    expect(await until(async () => await signedTotal(b!) === cost && honest.inbox.stats.received === 1)).toBe(true)
    const depositBefore = (await b.gwChain.balances(b.gwWallet.address)).deposit
    await honest.inbox.stop()
    expect(honest.inbox.stats.redeemed).toBe(cost)
    expect((await b.gwChain.balances(b.gwWallet.address)).deposit).toBe(depositBefore - cost)
    // the under-funded gateway's deposit is untouched: it never got a voucher honoured
    expect((await b.gwChain.balances(b.devnet.accounts[5]!.address)).deposit).toBe(1n)
    expect(await cheap.vouchers.all()).toEqual([])
    const gained = (await honest.chain.balances(honest.wallet.address)).heu - minerHeuBefore
    expect(gained).toBeGreaterThan(0n)
    expect(gained).toBeLessThanOrEqual(cost)
  }, 120_000)
})
