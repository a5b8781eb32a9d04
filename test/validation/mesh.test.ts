import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import type { Wallet } from 'ethers'
import { tempDir } from '../helpers.js'
import { testNode, until } from '../p2p/util.js'
import { startDevnet, connectChain, DEFAULT_MIN_COLLATERAL, type Devnet, type ChainClient } from '../../src/chain/index.js'
import { Store } from '../../src/core/store.js'
import { silentLogger } from '../../src/core/logger.js'
import { identityFromPrivateKey } from '../../src/core/identity.js'
import { heuristDomain } from '../../src/core/typed-data.js'
import { startGatewayService, fetchTranscript, type GatewayService } from '../../src/gateway/index.js'
import { createLlamaEngine, ensureTinyModels, type LlamaEngine } from '../../src/inference/index.js'
import { Advertiser, allVerdictTopics, basicHardware, type HeuristNode } from '../../src/p2p/index.js'
import { cheatingExecutor, chainSlasher, chainStakeViews, startValidatorService, type GatewayTranscript, type ValidatorService } from '../../src/validation/index.js'
import { honestLlmExecutor } from './fixtures.js'

// The done-when scenario on real parts in one process: EDR devnet with the contracts, a
// gateway (HTTP + libp2p on 127.0.0.1), an honest miner and a `wrong-model` cheater on
// llama.cpp, three staked validators; receipts, transcripts and verdicts travel over libp2p.
describe('three validators on the mesh slash a wrong-model miner', () => {
  let cleanup: () => Promise<void>
  let devnet: Devnet
  const stops: Array<() => Promise<unknown> | unknown> = []
  const chains: ChainClient[] = []
  let gateway: GatewayService
  let validators: ValidatorService[]
  let apiKey: string
  let favoured = 2
  let modelA = ''
  const F = 5000n

  const chainOf = async (w: Wallet): Promise<ChainClient> => { const c = await connectChain({ deployment: devnet.deployment, signer: w }); chains.push(c); return c }
  const account = (i: number): Wallet => devnet.accounts[i]! as unknown as Wallet

  beforeAll(async () => {
    const d = await tempDir()
    cleanup = d.cleanup
    devnet = await startDevnet({ port: 0 })
    const dep = devnet.deployment
    const domain = { chainId: dep.chainId, verifyingContract: dep.contracts.Slashing }
    const made = await ensureTinyModels(`${d.dir}/models`, { names: ['tiny-llama', 'tiny-llama-b'] })
    const a = made.find(m => m.name === 'tiny-llama')!
    const b = made.find(m => m.name === 'tiny-llama-b')!
    modelA = a.id

    // miners 2 (honest) and 3 (cheater), both claiming tiny-llama; only the favoured one
    // advertises it, so the gateway sends it the jobs
    const miners: HeuristNode[] = []
    for (const [i, cheat] of [[2, false], [3, true]] as const) {
      await (await chainOf(account(i))).register(DEFAULT_MIN_COLLATERAL)
      const engine: LlamaEngine = createLlamaEngine({ gpu: 'cpu', threads: 1, parallel: 1, maxQueue: 64 })
      const infoA = await engine.load(a.path, { id: a.id, name: a.name })
      if (cheat) await engine.load(b.path, { id: b.id, name: b.name })
      const honest = honestLlmExecutor(engine, [infoA])
      const node = await testNode({ identity: identityFromPrivateKey(devnet.accounts[i]!.privateKey), ...(miners.length > 0 ? { bootstrap: [miners[0]!.multiaddrs()[0]!] } : {}) })
      await node.serveJobs(cheat ? cheatingExecutor('wrong-model', { llm: engine, images: new Map(), models: [infoA], honest }) : honest, { receiptDomain: domain })
      const adv = new Advertiser(node, { intervalMs: 1000, describe: () => ({ hardware: basicHardware(), models: favoured === i ? [infoA] : [], queueDepth: 0, maxJobs: 1, tokensPerSecond: favoured === i ? 20 : 10, imagesPerSecond: 0, price: 1n, version: 'test', paid: true }) }, silentLogger())
      adv.start()
      miners.push(node)
      stops.push(async () => { adv.stop(); await node.stop(); await engine.stop() })
    }

    // the gateway serves transcripts to staked validators
    const gwChain = await chainOf(account(1))
    await gwChain.deposit(10n ** 18n)
    const gwViews = chainStakeViews(gwChain, 0)
    const gwStore = await Store.open(`${d.dir}/gateway`)
    stops.push(async () => { await gwStore.close() })
    const gwId = identityFromPrivateKey(devnet.accounts[1]!.privateKey)
    gateway = await startGatewayService({
      identity: gwId,
      store: gwStore,
      logger: silentLogger(),
      listen: ['/ip4/127.0.0.1/tcp/0'],
      bootstrap: [miners[0]!.multiaddrs()[0]!],
      devnet: true,
      http: { port: 0 },
      chain: { voucherSigner: { wallet: gwId.wallet, domain: heuristDomain(dep.chainId, dep.contracts.Payments) }, receiptDomain: domain },
      deliverVoucher: () => {},
      isValidator: async (x) => await gwViews.stakeOf(x) > 0n
    })
    stops.push(async () => { await gateway.stop() })
    apiKey = (await gateway.accounts.create(10n ** 17n)).apiKey

    // three validators, equal stake, one shared engine (the suite has 2 cores)
    const vEngine = createLlamaEngine({ gpu: 'cpu', threads: 1, parallel: 1, maxQueue: 256 })
    await vEngine.load(a.path, { id: a.id, name: a.name })
    stops.push(async () => { await vEngine.stop() })
    validators = []
    const vNodes: HeuristNode[] = []
    for (const i of [4, 5, 6]) {
      const c = await chainOf(account(i))
      await c.registerValidator(DEFAULT_MIN_COLLATERAL)
      const node = await testNode({ identity: identityFromPrivateKey(devnet.accounts[i]!.privateKey), bootstrap: [gateway.node.multiaddrs()[0]!, ...vNodes.map(n => n.multiaddrs()[0]!)] })
      vNodes.push(node)
      const svc = startValidatorService({
        node,
        wallet: account(i),
        domain,
        logger: silentLogger(),
        llm: vEngine,
        rerunImage: null,
        ...chainStakeViews(c, 0),
        slash: chainSlasher(c),
        fetchFromGateway: async (peer, jobId, signal) => await fetchTranscript(node, peer, jobId, { signal }) as GatewayTranscript,
        options: { sampleRate: 0.5 }
      })
      validators.push(svc)
      stops.push(async () => { svc.stop(); await node.stop() })
    }
    const meshed = await until(() => gateway.node.peerTable.miners().length >= 2 && vNodes.every(n => allVerdictTopics().every(t => n.pubsub.getSubscribers(t).length >= 2)), 30_000, 100)
    if (!meshed) throw new Error('the test mesh did not form in 30 s')
  }, 180_000)

  afterAll(async () => {
    for (const s of stops.reverse()) await Promise.resolve(s()).catch(() => {})
    for (const c of chains) c.close()
    await devnet?.stop()
    await cleanup?.()
  })

  it('drops the cheater\'s collateral by F after enough sampled jobs; the honest miner keeps all of it', async () => {
    const collateral = async (i: number): Promise<bigint> => await chains[0]!.read<bigint>(chains[0]!.contracts.nodes, 'collateralOf', [devnet.accounts[i]!.address])
    const c0 = await collateral(3)
    const h0 = await collateral(2)
    const slashed = async (): Promise<boolean> => await collateral(3) < c0
    const complete = async (i: number): Promise<void> => {
      const r = await fetch(`${gateway.gateway.url}/v1/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'tiny-llama', prompt: `job ${i}:`, max_tokens: 16, seed: i })
      })
      expect(r.status).toBe(200)
      await r.json()
    }
    const favour = async (i: number): Promise<void> => {
      favoured = i
      // the gateway ranks by the speed it observed, so only the favoured miner advertises the model
      const routed = await until(() => { const cs = gateway.backend.candidates(modelA); return cs.length === 1 && cs[0]!.address === devnet.accounts[i]!.address }, 15_000, 100)
      expect(routed).toBe(true)
    }
    // the honest miner first: its jobs are sampled and pass
    await favour(2)
    for (let i = 0; i < 12; i++) await complete(i)
    for (const v of validators) await v.validator.idle()
    expect(validators.reduce((s, v) => s + v.validator.stats.passed, 0)).toBeGreaterThan(0)
    expect(await collateral(2)).toBe(h0)
    // then the cheater, until the quorum slashes it
    await favour(3)
    for (let i = 100; i < 160 && !await slashed(); i++) await complete(i)
    expect(await until(slashed, 60_000, 200)).toBe(true)
    // each slash takes F of the collateral; the quorum's validators then leave this miner
    // alone for the cooldown, so a second slash happens only when two quorums formed at once
    await new Promise(resolve => setTimeout(resolve, 1000))
    const events = await chains[0]!.contracts.slashing.queryFilter(chains[0]!.contracts.slashing.filters.MinerSlashed!(devnet.accounts[3]!.address))
    expect(events.length).toBeGreaterThanOrEqual(1)
    expect(events.length).toBeLessThanOrEqual(2)
    let expected = c0
    for (let k = 0; k < events.length; k++) expected -= expected * F / 10_000n
    expect(await collateral(3)).toBe(expected)
    expect(await collateral(2)).toBe(h0)
    const stats = validators.map(v => v.validator.stats)
    // the API's default sampling (top-k off, top-p 1) puts every token in the support, so the
    // other model's text is caught by the window test over the sampled jobs, not token by token
    expect(stats.reduce((s, x) => s + x.slashesSubmitted, 0)).toBe(events.length)
    expect(stats.reduce((s, x) => s + x.sampled, 0)).toBeGreaterThan(0)
    expect(stats.every(x => x.gatewayBlamed === 0)).toBe(true)
  }, 240_000)
})
