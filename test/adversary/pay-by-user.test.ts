import { describe, it, expect, afterEach } from 'vitest'
import { hexlify, randomBytes, type Wallet } from 'ethers'
import { heuristDomain, PaymentAuthorizationTypes, type PaymentAuthorization, type Allocation } from '../../src/core/typed-data.js'
import { encodePaymentHeader, type PodResolver } from '../../src/gateway/index.js'
import { PodDirectory, podResolver, deployPod } from '../../src/pods/index.js'
import { silentLogger } from '../../src/core/logger.js'
import { SCRIPT_MODEL } from '../p2p/scripted-executor.js'
import { until } from '../p2p/util.js'
import { startBench, startHonestMiner, startRogueMiner, heardAll, honestUnits, type Bench } from './gwmoney-fixture.js'

/**
 * Pay-by-User (issue 19): a caller with no API key pays from its own Payments deposit with a
 * signed PaymentAuthorization (x402 shape: 402 with requirements, then an X-PAYMENT header).
 * The honest flow moves exactly the measured prices from the user's deposit to the miner, the
 * frontend and the stHEU vault in one settlement; every misuse of an authorization (replay,
 * raising it, after expiry, at another gateway or chain) is refused by the gateway and by
 * Payments, and a failed job charges nothing. Balances are checked to the wei.
 */
const PRICE = 10n ** 9n
const HEU = 10n ** 18n
const messages = [{ role: 'user' as const, content: 'hi' }]
const BPS = 10_000n

interface Sign { maxAmount: bigint, expiry?: bigint, session?: string, frontend?: string, chainId?: number, payments?: string }

async function authorize (b: Bench, user: Wallet, s: Sign): Promise<{ authorization: PaymentAuthorization, signature: string }> {
  const authorization: PaymentAuthorization = {
    payer: user.address,
    frontend: s.frontend ?? b.gwWallet.address,
    session: s.session ?? hexlify(randomBytes(32)),
    maxAmount: s.maxAmount,
    expiry: s.expiry ?? BigInt(Math.floor(Date.now() / 1000) + 3600)
  }
  const domain = heuristDomain(s.chainId ?? b.d.chainId, s.payments ?? b.d.contracts.Payments)
  return { authorization, signature: await user.signTypedData(domain, PaymentAuthorizationTypes, authorization) }
}

async function chat (b: Bench, payment: string | null, maxTokens = 3, model = 'scripted'): Promise<Response> {
  return await fetch(`${b.gw.gateway.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(payment === null ? {} : { 'x-payment': payment }) },
    body: JSON.stringify({ model, messages, max_tokens: maxTokens })
  })
}

async function heu (b: Bench, a: string): Promise<bigint> {
  return (await b.gwChain.balances(a)).heu
}

describe('attack: misusing a user\'s payment authorization (Pay-by-User)', () => {
  let b: Bench | null = null
  afterEach(async () => { await b?.stop(); b = null })

  it('402 with requirements, paid retries, one settlement: the user\'s deposit pays exactly the measured prices to miner, frontend and vault; replay, raising, expiry, another gateway or chain are refused', async () => {
    // threshold out of reach: settlement happens when the test says (settleAll)
    b = await startBench({ gatewayDeposit: 10n * HEU, payByUser: { settleThresholdWei: 10n ** 30n } })
    const honest = await startHonestMiner(b, 2, PRICE)
    expect(await heardAll(b, [honest.node])).toBe(true)
    const user = b.devnet.accounts[6]!
    const userChain = await b.chainOf(6)
    await userChain.deposit(1n * HEU)
    const cost = honestUnits(messages, 3) * PRICE // 3 tokens delivered, max_tokens 3: the quote is the cost
    const quote = cost

    // 1. no key, no payment: 402 with machine-readable requirements
    const r402 = await chat(b, null)
    expect(r402.status).toBe(402)
    const req = await r402.json() as { x402Version: number, error: { code: string }, accepts: Array<Record<string, any>> }
    expect(req.x402Version).toBe(1)
    expect(req.error.code).toBe('payment_required')
    const acc = req.accepts[0]!
    expect(acc.scheme).toBe('heurist-deposit')
    expect(acc.network).toBe(`eip155:${b.d.chainId}`)
    expect(acc.payTo).toBe(b.gwWallet.address)
    expect(acc.maxAmountRequired).toBe(quote.toString())
    expect(acc.extra.payments).toBe(b.d.contracts.Payments)
    expect(acc.extra.domain).toEqual({ name: 'Heurist', version: '1', chainId: b.d.chainId, verifyingContract: b.d.contracts.Payments })
    expect(acc.extra.types).toEqual(PaymentAuthorizationTypes)
    expect(acc.extra.primaryType).toBe('PaymentAuthorization')

    // 2. misuse refused at the gateway, before any work
    const expect402 = async (payment: string, code: string): Promise<void> => {
      const r = await chat(b!, payment)
      expect(r.status).toBe(402)
      expect(((await r.json()) as { error: { code: string } }).error.code).toBe(code)
    }
    const chainId = b.d.chainId
    await expect402(encodePaymentHeader(chainId, await authorize(b, user, { maxAmount: quote, frontend: b.devnet.accounts[7]!.address })), 'payment_wrong_frontend')
    await expect402(encodePaymentHeader(chainId, await authorize(b, user, { maxAmount: quote, chainId: 1 })), 'payment_bad_signature')
    await expect402(encodePaymentHeader(chainId, await authorize(b, user, { maxAmount: quote, payments: b.d.contracts.Emission })), 'payment_bad_signature')
    await expect402(encodePaymentHeader(chainId, await authorize(b, user, { maxAmount: quote, expiry: BigInt(Math.floor(Date.now() / 1000) - 1) })), 'payment_expired')
    await expect402(encodePaymentHeader(chainId, await authorize(b, user, { maxAmount: quote - 1n })), 'payment_over_authorization')
    // a stranger's header claiming the user as payer, signed by the stranger
    const forged = await authorize(b, b.devnet.accounts[8]!, { maxAmount: quote })
    await expect402(encodePaymentHeader(chainId, { ...forged, authorization: { ...forged.authorization, payer: user.address } }), 'payment_bad_signature')
    expect(honest.exec.seen).toHaveLength(0)

    // 3. the honest session: three chat requests, each re-signing the session's cumulative bound
    const session = hexlify(randomBytes(32))
    const headers: string[] = []
    for (let i = 1; i <= 3; i++) {
      const h = encodePaymentHeader(chainId, await authorize(b, user, { maxAmount: BigInt(i) * quote, session }))
      headers.push(h)
      const r = await chat(b, h)
      expect(r.status).toBe(200)
      const body = await r.json() as { choices: Array<{ message: { content: string } }> }
      expect(body.choices[0]!.message.content).toBe('one two three')
      const receipt = JSON.parse(Buffer.from(r.headers.get('x-payment-response')!, 'base64').toString()) as Record<string, string>
      expect(receipt.charged).toBe(cost.toString())
      expect(receipt.spent).toBe((BigInt(i) * cost).toString())
    }
    // replay: the third header again (its bound is spent) and the first (a lower bound) are refused
    await expect402(headers[2]!, 'payment_over_authorization')
    await expect402(headers[0]!, 'payment_over_authorization')
    expect(honest.exec.seen).toHaveLength(3)
    // the gateway signed no voucher of its own: the user's deposit pays
    expect(await b.gw.vouchers.all()).toEqual([])

    // 4. one settlement for the three requests; balances to the wei
    const vault = b.d.contracts.StakedHeurist
    const before = { user: (await b.gwChain.balances(user.address)).deposit, gwDeposit: (await b.gwChain.balances(b.gwWallet.address)).deposit, miner: await heu(b, honest.wallet.address), gw: await heu(b, b.gwWallet.address), vault: await heu(b, vault) }
    expect(await b.gw.payByUser!.settleAll()).toBe(3n * cost)
    const total = 3n * cost
    const fee = total * BigInt(b.d.params.protocolFeeBps) / BPS
    const frontend = total * BigInt(b.d.params.frontendBps) / BPS
    expect((await b.gwChain.balances(user.address)).deposit).toBe(before.user - total)
    expect(await heu(b, honest.wallet.address)).toBe(before.miner + total - fee - frontend)
    expect(await heu(b, b.gwWallet.address)).toBe(before.gw + frontend)
    expect(await heu(b, vault)).toBe(before.vault + fee)
    expect((await b.gwChain.balances(b.gwWallet.address)).deposit).toBe(before.gwDeposit)
    expect(await b.gwChain.sessionSpent(user.address, b.gwWallet.address, session)).toBe(total)
    // settling again moves nothing
    expect(await b.gw.payByUser!.settleAll()).toBe(0n)

    // 5. on chain, whoever submits: the same settlement replayed pays nothing; raising it, another
    // sender (gateway), another chain's signature or an expired authorization revert
    const signed = await authorize(b, user, { maxAmount: 3n * quote, session })
    const alloc: Allocation = { miner: honest.wallet.address, podId: '0x' + SCRIPT_MODEL.id, podDeployer: '0x' + '0'.repeat(40), podBps: 0, pool: 0, cumulativeAmount: total }
    await b.gwChain.settleAuthorized(signed.authorization, signed.signature, [alloc])
    expect((await b.gwChain.balances(user.address)).deposit).toBe(before.user - total)
    await expect(b.gwChain.settleAuthorized(signed.authorization, signed.signature, [{ ...alloc, cumulativeAmount: total + 1n }])).rejects.toMatchObject({ code: 'CHAIN_OVER_AUTHORIZED' })
    const other = await b.chainOf(7)
    await expect(other.settleAuthorized(signed.authorization, signed.signature, [{ ...alloc, cumulativeAmount: total + 1n }])).rejects.toMatchObject({ code: 'CHAIN_NOT_FRONTEND' })
    const elsewhere = await authorize(b, user, { maxAmount: 10n * quote, session, chainId: 1 })
    await expect(b.gwChain.settleAuthorized(elsewhere.authorization, elsewhere.signature, [{ ...alloc, cumulativeAmount: total + 1n }])).rejects.toMatchObject({ code: 'CHAIN_BAD_SIGNATURE' })
    const expired = await authorize(b, user, { maxAmount: 10n * quote, session, expiry: BigInt(Math.floor(Date.now() / 1000) - 60) })
    await expect(b.gwChain.settleAuthorized(expired.authorization, expired.signature, [{ ...alloc, cumulativeAmount: total + 1n }])).rejects.toMatchObject({ code: 'CHAIN_AUTHORIZATION_EXPIRED' })
    // a gateway cannot settle under a session another gateway was authorized for
    const forOther = await authorize(b, user, { maxAmount: quote, frontend: b.devnet.accounts[7]!.address })
    await expect(b.gwChain.settleAuthorized(forOther.authorization, forOther.signature, [{ ...alloc, cumulativeAmount: 1n }])).rejects.toMatchObject({ code: 'CHAIN_NOT_FRONTEND' })
    expect((await b.gwChain.balances(user.address)).deposit).toBe(before.user - total)
    expect(await heu(b, honest.wallet.address)).toBe(before.miner + total - fee - frontend)
  }, 180_000)

  it('a failed job charges the user nothing; a deposit being withdrawn is not spent; a refused settlement is paid to the miner by the gateway', async () => {
    b = await startBench({ gatewayDeposit: 10n * HEU, payByUser: { settleThresholdWei: 10n ** 30n }, http: { requestTimeoutMs: 6_000, firstTokenTimeoutMs: 2_000, untriedFirstOutputTimeoutMs: 1_000 } })
    const user = b.devnet.accounts[6]!
    const userChain = await b.chainOf(6)
    await userChain.deposit(1n * HEU)
    const cost = honestUnits(messages, 3) * PRICE

    // only a silent miner: the job fails, nothing is booked or settled
    const rogue = await startRogueMiner(b, { register: 3, price: PRICE, tokensPerSecond: 10, behaviour: { kind: 'silent' } })
    expect(await heardAll(b, [rogue.node])).toBe(true)
    const session = hexlify(randomBytes(32))
    const h = encodePaymentHeader(b.d.chainId, await authorize(b, user, { maxAmount: 1n * HEU, session }))
    const failed = await chat(b, h)
    expect(failed.status).toBeGreaterThanOrEqual(500)
    expect(rogue.requests.length).toBeGreaterThan(0)
    expect(await b.gw.payByUser!.sessions()).toEqual([])
    expect(await b.gw.payByUser!.settleAll()).toBe(0n)
    expect((await b.gwChain.balances(user.address)).deposit).toBe(1n * HEU)

    // an honest miner joins; the user asks to withdraw all but one job's worth: only that is spendable
    const honest = await startHonestMiner(b, 2, PRICE)
    expect(await heardAll(b, [honest.node])).toBe(true)
    await userChain.requestWithdrawal(1n * HEU - cost)
    // the rogue may be ranked first; the dispatcher moves on to the honest miner
    const ok = await chat(b, h)
    expect(ok.status).toBe(200)
    const second = await chat(b, h)
    expect(second.status).toBe(402)
    expect(((await second.json()) as { error: { code: string } }).error.code).toBe('payment_insufficient_deposit')

    // the user's deposit is then gone (here: drained by another frontend the user authorized, the
    // race two gateways can run): the chain refuses the settlement, and the gateway pays the miner
    const drain = await authorize(b, user, { maxAmount: 1n * HEU, frontend: b.devnet.accounts[7]!.address })
    const other = await b.chainOf(7)
    await other.settleAuthorized(drain.authorization, drain.signature, [{ miner: honest.wallet.address, podId: '0x' + SCRIPT_MODEL.id, podDeployer: '0x' + '0'.repeat(40), podBps: 0, pool: 0, cumulativeAmount: 1n * HEU }])
    expect((await b.gwChain.balances(user.address)).deposit).toBe(0n)
    const gwDeposit = (await b.gwChain.balances(b.gwWallet.address)).deposit
    expect(await b.gw.payByUser!.settleAll()).toBe(cost)
    expect(b.gw.payByUser!.stats.fallback).toBe(cost)
    const vouchers = await b.gw.vouchers.all()
    expect(vouchers.map(v => [v.miner, v.cumulativeAmount])).toEqual([[honest.wallet.address, cost]])
    expect(await until(() => honest.inbox.stats.received >= 1)).toBe(true)
    await honest.inbox.stop()
    expect(honest.inbox.stats.redeemed).toBe(cost)
    expect((await b.gwChain.balances(b.gwWallet.address)).deposit).toBe(gwDeposit - cost)
  }, 180_000)
  it('a request naming a registered pod pays the pod deployer its share from the user\'s deposit, a streamed one is charged too; the rest of the deposit comes back only after the withdraw delay', async () => {
    // the gateway resolves pods through a directory started once the pod is on chain
    let directory: PodDirectory | null = null
    const pods: PodResolver = { resolve: (ref) => directory === null ? undefined : podResolver(directory).resolve(ref) }
    let later = 0 // seconds the gateway's clock runs ahead
    b = await startBench({ gatewayDeposit: 10n * HEU, payByUser: { settleThresholdWei: 10n ** 30n, now: () => Math.floor(Date.now() / 1000) + later }, pods })
    const honest = await startHonestMiner(b, 2, PRICE)
    expect(await heardAll(b, [honest.node])).toBe(true)
    const deployer = b.devnet.accounts[7]!
    const BPS_POD = 1500
    await deployPod(await b.chainOf(7), { sha256: SCRIPT_MODEL.id, kind: 'llm', minVramMb: 0, revenueBps: BPS_POD, name: 'scripted-pod', uri: 'https://example.org/scripted.gguf' })
    const dir = new PodDirectory(b.gwChain, silentLogger(), { refreshMs: 500 })
    await dir.start()
    b.defer(() => { dir.stop() })
    directory = dir
    expect(pods.resolve('scripted-pod')?.deployer).toBe(deployer.address)

    const user = b.devnet.accounts[6]!
    const userChain = await b.chainOf(6)
    await userChain.deposit(1n * HEU)
    const cost = honestUnits(messages, 3) * PRICE
    const session = hexlify(randomBytes(32))
    // one request names the pod, one the model: only the first pays the pod
    for (const [i, model] of [[1, 'scripted-pod'], [2, 'scripted']] as const) {
      const r = await chat(b, encodePaymentHeader(b.d.chainId, await authorize(b, user, { maxAmount: BigInt(i) * cost, session })), 3, model)
      expect(r.status).toBe(200)
    }
    // a streamed answer is booked too (after its last event; no X-PAYMENT-RESPONSE header)
    const streamed = await fetch(`${b.gw.gateway.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-payment': encodePaymentHeader(b.d.chainId, await authorize(b, user, { maxAmount: 3n * cost, session })) },
      body: JSON.stringify({ model: 'scripted', messages, max_tokens: 3, stream: true })
    })
    expect(streamed.status).toBe(200)
    expect(await streamed.text()).toContain('[DONE]')
    expect(await until(async () => (await b!.gw.payByUser!.state(user.address, session))?.spent === 3n * cost)).toBe(true)
    const before = { deployer: await heu(b, deployer.address), miner: await heu(b, honest.wallet.address), gw: await heu(b, b.gwWallet.address), vault: await heu(b, b.d.contracts.StakedHeurist) }
    expect(await b.gw.payByUser!.settleAll()).toBe(3n * cost)
    const fee = cost * BigInt(b.d.params.protocolFeeBps) / BPS
    const front = cost * BigInt(b.d.params.frontendBps) / BPS
    const pod = cost * BigInt(BPS_POD) / BPS
    expect(await heu(b, deployer.address)).toBe(before.deployer + pod)
    // the pod channel (one request) and the plain channel (two requests) are split separately
    const fee2 = 2n * cost * BigInt(b.d.params.protocolFeeBps) / BPS
    const front2 = 2n * cost * BigInt(b.d.params.frontendBps) / BPS
    expect(await heu(b, honest.wallet.address)).toBe(before.miner + (cost - fee - front - pod) + (2n * cost - fee2 - front2))
    expect(await heu(b, b.gwWallet.address)).toBe(before.gw + front + front2)
    expect(await heu(b, b.d.contracts.StakedHeurist)).toBe(before.vault + fee + fee2)
    expect((await b.gwChain.balances(user.address)).deposit).toBe(1n * HEU - 3n * cost)
    // settled and, an hour on, expired: the gateway forgets the session
    expect(await b.gw.payByUser!.sessions()).toHaveLength(1)
    later = 3700
    await b.gw.payByUser!.settleDue()
    expect(await b.gw.payByUser!.sessions()).toEqual([])

    // the rest comes back, after the delay only
    const left = 1n * HEU - 3n * cost
    await userChain.requestWithdrawal(left)
    await expect(userChain.withdrawDeposit()).rejects.toMatchObject({ code: 'CHAIN_WITHDRAWAL_NOT_READY' })
    const heuBefore = await heu(b, user.address)
    await b.devnet.timeTravel(BigInt(b.d.params.withdrawDelay))
    await userChain.withdrawDeposit()
    expect(await heu(b, user.address)).toBe(heuBefore + left)
    expect((await b.gwChain.balances(user.address)).deposit).toBe(0n)
  }, 180_000)
})
