import { describe, it, expect, afterEach } from 'vitest'
import OpenAI from 'openai'
import { Advertiser, basicHardware, type HeuristNode } from '../../src/p2p/index.js'
import { startDevnet, connectChain, type Devnet, type ChainClient } from '../../src/chain/index.js'
import { Store } from '../../src/core/store.js'
import { silentLogger } from '../../src/core/logger.js'
import { identityFromPrivateKey } from '../../src/core/identity.js'
import { heuristDomain } from '../../src/core/typed-data.js'
import { startGatewayService, VoucherInbox, type GatewayService } from '../../src/gateway/index.js'
import { tempDir } from '../helpers.js'
import { testNode, until } from '../p2p/util.js'
import { ScriptedExecutor, SCRIPT_MODEL } from '../p2p/scripted-executor.js'

/**
 * Paying miners on a real EVM (the embedded EDR devnet with the contracts): the gateway's
 * credits are a Payments deposit, each job raises the miner's cumulative voucher, the voucher
 * travels over /heurist/voucher/1.0.0, and the miner redeems past a threshold and on shutdown.
 */
describe('vouchers on the devnet', () => {
  const stops: Array<() => Promise<unknown> | unknown> = []
  afterEach(async () => {
    for (const s of stops.reverse()) await Promise.resolve(s()).catch(() => {})
    stops.length = 0
  })

  it('miner is paid price × units per job: nothing redeemed under the threshold, all of it at shutdown in one transaction; forged vouchers refused', async () => {
    const devnet: Devnet = await startDevnet({ port: 0 })
    stops.push(async () => { await devnet.stop() })
    const t = await tempDir('heurist-gw-pay-')
    stops.push(t.cleanup)
    const gwStore = await Store.open(`${t.dir}/gw`)
    const minerStore = await Store.open(`${t.dir}/miner`)
    stops.push(async () => { await gwStore.close(); await minerStore.close() })
    const d = devnet.deployment
    const gwWallet = devnet.accounts[1]!
    const minerWallet = devnet.accounts[2]!
    const gwChain: ChainClient = await connectChain({ deployment: d, signer: gwWallet })
    const minerChain: ChainClient = await connectChain({ deployment: d, signer: minerWallet })
    stops.push(() => { gwChain.close(); minerChain.close() })
    await gwChain.deposit(10n ** 18n)
    await minerChain.register(BigInt(d.params.minCollateral))

    // the miner: scripted executor, receipts signed under Slashing's domain, price 1000 wei/unit
    const minerId = identityFromPrivateKey(minerWallet.privateKey)
    const receiptDomain = { chainId: d.chainId, verifyingContract: d.contracts.Slashing }
    const miner: HeuristNode = await testNode({ identity: minerId })
    stops.push(async () => { await miner.stop() })
    await miner.serveJobs(new ScriptedExecutor(['one', ' two', ' three'], 5), { receiptDomain })
    const adv = new Advertiser(miner, { intervalMs: 500, describe: () => ({ hardware: basicHardware(), models: [SCRIPT_MODEL], queueDepth: 0, maxJobs: 1, tokensPerSecond: 10, imagesPerSecond: 0, price: 1000n, version: 'test', paid: true }) }, silentLogger())
    adv.start()
    stops.push(() => { adv.stop() })
    const inbox = new VoucherInbox(miner, minerStore, minerChain, silentLogger(), { domain: heuristDomain(d.chainId, d.contracts.Payments), thresholdWei: 10n ** 18n })
    await inbox.start()

    const gwId = identityFromPrivateKey(gwWallet.privateKey)
    const svc: GatewayService = await startGatewayService({
      identity: gwId,
      store: gwStore,
      logger: silentLogger(),
      listen: ['/ip4/127.0.0.1/tcp/0'],
      bootstrap: [miner.multiaddrs()[0]!],
      devnet: true,
      http: { port: 0 },
      chain: { voucherSigner: { wallet: gwId.wallet, domain: heuristDomain(d.chainId, d.contracts.Payments) }, receiptDomain }
    })
    stops.splice(stops.length - 1, 0, async () => { await svc.stop() })
    expect(await until(() => svc.node.peerTable.miners(SCRIPT_MODEL.id).length === 1, 20_000, 100)).toBe(true)
    const { apiKey } = await svc.accounts.create(10n ** 17n)
    const client = new OpenAI({ apiKey, baseURL: `${svc.gateway.url}/v1`, maxRetries: 0, timeout: 30_000 })

    for (let i = 0; i < 3; i++) {
      const r = await client.chat.completions.create({ model: 'scripted', messages: [{ role: 'user', content: 'hi' }], max_tokens: 3 })
      expect(r.choices[0]!.message.content).toBe('one two three')
    }
    expect(await until(async () => inbox.stats.received === 3, 10_000, 50)).toBe(true)
    const latest = (await svc.vouchers.all())[0]!
    expect(latest.miner).toBe(minerWallet.address)
    expect(latest.cumulativeAmount % 1000n).toBe(0n)
    expect(latest.cumulativeAmount).toBeGreaterThan(0n)
    // under the threshold: nothing redeemed yet, all of it owed
    expect(inbox.stats.transactions).toBe(0)
    expect(await inbox.owed()).toBe(latest.cumulativeAmount)

    const depositBefore = (await gwChain.balances(gwWallet.address)).deposit
    const minerHeuBefore = (await minerChain.balances(minerWallet.address)).heu
    await inbox.stop() // shutdown: redeem what is owed, one transaction
    expect(inbox.stats.transactions).toBe(1)
    expect(inbox.stats.redeemed).toBe(latest.cumulativeAmount)
    expect((await gwChain.balances(gwWallet.address)).deposit).toBe(depositBefore - latest.cumulativeAmount)
    // the node's share: the rest goes to the frontend (the gateway itself here) and the
    // protocol fee to the stHEU vault
    const gained = (await minerChain.balances(minerWallet.address)).heu - minerHeuBefore
    expect(gained).toBe(latest.cumulativeAmount - latest.cumulativeAmount * BigInt(d.params.frontendBps) / 10_000n - latest.cumulativeAmount * BigInt(d.params.protocolFeeBps) / 10_000n)
    expect(await inbox.owed()).toBe(0n)
    // a forged voucher (signed by someone else) is refused
    const forged = { ...latest, cumulativeAmount: latest.cumulativeAmount * 100n, signature: await minerWallet.signTypedData(heuristDomain(d.chainId, d.contracts.Payments) as never, (await import('../../src/core/typed-data.js')).VoucherTypes, { ...latest, cumulativeAmount: latest.cumulativeAmount * 100n, signature: undefined }) }
    const { encodeVoucherMessage } = await import('../../src/gateway/index.js')
    expect(await inbox.accept(encodeVoucherMessage(forged))).toBe(false)
  })
})
