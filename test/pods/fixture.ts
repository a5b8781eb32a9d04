import { createServer, type Server } from 'node:http'
import { createHash } from 'node:crypto'
import type { Wallet } from 'ethers'
import { Advertiser, basicHardware, type HeuristNode } from '../../src/p2p/index.js'
import { startDevnet, connectChain, type Devnet, type ChainClient } from '../../src/chain/index.js'
import { Store } from '../../src/core/store.js'
import { silentLogger } from '../../src/core/logger.js'
import { identityFromPrivateKey } from '../../src/core/identity.js'
import { heuristDomain } from '../../src/core/typed-data.js'
import { startGatewayService, type GatewayService } from '../../src/gateway/index.js'
import { buildTinyLlama, tinyLlamaSpecs, createImageEngine, createLlamaEngine, type ImageEngine, type LlamaEngine } from '../../src/inference/index.js'
import { startPodHost, podResolver, PodDirectory, type PodBudget, type PodHost, type PodManagerOptions } from '../../src/pods/index.js'
import { testNode, until } from '../p2p/util.js'

/**
 * A whole pod network on one machine, all real parts: the EDR devnet with the contracts, an
 * HTTP server for the weights, three miners (libp2p on 127.0.0.1, llama.cpp, one thread each)
 * running the pod host, and a gateway whose `model` may name a pod.
 */

/** Tiny llama weights, distinct per seed (so each pod has its own sha256). */
export function tinyWeights (seed: number): { bytes: Buffer, sha256: string } {
  const bytes = Buffer.from(buildTinyLlama({ ...tinyLlamaSpecs[0]!, seed }))
  return { bytes, sha256: createHash('sha256').update(bytes).digest('hex') }
}

export interface WeightsServer { url: (path: string) => string, put: (path: string, bytes: Buffer) => void, hits: Map<string, number>, ranges: Array<{ path: string, from: number }>, close: () => Promise<void> }

export async function weightsServer (): Promise<WeightsServer> {
  const files = new Map<string, Buffer>()
  const hits = new Map<string, number>()
  const ranges: WeightsServer['ranges'] = []
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!
    hits.set(path, (hits.get(path) ?? 0) + 1)
    const f = files.get(path)
    if (f === undefined) { res.writeHead(404).end(); return }
    // resumable downloads: `Range: bytes=N-` gets the rest (206), or 416 past the end
    const range = /^bytes=(\d+)-$/.exec(String(req.headers.range ?? ''))
    if (range !== null) {
      const from = Number(range[1])
      ranges.push({ path, from })
      if (from >= f.length) { res.writeHead(416, { 'content-range': `bytes */${f.length}` }).end(); return }
      res.writeHead(206, { 'content-length': f.length - from, 'content-range': `bytes ${from}-${f.length - 1}/${f.length}`, 'content-type': 'application/octet-stream' }).end(f.subarray(from))
      return
    }
    res.writeHead(200, { 'content-length': f.length, 'content-type': 'application/octet-stream' }).end(f)
  })
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  return {
    url: path => `http://127.0.0.1:${port}${path}`,
    put: (path, bytes) => { files.set(path, bytes) },
    hits,
    ranges,
    close: async () => { server.closeAllConnections(); await new Promise(resolve => server.close(resolve)) }
  }
}

export interface Miner { wallet: Wallet, node: HeuristNode, host: PodHost, engine: () => LlamaEngine, stop: () => Promise<void> }

export interface PodNet {
  devnet: Devnet
  weights: WeightsServer
  miners: Miner[]
  gateway: GatewayService
  gatewayDirectory: PodDirectory
  chainOf: (w: Wallet) => Promise<ChainClient>
  stop: () => Promise<void>
}

export async function startPodNet (dir: string, options: { miners?: number, manager?: Partial<PodManagerOptions>, vramMb?: (i: number) => number, budget?: (i: number) => PodBudget | undefined } = {}): Promise<PodNet> {
  const stops: Array<() => Promise<unknown> | unknown> = []
  const stop = async (): Promise<void> => { for (const s of stops.reverse()) await Promise.resolve(s()).catch(() => {}) }
  try {
    const devnet = await startDevnet({ port: 0 })
    stops.push(async () => { await devnet.stop() })
    const d = devnet.deployment
    const chains: ChainClient[] = []
    stops.push(() => { for (const c of chains) c.close() })
    const chainOf = async (w: Wallet): Promise<ChainClient> => { const c = await connectChain({ deployment: d, signer: w }); chains.push(c); return c }
    const weights = await weightsServer()
    stops.push(weights.close)
    const receiptDomain = { chainId: d.chainId, verifyingContract: d.contracts.Slashing }

    const miners: Miner[] = []
    const n = options.miners ?? 3
    for (let i = 0; i < n; i++) {
      const wallet = devnet.accounts[2 + i]!
      const node = await testNode({ identity: identityFromPrivateKey(wallet.privateKey), ...(miners.length > 0 ? { bootstrap: [miners[0]!.node.multiaddrs()[0]!] } : {}) })
      let engine: LlamaEngine | null = null
      const llm = (): LlamaEngine => (engine ??= createLlamaEngine({ threads: 1, parallel: 1, gpu: 'cpu' }))
      let imageEngine: ImageEngine | null = null
      const images = (): ImageEngine => (imageEngine ??= createImageEngine({ threads: 1, executionProvider: 'cpu' }))
      let advertiser: Advertiser | null = null
      const host = await startPodHost({
        node,
        chain: await chainOf(wallet),
        cacheDir: `${dir}/miner${i}/models`,
        llm,
        images,
        ...(options.budget?.(i) === undefined ? {} : { budget: options.budget(i)! }),
        vramMb: options.vramMb?.(i) ?? 0,
        logger: silentLogger(),
        directory: { refreshMs: 400 },
        manager: { tickMs: 250, ...options.manager, policy: { idleMs: 3000, ...options.manager?.policy } },
        onChange: () => { advertiser?.advertiseSoon() }
      })
      await node.serveJobs(host.executor(null), { receiptDomain })
      const vram = options.vramMb?.(i) ?? 0
      advertiser = new Advertiser(node, {
        intervalMs: 1000,
        describe: () => ({ hardware: vram === 0 ? basicHardware() : { gpus: [{ name: 'test-gpu', vramTotal: vram * 1024 * 1024, vramFree: vram * 1024 * 1024 }], cpuCores: 2, ramBytes: 8 * 1024 ** 3 }, models: host.manager.models(), queueDepth: 0, maxJobs: 1, tokensPerSecond: 10, imagesPerSecond: 0, price: 1000n, version: 'test', paid: true })
      }, silentLogger())
      advertiser.start()
      const a = advertiser
      const m: Miner = {
        wallet,
        node,
        host,
        engine: llm,
        async stop () { a.stop(); await host.stop(); await node.stop(); await engine?.stop(); await imageEngine?.dispose() }
      }
      miners.push(m)
      stops.push(m.stop)
    }

    const gwWallet = devnet.accounts[1]!
    const gwChain = await chainOf(gwWallet)
    await gwChain.deposit(10n ** 18n)
    const gwStore = await Store.open(`${dir}/gateway`)
    stops.push(async () => { await gwStore.close() })
    const gatewayDirectory = new PodDirectory(gwChain, silentLogger(), { refreshMs: 400 })
    await gatewayDirectory.start()
    stops.push(() => { gatewayDirectory.stop() })
    const gwId = identityFromPrivateKey(gwWallet.privateKey)
    const gateway = await startGatewayService({
      identity: gwId,
      store: gwStore,
      logger: silentLogger(),
      listen: ['/ip4/127.0.0.1/tcp/0'],
      bootstrap: [miners[0]!.node.multiaddrs()[0]!],
      devnet: true,
      http: { port: 0, coldStartTimeoutMs: 60_000, requestTimeoutMs: 90_000 },
      chain: { voucherSigner: { wallet: gwId.wallet, domain: heuristDomain(d.chainId, d.contracts.Payments) }, receiptDomain },
      // the test redeems the gateway's vouchers itself
      deliverVoucher: () => {},
      demandIntervalMs: 500,
      pods: podResolver(gatewayDirectory)
    })
    stops.push(async () => { await gateway.stop() })
    // every miner hears every other miner's advert, so all run the policy over the same view
    const meshed = await until(() => miners.every(m => m.node.peerTable.miners().length >= n - 1) && gateway.node.connectedPeers().length > 0, 30_000, 100)
    if (!meshed) throw new Error('the test mesh did not form in 30 s')
    return { devnet, weights, miners, gateway, gatewayDirectory, chainOf, stop }
  } catch (e) {
    await stop()
    throw e
  }
}

/** Miners that have the pod loaded now. */
export function hostsOf (net: PodNet, podId: string): Miner[] {
  return net.miners.filter(m => m.host.manager.models().some(x => x.id === podId))
}
