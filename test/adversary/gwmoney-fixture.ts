import OpenAI from 'openai'
import type { Wallet } from 'ethers'
import type { Stream } from '@libp2p/interface'
import {
  Advertiser, JOB_PROTOCOL, MAX_BYTES, PROTOCOL_VERSION, basicHardware, depositAdmission, requestFrameSchema, signReceipt,
  inputHashOf, paramsHashOf, outputHashOf, type HeuristNode, type JobServer, type RequestFrame
} from '../../src/p2p/index.js'
import { FrameStream } from '../../src/p2p/frames.js'
import { startDevnet, connectChain, minerEligibility, depositReader, type Devnet, type ChainClient, type Deployment } from '../../src/chain/index.js'
import { Store } from '../../src/core/store.js'
import { silentLogger } from '../../src/core/logger.js'
import { identityFromPrivateKey, addressFromPeerId, type Identity } from '../../src/core/identity.js'
import { heuristDomain, POOL } from '../../src/core/typed-data.js'
import { startGatewayService, VoucherInbox, type GatewayService, type GatewayOptions, type PayByUserOptions, type PodResolver } from '../../src/gateway/index.js'
import { llmComputeUnits, modelWeightGib, promptUnits } from '../../src/economics/index.js'
import type { ModelInfo } from '../../src/inference/types.js'
import { tempDir } from '../helpers.js'
import { testNode, randomIdentity, until } from '../p2p/util.js'
import { ScriptedExecutor, SCRIPT_MODEL } from '../p2p/scripted-executor.js'

/**
 * The money-at-the-gateway attack bench: the embedded devnet with the contracts, a real gateway
 * (HTTP + libp2p) whose Payments deposit backs its API keys and which routes only to registered
 * miners, honest miners (real job servers that admit only funded requesters, with voucher
 * inboxes that redeem on chain), and rogue miners: real libp2p nodes that publish adverts they
 * choose and answer the job protocol as they like (silent, or with a receipt billing whatever
 * they want, signed with their own key).
 */
/** Adverts live 10 s: on a loaded test machine a 1.5 s TTL lets a live miner drop out of routing between two adverts. */
const ADVERT_TTL_MS = 10_000

export interface Bench {
  devnet: Devnet
  d: Deployment
  gw: GatewayService
  gwWallet: Wallet
  gwChain: ChainClient
  /** A chain client for dev account `i`. */
  chainOf: (i: number) => Promise<ChainClient>
  client: (apiKey: string) => OpenAI
  /** Runs `fn` at teardown (reverse order). */
  defer: (fn: () => Promise<unknown> | unknown) => void
  stop: () => Promise<void>
}

export interface BenchOptions {
  /** HEU wei the gateway deposits in Payments (backs its keys). */
  gatewayDeposit: bigint
  http?: Partial<GatewayOptions>
  /** Pay-by-User on (callers without a key pay from their own deposit), with these options. Absent: off. */
  payByUser?: Partial<PayByUserOptions>
  /** Pods the gateway resolves (a request may name one). Default none. */
  pods?: PodResolver
}

export async function startBench (o: BenchOptions): Promise<Bench> {
  const stops: Array<() => Promise<unknown> | unknown> = []
  const defer = (fn: () => Promise<unknown> | unknown): void => { stops.push(fn) }
  const stop = async (): Promise<void> => {
    for (const s of stops.reverse()) await Promise.resolve().then(s).catch(() => {})
    stops.length = 0
  }
  try {
    const devnet = await startDevnet({ port: 0 })
    defer(async () => { await devnet.stop() })
    const d = devnet.deployment
    const clients: ChainClient[] = []
    defer(() => { clients.forEach(c => { c.close() }) })
    const chainOf = async (i: number): Promise<ChainClient> => {
      const c = await connectChain({ deployment: d, signer: devnet.accounts[i]! })
      clients.push(c)
      return c
    }
    const gwWallet = devnet.accounts[1]!
    const gwChain = await chainOf(1)
    const gw = await startGateway({ devnet, d, chainOf, defer }, 1, o.gatewayDeposit, o.http ?? {}, [], o.payByUser, o.pods)
    const client = (apiKey: string): OpenAI => new OpenAI({ apiKey, baseURL: `${gw.gateway.url}/v1`, maxRetries: 0, timeout: 150_000 })
    return { devnet, d, gw, gwWallet, gwChain, chainOf, client, defer, stop }
  } catch (e) {
    await stop()
    throw e
  }
}

/**
 * A gateway whose operator is dev account `i`, with `deposit` wei in Payments (0: none), routing
 * only to registered miners. Torn down with the bench.
 */
export async function startGateway (b: Pick<Bench, 'devnet' | 'd' | 'chainOf' | 'defer'>, i: number, deposit: bigint, http: Partial<GatewayOptions> = {}, bootstrap: string[] = [], payByUser?: Partial<PayByUserOptions>, pods?: PodResolver): Promise<GatewayService> {
  const wallet = b.devnet.accounts[i]!
  const chain = await b.chainOf(i)
  if (deposit > 0n) await chain.deposit(deposit)
  const t = await tempDir('heurist-adv-gw-')
  b.defer(t.cleanup)
  const store = await Store.open(t.dir)
  b.defer(async () => { await store.close() })
  const id = identityFromPrivateKey(wallet.privateKey)
  const gw = await startGatewayService({
    identity: id,
    store,
    logger: silentLogger(),
    listen: ['/ip4/127.0.0.1/tcp/0'],
    bootstrap,
    devnet: true,
    http: { port: 0, ...http },
    chain: { voucherSigner: { wallet: id.wallet, domain: heuristDomain(b.d.chainId, b.d.contracts.Payments) }, receiptDomain: receiptDomainOf(b.d) },
    eligible: minerEligibility(chain).isEligible,
    ...(pods === undefined ? {} : { pods }),
    ...(payByUser === undefined ? {} : { payByUser: { chain, asset: b.d.contracts.HeuristToken, withdrawDelaySeconds: BigInt(b.d.params.withdrawDelay), options: payByUser } })
  })
  b.defer(async () => { await gw.stop() })
  return gw
}

export function receiptDomainOf (d: Deployment): { chainId: number, verifyingContract: string } {
  return { chainId: d.chainId, verifyingContract: d.contracts.Slashing }
}

export interface HonestMiner {
  node: HeuristNode
  wallet: Wallet
  chain: ChainClient
  exec: ScriptedExecutor
  server: JobServer
  inbox: VoucherInbox
}

/** A registered miner (dev account `i`) serving the scripted model at `price` wei per unit, admitting only funded requesters. */
export async function startHonestMiner (b: Bench, i: number, price: bigint, exec = new ScriptedExecutor(['one', ' two', ' three'], 5)): Promise<HonestMiner> {
  const wallet = b.devnet.accounts[i]!
  const chain = await b.chainOf(i)
  await chain.register(BigInt(b.d.params.minCollateral))
  const node = await testNode({ identity: identityFromPrivateKey(wallet.privateKey), bootstrap: [b.gw.node.multiaddrs()[0]!] })
  b.defer(async () => { await node.stop() })
  const server = await node.serveJobs(exec, { receiptDomain: receiptDomainOf(b.d), maxConcurrentJobs: 4, admit: depositAdmission({ depositOf: depositReader(chain), pricePerUnit: () => price }) })
  const adv = new Advertiser(node, { intervalMs: 500, ttlMs: ADVERT_TTL_MS, describe: () => ({ hardware: basicHardware(), models: [SCRIPT_MODEL], queueDepth: 0, maxJobs: 4, tokensPerSecond: 10, imagesPerSecond: 0, price, version: 'test', paid: true }) }, silentLogger())
  adv.start()
  b.defer(() => { adv.stop() })
  const t = await tempDir('heurist-adv-miner-')
  b.defer(t.cleanup)
  const store = await Store.open(t.dir)
  b.defer(async () => { await store.close() })
  // redeems when told (stop), or when the chain passes an epoch's end: balances move at a point the test chooses
  const inbox = new VoucherInbox(node, store, chain, silentLogger(), { domain: heuristDomain(b.d.chainId, b.d.contracts.Payments), thresholdWei: 10n ** 30n })
  await inbox.start()
  b.defer(async () => { await inbox.stop() })
  return { node, wallet, chain, exec, server, inbox }
}

export type RogueBehaviour =
  /** accepts the stream and never answers */
  | { kind: 'silent' }
  /** serves the scripted words honestly, but signs a receipt claiming `units(job)` compute units */
  | { kind: 'overbill', units: (job: RequestFrame) => bigint }

export interface RogueMiner {
  node: HeuristNode
  identity: Identity
  /** Job requests that reached it. */
  requests: RequestFrame[]
}

/**
 * A rogue miner: a real libp2p node that advertises whatever it likes (price, speed) and answers
 * the job protocol with its own code. `register`: dev account index to register with collateral
 * (the rogue's key is then that account's); absent: a fresh, unregistered key.
 */
export async function startRogueMiner (b: Bench, o: { register?: number, price: bigint, tokensPerSecond: number, behaviour: RogueBehaviour }): Promise<RogueMiner> {
  let identity: Identity
  if (o.register !== undefined) {
    const wallet = b.devnet.accounts[o.register]!
    await (await b.chainOf(o.register)).register(BigInt(b.d.params.minCollateral))
    identity = identityFromPrivateKey(wallet.privateKey)
  } else {
    identity = randomIdentity()
  }
  const node = await testNode({ identity, bootstrap: [b.gw.node.multiaddrs()[0]!] })
  b.defer(async () => { await node.stop() })
  const requests: RequestFrame[] = []
  await node.libp2p.handle(JOB_PROTOCOL, (stream: Stream, connection) => {
    void rogueServe(stream, connection.remotePeer.toString(), identity, b.d, o.behaviour, requests).catch(() => {})
  }, { runOnLimitedConnection: true })
  const model: ModelInfo = SCRIPT_MODEL
  const adv = new Advertiser(node, { intervalMs: 500, ttlMs: ADVERT_TTL_MS, describe: () => ({ hardware: basicHardware(), models: [model], queueDepth: 0, maxJobs: 4, tokensPerSecond: o.tokensPerSecond, imagesPerSecond: 0, price: o.price, version: 'test', paid: true }) }, silentLogger())
  adv.start()
  b.defer(() => { adv.stop() })
  return { node, identity, requests }
}

async function rogueServe (stream: Stream, remotePeer: string, identity: Identity, d: Deployment, behaviour: RogueBehaviour, requests: RequestFrame[]): Promise<void> {
  const frames = new FrameStream(stream, MAX_BYTES.request)
  const request = await frames.next(requestFrameSchema, MAX_BYTES.request, 'job request')
  if (request === null) return
  requests.push(request)
  frames.write({ v: PROTOCOL_VERSION, type: 'accepted', jobId: request.jobId, queued: 0 })
  await frames.flush()
  if (behaviour.kind === 'silent' || request.kind !== 'llm') return // holds the stream open, says nothing more
  const words = ['one', ' two', ' three'].slice(0, request.sampling.maxTokens)
  for (let i = 0; i < words.length; i++) frames.write({ v: PROTOCOL_VERSION, type: 'token', text: words[i], id: i })
  const text = words.join('')
  // everything the receipt commits to is what an honest miner would send; only the units lie
  const out = { kind: 'llm' as const, result: { text, tokens: words.map((_, i) => i), finishReason: 'length' as const, contextSize: SCRIPT_MODEL.contextSize, usage: { promptTokens: 1, outputTokens: words.length, ttftMs: 1, tokensPerSecond: 1000, totalMs: 3 } } }
  frames.write({ v: PROTOCOL_VERSION, type: 'result', kind: 'llm', text, tokens: out.result.tokens, finishReason: 'length', contextSize: out.result.contextSize, usage: out.result.usage })
  const now = BigInt(Math.floor(Date.now() / 1000))
  const signed = await signReceipt(identity.wallet, {
    jobId: request.jobId,
    requester: addressFromPeerId(remotePeer)!,
    miner: identity.address,
    modelId: '0x' + request.modelId,
    pool: POOL.llm,
    inputHash: inputHashOf(request),
    outputHash: outputHashOf(out),
    paramsHash: paramsHashOf(request),
    computeUnits: behaviour.units(request),
    startedAt: now,
    endedAt: now
  }, receiptDomainOf(d))
  frames.write({ v: PROTOCOL_VERSION, type: 'receipt', signed })
  await frames.flush()
  await stream.close().catch(() => {})
}

/** Units an honest miner bills for a scripted job that delivered `tokens` tokens (economics/compute-units, the scripted model's weight). */
export function honestUnits (input: string | Array<{ role: string, content: string }>, tokens: number): bigint {
  return llmComputeUnits(modelWeightGib(SCRIPT_MODEL.memoryBytes), promptUnits(input), tokens)
}

/** Waits until the gateway hears adverts from all of `nodes`. */
export async function heardAll (b: Bench, nodes: HeuristNode[], timeoutMs = 30_000): Promise<boolean> {
  return await until(() => {
    const seen = new Set(b.gw.node.peerTable.miners(SCRIPT_MODEL.id).map(m => m.address.toLowerCase()))
    return nodes.every(n => seen.has(n.address.toLowerCase()))
  }, timeoutMs, 100)
}

/** Sum of every voucher the gateway signed. */
export async function signedTotal (b: Bench): Promise<bigint> {
  return (await b.gw.vouchers.all()).reduce((s, v) => s + v.cumulativeAmount, 0n)
}
