import { describe, it, expect, afterEach } from 'vitest'
import OpenAI from 'openai'
import { ZeroAddress } from 'ethers'
import { Advertiser, basicHardware, type HeuristNode } from '../../src/p2p/index.js'
import { signVoucher, type ChainClient } from '../../src/chain/index.js'
import { PodDirectory, podResolver } from '../../src/pods/index.js'
import { Store } from '../../src/core/store.js'
import { silentLogger } from '../../src/core/logger.js'
import { identityFromPrivateKey } from '../../src/core/identity.js'
import { heuristDomain, type Voucher } from '../../src/core/typed-data.js'
import { startGatewayService, VoucherInbox, type GatewayService } from '../../src/gateway/index.js'
import { tempDir } from '../helpers.js'
import { testNode, until } from '../p2p/util.js'
import { ScriptedExecutor, SCRIPT_MODEL } from '../p2p/scripted-executor.js'
import { startChainWorld, HEU } from './chain-fixture.js'

/**
 * Attack 3 (issue 15): pod squatting. A stranger registers a popular model's sha256 as "its"
 * pod at the highest share the registry allows, hoping every payment for that model pays it.
 * Through the real pieces: the devnet, a miner on libp2p serving the model and redeeming its
 * vouchers, a gateway that reads pods from the chain, and an OpenAI client asking for the model.
 */
describe('attack 3: pod squatting', () => {
  const stops: Array<() => Promise<unknown> | unknown> = []
  afterEach(async () => {
    for (const s of stops.reverse()) await Promise.resolve(s()).catch(() => {})
    stops.length = 0
  })

  it('registering a model\'s id as a pod takes nothing from requests that did not name the pod', async () => {
    const world = await startChainWorld()
    stops.push(async () => { await world.stop() })
    const d = world.devnet.deployment
    const min = BigInt(d.params.minCollateral)
    const t = await tempDir('heurist-adv-squat-')
    stops.push(t.cleanup)
    const gwStore = await Store.open(`${t.dir}/gw`)
    const minerStore = await Store.open(`${t.dir}/miner`)
    stops.push(async () => { await gwStore.close(); await minerStore.close() })

    const gwWallet = await world.wallet(10n * HEU)
    const minerWallet = await world.wallet(min)
    const squatter = await world.wallet(0n)
    const gwChain: ChainClient = await world.client(gwWallet)
    const minerChain: ChainClient = await world.client(minerWallet)
    const sq = await world.client(squatter)
    await gwChain.deposit(10n * HEU)
    await minerChain.register(min)

    // the squat: the model's sha256 as a pod, at the registry's highest share
    const modelId = '0x' + SCRIPT_MODEL.id
    const maxBps = d.params.maxPodRevenueBps
    await sq.registerPod(modelId, 0, 0, maxBps)
    expect(await sq.read(sq.contracts.pods, 'revenueShare', [modelId])).toEqual([squatter.address, BigInt(maxBps)])

    // the miner: serves the model, signs receipts, redeems every voucher as it arrives
    const receiptDomain = { chainId: d.chainId, verifyingContract: d.contracts.Slashing }
    const miner: HeuristNode = await testNode({ identity: identityFromPrivateKey(minerWallet.privateKey) })
    stops.push(async () => { await miner.stop() })
    await miner.serveJobs(new ScriptedExecutor(['one', ' two', ' three'], 5), { receiptDomain })
    const adv = new Advertiser(miner, { intervalMs: 500, describe: () => ({ hardware: basicHardware(), models: [SCRIPT_MODEL], queueDepth: 0, maxJobs: 1, tokensPerSecond: 10, imagesPerSecond: 0, price: 1000n, version: 'test', paid: true }) }, silentLogger())
    adv.start()
    stops.push(() => { adv.stop() })
    const paymentsDomain = heuristDomain(d.chainId, d.contracts.Payments)
    const inbox = new VoucherInbox(miner, minerStore, minerChain, silentLogger(), { domain: paymentsDomain, thresholdWei: 0n })
    await inbox.start()

    // the gateway: reads pods from the chain, so a client could name one
    const directory = new PodDirectory(gwChain, silentLogger(), { refreshMs: 500 })
    await directory.start()
    stops.push(() => { directory.stop() })
    expect(directory.list().map(p => p.deployer)).toEqual([squatter.address])
    const gwId = identityFromPrivateKey(gwWallet.privateKey)
    const svc: GatewayService = await startGatewayService({
      identity: gwId,
      store: gwStore,
      logger: silentLogger(),
      listen: ['/ip4/127.0.0.1/tcp/0'],
      bootstrap: [miner.multiaddrs()[0]!],
      devnet: true,
      http: { port: 0 },
      pods: podResolver(directory),
      chain: { voucherSigner: { wallet: gwId.wallet, domain: paymentsDomain }, receiptDomain }
    })
    stops.splice(stops.length - 1, 0, async () => { await svc.stop() })
    expect(await until(() => svc.node.peerTable.miners(SCRIPT_MODEL.id).length === 1, 20_000, 100)).toBe(true)
    const { apiKey } = await svc.accounts.create(10n ** 17n)
    const client = new OpenAI({ apiKey, baseURL: `${svc.gateway.url}/v1`, maxRetries: 0, timeout: 30_000 })

    const before = {
      squatter: await world.heu(squatter.address),
      miner: await world.heu(minerWallet.address),
      gateway: await world.heu(gwWallet.address),
      vault: await world.heu(d.contracts.StakedHeurist),
      deposit: await gwChain.depositOf(gwWallet.address)
    }
    // clients ask for the model by its name and by its id: neither names the squatter's pod
    for (const model of ['scripted', 'scripted', modelId]) {
      const r = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }], max_tokens: 3 })
      expect(r.choices[0]!.message.content).toBe('one two three')
    }
    expect(await until(() => inbox.stats.received === 3, 15_000, 50)).toBe(true)
    await inbox.stop() // redeems whatever is still owed
    const vouchers = await svc.vouchers.all()
    expect(vouchers).toHaveLength(1)
    const v = vouchers[0]!
    expect({ podId: v.podId, podDeployer: v.podDeployer, podBps: v.podBps }).toEqual({ podId: modelId, podDeployer: ZeroAddress, podBps: 0 })
    const paid = v.cumulativeAmount
    expect(paid).toBeGreaterThan(0n)
    expect(await minerChain.redeemable(v)).toBe(0n)

    const fee = paid * BigInt(d.params.protocolFeeBps) / 10_000n
    const frontend = paid * BigInt(d.params.frontendBps) / 10_000n
    expect({
      squatter: await world.heu(squatter.address),
      miner: await world.heu(minerWallet.address),
      gateway: await world.heu(gwWallet.address),
      vault: await world.heu(d.contracts.StakedHeurist),
      deposit: await gwChain.depositOf(gwWallet.address)
    }).toEqual({
      squatter: before.squatter, // nothing
      miner: before.miner + paid - fee - frontend,
      gateway: before.gateway + frontend, // the gateway is its own frontend
      vault: before.vault + fee,
      deposit: before.deposit - paid
    })

    // a voucher signed before the squat named no pod, and one naming the squatter with a share
    // other than the registry's: Payments pays the squatter nothing for either
    for (const [podDeployer, podBps] of [[ZeroAddress, 0], [squatter.address, maxBps - 1]] as const) {
      const hand: Voucher = { payer: gwWallet.address, miner: minerWallet.address, podId: modelId, podDeployer, podBps, pool: 0, frontend: ZeroAddress, cumulativeAmount: HEU }
      const sqBefore = await world.heu(squatter.address)
      await sq.redeemVoucher(hand, await signVoucher(gwWallet, d, hand))
      expect(await world.heu(squatter.address)).toBe(sqBefore)
    }
  }, 90_000)
})
