// Gateway benchmark: the OpenAI-compatible gateway + libp2p mesh against the LLM engine
// called directly, in the same run on the same tiny model and thread budget.
//   A) time to first token and tokens/s, streamed: engine direct vs openai client → gateway → mesh → miner
//   B) sustained requests/s and latency percentiles with many short jobs on 2 miners
// Prints one JSON object. Run `npx tsc -p .` first (imports ../dist).
import '../dist/core/shim.js'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Wallet } from 'ethers'
import OpenAI from 'openai'
import { silentLogger } from '../dist/core/logger.js'
import { Store } from '../dist/core/store.js'
import { identityFromPrivateKey } from '../dist/core/identity.js'
import { ensureTinyModels, createLlamaEngine } from '../dist/inference/index.js'
import { createHeuristNode, Advertiser, basicHardware } from '../dist/p2p/index.js'
import { engineExecutor } from '../dist/cli/mesh.js'
import { Accounts, createGateway, createMeshBackend, createLocalBackend } from '../dist/gateway/index.js'

const RUNS = Number(process.env.BENCH_RUNS ?? 7)
const TOKENS = Number(process.env.BENCH_TOKENS ?? 64)
const SHORT_JOBS = Number(process.env.BENCH_SHORT_JOBS ?? 120)
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 8)

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2 }
const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.ceil(p / 100 * s.length) - 1)] }
const round = (x, d = 2) => Math.round(x * 10 ** d) / 10 ** d
const logger = silentLogger()
const id = () => identityFromPrivateKey(Wallet.createRandom().privateKey)

const dir = await mkdtemp(join(tmpdir(), 'heurist-bench-gw-'))
const stops = []
try {
  const [tiny] = await ensureTinyModels(join(dir, 'models'), { names: ['tiny-llama'] })
  const store = await Store.open(join(dir, 'store'))
  stops.push(() => store.close())

  const gwNode = await createHeuristNode({ identity: id(), logger, listen: ['/ip4/127.0.0.1/tcp/0'], devnet: true, heartbeatMs: 200 })
  stops.push(() => gwNode.stop())
  const miners = []
  for (let i = 0; i < 2; i++) {
    const engine = createLlamaEngine({ gpu: 'cpu', threads: 1, parallel: 2 })
    const info = await engine.load(tiny.path, { id: tiny.id, name: tiny.name })
    const node = await createHeuristNode({ identity: id(), logger, listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [gwNode.multiaddrs()[0]], devnet: true, heartbeatMs: 200 })
    const server = await node.serveJobs(engineExecutor(engine, new Map(), [info]), { maxConcurrentJobs: 2, maxQueue: 64 })
    const adv = new Advertiser(node, { intervalMs: 500, describe: () => ({ hardware: basicHardware(), models: [info], queueDepth: server.queueDepth, maxJobs: 2, tokensPerSecond: 10, imagesPerSecond: 0, price: 0n, version: 'bench', paid: false }) }, logger)
    adv.start()
    stops.push(async () => { adv.stop(); await node.stop(); await engine.stop() })
    miners.push({ engine, info, node })
  }
  const t0 = Date.now()
  while (gwNode.peerTable.miners(tiny.id).length < 2 && Date.now() - t0 < 30_000) await new Promise(r => setTimeout(r, 100))

  const backend = createMeshBackend(gwNode, logger)
  backend.start()
  const accounts = new Accounts(store)
  const { apiKey } = await accounts.create(10n ** 24n)
  const gw = createGateway({ backend, accounts, logger, vouchers: null, transcripts: null }, { port: 0 })
  await gw.start()
  stops.push(async () => { backend.stop(); await gw.stop() })
  const client = new OpenAI({ apiKey, baseURL: `${gw.url}/v1`, maxRetries: 0, timeout: 120_000 })
  // the same gateway code on an in-process backend (no mesh): separates HTTP/SSE cost from the mesh's
  const local = createGateway({ backend: createLocalBackend({ models: [miners[0].info], llm: miners[0].engine }), accounts, logger, vouchers: null, transcripts: null }, { port: 0 })
  await local.start()
  stops.push(() => local.stop())
  const localClient = new OpenAI({ apiKey, baseURL: `${local.url}/v1`, maxRetries: 0, timeout: 120_000 })
  const messages = [{ role: 'user', content: 'Tell me a story.' }]
  const sampling = { seed: 1, temperature: 0.8, topP: 1, topK: 0, maxTokens: TOKENS, stop: [] }

  // warm-up both paths (first-run costs: context allocation, connection set-up)
  await miners[0].engine.generate({ modelId: tiny.id, input: messages, sampling })
  await client.chat.completions.create({ model: tiny.name, messages, max_tokens: TOKENS, seed: 1 })

  // A) alternate direct and gateway runs so load drift hits both alike
  const direct = { ttft: [], tps: [] }
  const viaGw = { ttft: [], tps: [] }
  const viaLocal = { ttft: [], tps: [] }
  const streamed = async (c, seed, into) => {
    const t = performance.now(); let first = 0; let n = 0; let pieces = 0
    const s = await c.chat.completions.create({ model: tiny.name, messages, max_tokens: TOKENS, seed, stream: true })
    for await (const ch of s) { if (ch.choices[0]?.delta.content) { if (pieces++ === 0) first = performance.now() } if (ch.usage) n = ch.usage.completion_tokens }
    const end = performance.now()
    into.ttft.push(first - t); into.tps.push((n - 1) / ((end - first) / 1000))
  }
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now(); let first = 0; let n = 0
    await miners[0].engine.generate({ modelId: tiny.id, input: messages, sampling: { ...sampling, seed: i } }, { onToken: () => { if (n++ === 0) first = performance.now() } })
    const end = performance.now()
    direct.ttft.push(first - t); direct.tps.push((n - 1) / ((end - first) / 1000))

    await streamed(client, i, viaGw)
    await streamed(localClient, i, viaLocal)
  }

  // B) many short jobs, CONCURRENCY in flight, spread over 2 miners by the router
  const lat = []
  let next = 0; let failed = 0
  const tB = performance.now()
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < SHORT_JOBS) {
      next++
      const t = performance.now()
      try { await client.chat.completions.create({ model: tiny.name, messages: [{ role: 'user', content: 'hi' }], max_tokens: 4 }) } catch { failed++ }
      lat.push(performance.now() - t)
    }
  }))
  const wallB = (performance.now() - tB) / 1000
  const metrics = await gw.metrics.text()
  const perMiner = [...metrics.matchAll(/heurist_gateway_miner_attempts_total\{miner="([^"]+)",outcome="ok"\} (\d+)/g)].map(m => Number(m[2]))

  console.log(JSON.stringify({
    bench: 'gateway',
    model: tiny.name,
    threadsPerEngine: 1,
    runs: RUNS,
    tokens: TOKENS,
    streaming: {
      direct: { ttftMsMedian: round(median(direct.ttft)), tokensPerSecondMedian: round(median(direct.tps), 1) },
      gatewayMesh: { ttftMsMedian: round(median(viaGw.ttft)), tokensPerSecondMedian: round(median(viaGw.tps), 1) },
      gatewayLocalNoMesh: { ttftMsMedian: round(median(viaLocal.ttft)), tokensPerSecondMedian: round(median(viaLocal.tps), 1) },
      ttftOverheadMsMedian: round(median(viaGw.ttft.map((x, i) => x - direct.ttft[i]))),
      tokensPerSecondRatio: round(median(viaGw.tps) / median(direct.tps), 3),
      tokensPerSecondRatioNoMesh: round(median(viaLocal.tps) / median(direct.tps), 3)
    },
    sustained: {
      miners: 2, jobs: SHORT_JOBS, concurrency: CONCURRENCY, maxTokens: 4, failed,
      requestsPerSecond: round(SHORT_JOBS / wallB, 1),
      latencyMs: { p50: round(pct(lat, 50), 1), p90: round(pct(lat, 90), 1), p99: round(pct(lat, 99), 1) },
      jobsPerMiner: perMiner
    }
  }))
} finally {
  for (const s of stops.reverse()) await Promise.resolve().then(s).catch(() => {})
  await rm(dir, { recursive: true, force: true })
}
