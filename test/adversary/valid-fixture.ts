/**
 * The validation area's adversary network, on real parts in one process: the EDR devnet with
 * the contracts, a gateway (HTTP + libp2p on 127.0.0.1, vouchers signed for Payments), miners
 * on llama.cpp with the built-in tiny model (each its own engine and context size), and staked
 * validators (the real validator service, and optionally the real epoch service that builds,
 * co-signs and posts reward roots). Attack tests replace a miner's executor or play extra
 * keys on the mesh; everything else is what `heurist up` runs.
 */
import { join } from 'node:path'
import { expect } from 'vitest'
import type { Wallet } from 'ethers'
import { tempDir } from '../helpers.js'
import { testNode, until } from '../p2p/util.js'
import { startDevnet, connectChain, DEFAULT_MIN_COLLATERAL, type Devnet, type ChainClient } from '../../src/chain/index.js'
import { Store } from '../../src/core/store.js'
import { silentLogger } from '../../src/core/logger.js'
import { identityFromPrivateKey } from '../../src/core/identity.js'
import { heuristDomain } from '../../src/core/typed-data.js'
import { startGatewayService, fetchTranscript, type GatewayService, type SignedVoucher } from '../../src/gateway/index.js'
import { createLlamaEngine, ensureTinyModels, type CachedModel, type LlamaEngine, type ModelInfo } from '../../src/inference/index.js'
import { Advertiser, allVerdictTopics, basicHardware, TOPICS, type HeuristNode, type JobExecutor, type ReceiptDomainOptions } from '../../src/p2p/index.js'
import { EpochService } from '../../src/rewards/index.js'
import { FLOOR_WEI_PER_UNIT } from '../../src/economics/index.js'
import { chainSlasher, chainStakeViews, startValidatorService, type GatewayTranscript, type ValidatorService } from '../../src/validation/index.js'

export const logger = silentLogger()

export interface MinerSpec {
  account: number
  /** The miner's llama.cpp context (tokens); default the engine's own (the model's training context). */
  contextSize?: number
  /** Builds what the miner runs; default the honest engine. */
  executor?: (m: { engine: LlamaEngine, info: ModelInfo, honest: JobExecutor }) => JobExecutor
  /** Advertised speed, read at each advert (a prior for miners the gateway has not tried yet). Default 10. */
  speed?: () => number
  /** Whether the miner advertises its model now (read at each advert, every second): routing in tests. Default always. */
  serving?: () => boolean
}

export interface ValidatorSpec {
  account: number
  /** Validator stake (wei); default the minimum. */
  stake?: bigint
  sampleRate: number
  /** Run the epoch service (reward roots) too. */
  epochs?: boolean
  /** The epoch service's chain poll (default 250 ms) and grace (default 1 s). */
  pollMs?: number
  graceMs?: number
  /** Leaves per reward-root gossip message, registered miners per table (default the service's). */
  leavesPerMessage?: number
  maxTableMiners?: number
}

export interface NetSpec {
  miners: MinerSpec[]
  validators: ValidatorSpec[]
  epochSeconds?: bigint
  /** Validators' context size (tokens); default the engine's own. */
  validatorContextSize?: number
  /** Funded dev accounts. Default 16. */
  accounts?: number
  /** Miners and validators also load the built-in tiny-embed (embedding jobs). Default false. */
  embed?: boolean
}

export interface MinerHandle { wallet: Wallet, node: HeuristNode, engine: LlamaEngine, info: ModelInfo, chain: ChainClient, vouchers: SignedVoucher[] }
export interface ValidatorHandle { wallet: Wallet, node: HeuristNode, svc: ValidatorService, epochs: EpochService | null, chain: ChainClient }

export interface Net {
  devnet: Devnet
  domain: ReceiptDomainOptions
  model: CachedModel
  gateway: GatewayService
  gatewayWallet: Wallet
  gatewayChain: ChainClient
  apiKey: string
  /** Every voucher the gateway signed, in order (any miner). */
  vouchers: SignedVoucher[]
  miners: MinerHandle[]
  validators: ValidatorHandle[]
  dir: string
  account: (i: number) => Wallet
  chainOf: (w: Wallet) => Promise<ChainClient>
  /** A plain mesh node with `account`'s key, joined to the gateway and validators. */
  extraNode: (account: number) => Promise<HeuristNode>
  /** POSTs a JSON body to the gateway's API with the test key. */
  post: (path: string, body: unknown) => Promise<Response>
  /** Each miner redeems the latest voucher it got (revenue for the epoch). */
  redeemAll: () => Promise<void>
  /** Waits until every validator's queue of checks is empty. */
  idle: () => Promise<void>
  stop: () => Promise<void>
}

export async function startNet (spec: NetSpec): Promise<Net> {
  const d = await tempDir('heurist-adv-valid-')
  const stops: Array<() => Promise<unknown> | unknown> = []
  const chains: ChainClient[] = []
  const devnet = await startDevnet({ port: 0, accounts: spec.accounts ?? 16, ...(spec.epochSeconds === undefined ? {} : { deploy: { epochSeconds: spec.epochSeconds } }) })
  const dep = devnet.deployment
  const domain = { chainId: dep.chainId, verifyingContract: dep.contracts.Slashing }
  const account = (i: number): Wallet => devnet.accounts[i]! as unknown as Wallet
  const chainOf = async (w: Wallet): Promise<ChainClient> => { const c = await connectChain({ deployment: dep, signer: w }); chains.push(c); return c }
  const stop = async (): Promise<void> => {
    for (const s of stops.reverse()) await Promise.resolve(s()).catch(() => {})
    for (const c of chains) c.close()
    await devnet.stop()
    await d.cleanup()
  }
  try {
    const made = await ensureTinyModels(join(d.dir, 'models'), { names: spec.embed === true ? ['tiny-llama', 'tiny-embed'] : ['tiny-llama'] })
    const m = made.find(x => x.name === 'tiny-llama')!
    const embedModel = made.find(x => x.name === 'tiny-embed')

    const miners: MinerHandle[] = []
    const seeds: string[] = []
    for (const s of spec.miners) {
      const wallet = account(s.account)
      const chain = await chainOf(wallet)
      await chain.register(DEFAULT_MIN_COLLATERAL)
      const engine = createLlamaEngine({ gpu: 'cpu', threads: 1, parallel: 1, maxQueue: 64, ...(s.contextSize === undefined ? {} : { contextSize: s.contextSize }) })
      const info = await engine.load(m.path, { id: m.id, name: m.name })
      const served = embedModel === undefined ? [info] : [info, await engine.load(embedModel.path, { id: embedModel.id, name: embedModel.name })]
      const honest: JobExecutor = {
        models: () => served,
        async execute (job, o) {
          if (job.kind === 'embedding') return { kind: 'embedding', result: await engine.embed(job.modelId, job.input, { signal: o.signal }) }
          if (job.kind !== 'llm') throw new Error('llm only')
          return { kind: 'llm', result: await engine.generate({ modelId: job.modelId, input: job.input, sampling: job.sampling, ...(job.constraint === undefined ? {} : { constraint: job.constraint }) }, { signal: o.signal, onToken: o.onToken }) }
        }
      }
      const node = await testNode({ identity: identityFromPrivateKey(wallet.privateKey), bootstrap: seeds.slice(0, 1) })
      seeds.push(node.multiaddrs()[0]!)
      await node.serveJobs(s.executor?.({ engine, info, honest }) ?? honest, { receiptDomain: domain })
      const adv = new Advertiser(node, { intervalMs: 1000, describe: () => ({ hardware: basicHardware(), models: s.serving?.() === false ? [] : served, queueDepth: 0, maxJobs: 1, tokensPerSecond: s.speed?.() ?? 10, imagesPerSecond: 0, price: FLOOR_WEI_PER_UNIT.llama, version: 'test', paid: true }) }, logger)
      adv.start()
      miners.push({ wallet, node, engine, info, chain, vouchers: [] })
      stops.push(async () => { adv.stop(); await node.stop(); await engine.stop() })
    }

    const allVouchers: SignedVoucher[] = []
    const gatewayWallet = account(1)
    const gatewayChain = await chainOf(gatewayWallet)
    await gatewayChain.deposit(100n * 10n ** 18n)
    const gwViews = chainStakeViews(gatewayChain, 0)
    const gwStore = await Store.open(join(d.dir, 'gateway'))
    stops.push(async () => { await gwStore.close() })
    const gwId = identityFromPrivateKey(gatewayWallet.privateKey)
    const gateway = await startGatewayService({
      identity: gwId,
      store: gwStore,
      logger,
      listen: ['/ip4/127.0.0.1/tcp/0'],
      bootstrap: seeds.slice(0, 1),
      devnet: true,
      http: { port: 0 },
      chain: { voucherSigner: { wallet: gwId.wallet, domain: heuristDomain(dep.chainId, dep.contracts.Payments) }, receiptDomain: domain },
      deliverVoucher: (c, v) => { allVouchers.push(v); miners.find(x => x.wallet.address.toLowerCase() === c.address.toLowerCase())?.vouchers.push(v) },
      isValidator: async (x) => await gwViews.stakeOf(x) > 0n
    })
    stops.push(async () => { await gateway.stop() })
    const apiKey = (await gateway.accounts.create(10n ** 18n)).apiKey

    const vEngine = createLlamaEngine({ gpu: 'cpu', threads: 1, parallel: 1, maxQueue: 256, ...(spec.validatorContextSize === undefined ? {} : { contextSize: spec.validatorContextSize }) })
    await vEngine.load(m.path, { id: m.id, name: m.name })
    if (embedModel !== undefined) await vEngine.load(embedModel.path, { id: embedModel.id, name: embedModel.name })
    stops.push(async () => { await vEngine.stop() })
    const validators: ValidatorHandle[] = []
    for (const s of spec.validators) {
      const wallet = account(s.account)
      const chain = await chainOf(wallet)
      await chain.registerValidator(s.stake ?? BigInt(dep.params.minValidatorStake))
      const node = await testNode({ identity: identityFromPrivateKey(wallet.privateKey), bootstrap: [gateway.node.multiaddrs()[0]!, ...validators.map(v => v.node.multiaddrs()[0]!)] })
      let epochs: EpochService | null = null
      if (s.epochs === true) {
        const store = await Store.open(join(d.dir, `v${s.account}`))
        epochs = new EpochService({ node, chain, wallet, store, logger, rewardsDir: join(d.dir, `v${s.account}`, 'rewards') }, { pollMs: s.pollMs ?? 250, republishMs: 500, graceMs: s.graceMs ?? 1000, ...(s.leavesPerMessage === undefined ? {} : { leavesPerMessage: s.leavesPerMessage }), ...(s.maxTableMiners === undefined ? {} : { maxTableMiners: s.maxTableMiners }) })
        await epochs.start()
        const e = epochs
        stops.push(async () => { await e.stop(); await store.close() })
      }
      const e = epochs
      const svc = startValidatorService({
        node,
        wallet,
        domain,
        logger,
        llm: vEngine,
        rerunImage: null,
        ...chainStakeViews(chain, 0),
        slash: chainSlasher(chain),
        fetchFromGateway: async (peer, jobId, signal) => await fetchTranscript(node, peer, jobId, { signal }) as GatewayTranscript,
        options: { sampleRate: s.sampleRate },
        onVerdict: m => { e?.recordVerdict(m).catch(() => {}) }
      })
      validators.push({ wallet, node, svc, epochs, chain })
      stops.push(async () => { svc.stop(); await node.stop() })
    }
    const meshed = await until(() => gateway.node.peerTable.miners().length >= miners.length &&
      validators.every(v => gateway.node.pubsub.getSubscribers(TOPICS.receipts).some(p => p.equals(v.node.peerId))) &&
      validators.every(v => allVerdictTopics().every(t => v.node.pubsub.getSubscribers(t).length >= validators.length - 1)), 60_000, 100)
    if (!meshed) throw new Error('the adversary mesh did not form in 60 s')

    return {
      devnet,
      domain,
      model: m,
      gateway,
      gatewayWallet,
      gatewayChain,
      apiKey,
      vouchers: allVouchers,
      miners,
      validators,
      dir: d.dir,
      account,
      chainOf,
      async extraNode (i) {
        const node = await testNode({ identity: identityFromPrivateKey(account(i).privateKey), bootstrap: [gateway.node.multiaddrs()[0]!, ...validators.map(v => v.node.multiaddrs()[0]!)] })
        stops.push(async () => { await node.stop() })
        return node
      },
      async post (path, body) {
        return await fetch(`${gateway.gateway.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' }, body: JSON.stringify(body) })
      },
      async redeemAll () {
        for (const mh of miners) {
          const v = mh.vouchers.at(-1)
          if (v === undefined) continue
          const { signature, ...voucher } = v
          await mh.chain.redeemVoucher(voucher, signature)
        }
      },
      async idle () { for (const v of validators) await v.svc.validator.idle() },
      stop
    }
  } catch (e) {
    await stop()
    throw e
  }
}

/** A miner's collateral in NodeRegistry, read through the gateway's chain client. */
/** Waits until the gateway's only candidate for the net's model is miner `m` (its adverts say it serves alone). */
export async function expectOnlyCandidate (net: Net, m: number): Promise<void> {
  expect(await until(() => { const cs = net.gateway.backend.candidates(net.model.id); return cs.length === 1 && cs[0]!.address === net.miners[m]!.wallet.address }, 15_000, 100)).toBe(true)
}

export async function collateralOf (net: Net, address: string): Promise<bigint> {
  return await net.gatewayChain.read<bigint>(net.gatewayChain.contracts.nodes, 'collateralOf', [address])
}

/** The first validator passes at least `jobs` of the honest miner's jobs, fails none, blames no gateway; its collateral is untouched. */
export async function expectHonestKept (net: Net, o: { jobs: number, honest: MinerHandle, before: bigint }): Promise<void> {
  const stats = net.validators[0]!.svc.validator.stats
  expect(await until(() => stats.passed >= o.jobs, 60_000, 100)).toBe(true)
  await net.idle()
  expect(stats.failed).toBe(0)
  expect(stats.gatewayBlamed).toBe(0)
  expect(await collateralOf(net, o.honest.wallet.address)).toBe(o.before)
}

/**
 * The first validator fails the cheater's jobs, alone or through its window test (never the
 * gateway), and submits one slash: the cheater loses F (bps) of its collateral to the wei; the
 * honest miner keeps all of its own.
 */
export async function expectSlashedOnce (net: Net, o: { cheater: MinerHandle, before: bigint, fBps: bigint, honest: MinerHandle, honestBefore: bigint }): Promise<void> {
  expect(await until(async () => await collateralOf(net, o.cheater.wallet.address) < o.before, 60_000, 200)).toBe(true)
  await net.idle()
  const stats = net.validators[0]!.svc.validator.stats
  expect(stats.gatewayBlamed).toBe(0)
  expect(stats.failed + stats.windowsFailed).toBeGreaterThan(0)
  expect(stats.slashesSubmitted).toBe(1)
  expect(await collateralOf(net, o.cheater.wallet.address)).toBe(o.before - o.before * o.fBps / 10_000n)
  expect(await collateralOf(net, o.honest.wallet.address)).toBe(o.honestBefore)
}
