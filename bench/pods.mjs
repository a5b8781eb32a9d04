// Pods benchmark: scale from zero vs a warm pod, in one run, on real parts (EDR devnet with the
// contracts, weights over HTTP on 127.0.0.1, one miner with llama.cpp on 1 thread, the gateway).
//   coldFirstTokenMs : first request for a pod no miner hosts → its first streamed token
//                      (gateway demand → miner policy → pull with sha256 check → load → advert → job)
//   warmFirstTokenMs : the same request once the pod is loaded
//   pullMs, loadMs   : the two parts of a cold start measured directly (model cache pull, engine load)
// Each cold run deploys a fresh pod (new weights, new sha256). Medians of BENCH_RUNS cold runs
// and BENCH_WARM warm requests per run. Prints one JSON object. Run `npx tsc -p .` first.
import '../dist/core/shim.js'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createServer } from 'node:http'
import { createHash } from 'node:crypto'
import OpenAI from 'openai'
import { silentLogger } from '../dist/core/logger.js'
import { Store } from '../dist/core/store.js'
import { identityFromPrivateKey } from '../dist/core/identity.js'
import { heuristDomain } from '../dist/core/typed-data.js'
import { startDevnet, connectChain } from '../dist/chain/index.js'
import { buildTinyLlama, tinyLlamaSpecs, createLlamaEngine, ModelCache } from '../dist/inference/index.js'
import { createHeuristNode, Advertiser, basicHardware } from '../dist/p2p/index.js'
import { startGatewayService } from '../dist/gateway/index.js'
import { startPodHost, podResolver, PodDirectory, deployPod } from '../dist/pods/index.js'

const RUNS = Number(process.env.BENCH_RUNS ?? 3)
const WARM = Number(process.env.BENCH_WARM ?? 5)
const TOKENS = Number(process.env.BENCH_TOKENS ?? 16)
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2 }
const round = (x, d = 1) => Math.round(x * 10 ** d) / 10 ** d
const logger = silentLogger()
const weights = (seed) => { const bytes = Buffer.from(buildTinyLlama({ ...tinyLlamaSpecs[0], seed })); return { bytes, sha256: createHash('sha256').update(bytes).digest('hex') } }

const dir = await mkdtemp(join(tmpdir(), 'heurist-bench-pods-'))
const stops = []
try {
  const files = new Map()
  const server = createServer((req, res) => {
    const f = files.get(req.url)
    if (f === undefined) { res.writeHead(404).end(); return }
    res.writeHead(200, { 'content-length': f.length }).end(f)
  })
  await new Promise(resolve => server.listen(0, '127.0.0.1', resolve))
  stops.push(() => new Promise(resolve => { server.closeAllConnections(); server.close(resolve) }))
  const url = (p) => `http://127.0.0.1:${server.address().port}${p}`

  const devnet = await startDevnet({ port: 0 })
  stops.push(() => devnet.stop())
  const d = devnet.deployment
  const chains = []
  stops.push(() => { for (const c of chains) c.close() })
  const chainOf = async (w) => { const c = await connectChain({ deployment: d, signer: w }); chains.push(c); return c }
  const receiptDomain = { chainId: d.chainId, verifyingContract: d.contracts.Slashing }

  // the miner
  const minerWallet = devnet.accounts[2]
  const node = await createHeuristNode({ identity: identityFromPrivateKey(minerWallet.privateKey), logger, listen: ['/ip4/127.0.0.1/tcp/0'], devnet: true, heartbeatMs: 200 })
  stops.push(() => node.stop())
  let engine = null
  const llm = () => (engine ??= createLlamaEngine({ threads: 1, parallel: 1, gpu: 'cpu' }))
  stops.push(() => engine?.stop())
  let advertiser = null
  const host = await startPodHost({
    node, chain: await chainOf(minerWallet), cacheDir: join(dir, 'miner'), llm, vramMb: 0, logger,
    directory: { refreshMs: 250 },
    manager: { tickMs: 100, policy: { idleMs: 600_000 } },
    onChange: () => { advertiser?.advertiseSoon() }
  })
  stops.push(() => host.stop())
  await node.serveJobs(host.executor(null), { receiptDomain })
  advertiser = new Advertiser(node, { intervalMs: 1000, describe: () => ({ hardware: basicHardware(), models: host.manager.models(), queueDepth: 0, maxJobs: 1, tokensPerSecond: 10, imagesPerSecond: 0, price: 1000n, version: 'bench', paid: true }) }, logger)
  advertiser.start()
  stops.push(() => advertiser.stop())

  // the gateway
  const gwWallet = devnet.accounts[1]
  await (await chainOf(gwWallet)).deposit(10n ** 18n)
  const store = await Store.open(join(dir, 'gateway'))
  stops.push(() => store.close())
  const gwDir = new PodDirectory(await chainOf(gwWallet), logger, { refreshMs: 250 })
  await gwDir.start()
  stops.push(() => gwDir.stop())
  const gwId = identityFromPrivateKey(gwWallet.privateKey)
  const svc = await startGatewayService({
    identity: gwId, store, logger, listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [node.multiaddrs()[0]], devnet: true,
    http: { port: 0, coldStartTimeoutMs: 120_000 },
    chain: { voucherSigner: { wallet: gwId.wallet, domain: heuristDomain(d.chainId, d.contracts.Payments) }, receiptDomain },
    deliverVoucher: () => {}, demandIntervalMs: 250, pods: podResolver(gwDir)
  })
  stops.push(() => svc.stop())
  const end = Date.now() + 30_000
  while (svc.node.peerTable.miners().length === 0 && Date.now() < end) await new Promise(resolve => setTimeout(resolve, 100))
  const { apiKey } = await svc.accounts.create(10n ** 17n)
  const client = new OpenAI({ apiKey, baseURL: `${svc.gateway.url}/v1`, maxRetries: 0, timeout: 120_000 })
  const deployer = await chainOf(devnet.accounts[6])

  const firstToken = async (model, seed) => {
    const t0 = performance.now()
    let first = 0
    const stream = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'hello' }], max_tokens: TOKENS, seed, stream: true })
    for await (const chunk of stream) if (first === 0 && (chunk.choices[0]?.delta?.content ?? '') !== '') first = performance.now() - t0
    return first
  }

  const cold = []
  const warm = []
  const hostLoadMs = []
  const pullMs = []
  const loadMs = []
  const phases = []
  for (let r = 0; r < RUNS; r++) {
    // the parts of a cold start, measured directly on fresh weights
    const direct = weights(1000 + r)
    files.set(`/direct-${r}.gguf`, direct.bytes)
    const cache = await ModelCache.open(join(dir, `direct-${r}`))
    let t = performance.now()
    const entry = await cache.pull(url(`/direct-${r}.gguf`), { sha256: direct.sha256, name: `direct-${r}` })
    pullMs.push(performance.now() - t)
    t = performance.now()
    await llm().load(entry.path, { id: direct.sha256, name: `direct-${r}` })
    loadMs.push(performance.now() - t)
    await llm().unload(direct.sha256)

    // the whole path through the gateway
    const w = weights(2000 + r)
    files.set(`/pod-${r}.gguf`, w.bytes)
    await deployPod(deployer, { sha256: w.sha256, kind: 'llm', minVramMb: 0, revenueBps: 1000, name: `bench-pod-${r}`, uri: url(`/pod-${r}.gguf`) })
    await host.directory.refresh()
    await gwDir.refresh()
    const t0 = Date.now()
    let seenAt = 0
    const watch = setInterval(() => { if (seenAt === 0 && svc.node.peerTable.miners(w.sha256).length > 0) seenAt = Date.now() }, 10)
    cold.push(await firstToken(`bench-pod-${r}`, r))
    clearInterval(watch)
    const ev = (kind) => host.manager.events.find(e => e.pod === w.sha256 && e.event === kind)?.at ?? NaN
    phases.push({ pullStart: ev('pulling') - t0, loaded: ev('loaded') - t0, gatewaySawAdvert: seenAt - t0 })
    hostLoadMs.push(host.manager.events.find(e => e.pod === w.sha256 && e.event === 'loaded')?.ms ?? NaN)
    for (let i = 0; i < WARM; i++) warm.push(await firstToken(`bench-pod-${r}`, 100 + i))
  }
  const coldMed = median(cold)
  const warmMed = median(warm)
  console.log(JSON.stringify({
    bench: 'pods',
    runs: RUNS,
    warmPerRun: WARM,
    maxTokens: TOKENS,
    weightsBytes: weights(0).bytes.length,
    threads: 1,
    coldFirstTokenMs: round(coldMed),
    warmFirstTokenMs: round(warmMed),
    coldOverWarm: round(coldMed / warmMed, 1),
    minerPullAndLoadMs: round(median(hostLoadMs)),
    pullMs: round(median(pullMs)),
    loadMs: round(median(loadMs)),
    coldRunsMs: cold.map(x => round(x)),
    // when each step of a cold start happened, ms after the request was sent (median over runs)
    coldPhasesMs: Object.fromEntries(['pullStart', 'loaded', 'gatewaySawAdvert'].map(k => [k, round(median(phases.map(p => p[k])))])),
    settings: { gatewayDemandIntervalMs: 250, minerTickMs: 100, directoryRefreshMs: 250, gatewayPollMs: 100 }
  }, null, 2))
} finally {
  for (const s of stops.reverse()) await Promise.resolve().then(s).catch(() => {})
  await rm(dir, { recursive: true, force: true })
}
