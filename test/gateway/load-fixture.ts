import { Store } from '../../src/core/store.js'
import { silentLogger } from '../../src/core/logger.js'
import { ensureTinyModels, createLlamaEngine, type LlamaEngine, type ModelInfo } from '../../src/inference/index.js'
import { Advertiser, basicHardware, type HeuristNode, type JobServer } from '../../src/p2p/index.js'
import { engineExecutor } from '../../src/cli/mesh.js'
import { Accounts, createGateway, createMeshBackend, type CompletedJob, type Gateway, type GatewayOptions, type MeshBackend } from '../../src/gateway/index.js'
import { tempDir } from '../helpers.js'
import { testNode, until } from '../p2p/util.js'

/**
 * A small real network in this process: miners running llama.cpp on the built-in tiny GGUF
 * (one thread each, `slots` parallel sequences), each behind its own libp2p node on 127.0.0.1,
 * and gateways (mesh node + HTTP server) that hear their adverts. For load tests.
 */
export interface TinyMiner { node: HeuristNode, engine: LlamaEngine, jobs: JobServer, advertiser: Advertiser }
export interface TinyGateway { node: HeuristNode, backend: MeshBackend, gateway: Gateway, accounts: Accounts, store: Store, jobs: CompletedJob[] }

export interface TinyMesh {
  model: ModelInfo
  miners: TinyMiner[]
  gateways: TinyGateway[]
  addGateway: (options?: Partial<GatewayOptions>) => Promise<TinyGateway>
  stop: () => Promise<void>
}

export async function startTinyMesh (o: { miners: number, slots?: number, minerQueue?: number }): Promise<TinyMesh> {
  const t = await tempDir('heurist-load-')
  const stops: Array<() => Promise<void>> = [t.cleanup]
  const slots = o.slots ?? 2
  const [tiny] = await ensureTinyModels(`${t.dir}/models`, { names: ['tiny-llama'] })
  const boot = await testNode()
  stops.unshift(async () => { await boot.stop() })
  const bootAddr = boot.multiaddrs()[0]!
  const miners: TinyMiner[] = []
  let model: ModelInfo | undefined
  for (let i = 0; i < o.miners; i++) {
    const engine = createLlamaEngine({ gpu: 'cpu', threads: 1, parallel: slots, maxQueue: 64 })
    model = await engine.load(tiny!.path, { id: tiny!.id, name: tiny!.name })
    const node = await testNode({ bootstrap: [bootAddr] })
    const jobs = await node.serveJobs(engineExecutor(engine, new Map(), [model]), { maxConcurrentJobs: slots, maxQueue: o.minerQueue ?? 16 })
    const info = model
    // adverts live 10 s: a loaded machine must not drop live miners between two adverts
    const advertiser = new Advertiser(node, { intervalMs: 1000, ttlMs: 10_000, describe: () => ({ hardware: basicHardware(), models: [info], queueDepth: jobs.queueDepth, maxJobs: slots, tokensPerSecond: 10, imagesPerSecond: 0, price: 1n, version: 'test', paid: false }) }, silentLogger())
    advertiser.start()
    miners.push({ node, engine, jobs, advertiser })
    stops.unshift(async () => { advertiser.stop(); await node.stop(); await engine.stop() })
  }
  const gateways: TinyGateway[] = []
  const mesh: TinyMesh = {
    model: model!,
    miners,
    gateways,
    async addGateway (options = {}) {
      const store = await Store.open(`${t.dir}/gw-${gateways.length}`)
      const node = await testNode({ bootstrap: [bootAddr] })
      const backend = createMeshBackend(node, silentLogger())
      backend.start()
      const accounts = new Accounts(store)
      const jobs: CompletedJob[] = []
      const gateway = createGateway({ backend, accounts, logger: silentLogger(), vouchers: null, transcripts: null, onJob: (j) => { jobs.push(j) } }, { port: 0, ...options })
      await gateway.start()
      stops.unshift(async () => { await gateway.stop(); backend.stop(); await node.stop(); await store.close() })
      const g = { node, backend, gateway, accounts, store, jobs }
      gateways.push(g)
      if (!await until(() => node.peerTable.miners(model!.id).length === o.miners, 30_000, 50)) throw new Error('the miners\' adverts did not reach the gateway')
      return g
    },
    async stop () {
      for (const s of stops) await s().catch(() => {})
    }
  }
  return mesh
}
