// Gateway benchmark: the OpenAI-compatible gateway + libp2p mesh against the LLM engine
// called directly, in the same run on the same tiny model and thread budget.
//   A) time to first token and tokens/s, streamed: engine direct vs openai client → gateway → mesh → miner
//   B) load: concurrency 1, 8, 32, 128, 256 through the gateway to 2 miners (2 slots each):
//      success rate, requests/s, p50/p99 latency, mean queue wait; requests/s at saturation ÷
//      the miners' summed direct throughput on the same jobs (engines called directly, and the
//      job protocol without the gateway), measured side by side
//   C) two gateways sharing the same miners at once: each one's requests/s and success
// Medians over BENCH_RUNS runs of B and C. Prints one JSON object. Run `npm run build` first (imports ../dist).
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

const RUNS = Number(process.env.BENCH_RUNS ?? 3)
const STREAM_RUNS = Number(process.env.BENCH_STREAM_RUNS ?? 5)
const TOKENS = Number(process.env.BENCH_TOKENS ?? 64)
const LOAD_TOKENS = Number(process.env.BENCH_LOAD_TOKENS ?? 32)
const LEVELS = (process.env.BENCH_CONCURRENCY ?? '1,8,32,128,256').split(',').map(Number)
const SLOTS = 2

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); const m = s.length >> 1; return s.length === 0 ? NaN : s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2 }
const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.ceil(p / 100 * s.length) - 1)] }
const round = (x, d = 2) => Math.round(x * 10 ** d) / 10 ** d
const logger = silentLogger()
const id = () => identityFromPrivateKey(Wallet.createRandom().privateKey)
const requestsAt = (c) => Math.max(24, c)

const dir = await mkdtemp(join(tmpdir(), 'heurist-bench-gw-'))
const stops = []
try {
  const [tiny] = await ensureTinyModels(join(dir, 'models'), { names: ['tiny-llama'] })
  const store = await Store.open(join(dir, 'store'))
  stops.push(() => store.close())

  const boot = await createHeuristNode({ identity: id(), logger, listen: ['/ip4/127.0.0.1/tcp/0'], devnet: true, heartbeatMs: 200 })
  stops.push(() => boot.stop())
  const bootAddr = boot.multiaddrs()[0]
  const miners = []
  for (let i = 0; i < 2; i++) {
    const engine = createLlamaEngine({ gpu: 'cpu', threads: 1, parallel: SLOTS, maxQueue: 64 })
    const info = await engine.load(tiny.path, { id: tiny.id, name: tiny.name })
    const node = await createHeuristNode({ identity: id(), logger, listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [bootAddr], devnet: true, heartbeatMs: 200 })
    const server = await node.serveJobs(engineExecutor(engine, new Map(), [info]), { maxConcurrentJobs: SLOTS, maxQueue: 16 })
    const adv = new Advertiser(node, { intervalMs: 2000, describe: () => ({ hardware: basicHardware(), models: [info], queueDepth: server.queueDepth, maxJobs: SLOTS, tokensPerSecond: 10, imagesPerSecond: 0, price: 0n, version: 'bench', paid: false }) }, logger)
    adv.start()
    stops.push(async () => { adv.stop(); await node.stop(); await engine.stop() })
    miners.push({ engine, info, node, server })
  }
  const accounts = new Accounts(store)
  const { apiKey } = await accounts.create(10n ** 24n)
  const gateways = []
  for (let i = 0; i < 2; i++) {
    const node = await createHeuristNode({ identity: id(), logger, listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [bootAddr], devnet: true, heartbeatMs: 200 })
    const t0 = Date.now()
    while (node.peerTable.miners(tiny.id).length < 2 && Date.now() - t0 < 30_000) await new Promise(r => setTimeout(r, 100))
    const backend = createMeshBackend(node, logger)
    backend.start()
    const gw = createGateway({ backend, accounts, logger, vouchers: null, transcripts: null }, { port: 0 })
    await gw.start()
    stops.push(async () => { backend.stop(); await gw.stop(); await node.stop() })
    gateways.push({ node, gw, client: new OpenAI({ apiKey, baseURL: `${gw.url}/v1`, maxRetries: 0, timeout: 120_000 }) })
  }
  const client = gateways[0].client
  // the same gateway code on an in-process backend (no mesh): separates HTTP/SSE cost from the mesh's
  const local = createGateway({ backend: createLocalBackend({ models: [miners[0].info], llm: miners[0].engine }), accounts, logger, vouchers: null, transcripts: null }, { port: 0 })
  await local.start()
  stops.push(() => local.stop())
  const localClient = new OpenAI({ apiKey, baseURL: `${local.url}/v1`, maxRetries: 0, timeout: 120_000 })
  const messages = [{ role: 'user', content: 'Tell me a story.' }]
  const sampling = { seed: 1, temperature: 0.8, topP: 1, topK: 0, maxTokens: TOKENS, stop: [] }

  // warm-up every path (first-run costs: context allocation, connection set-up)
  for (const m of miners) await m.engine.generate({ modelId: tiny.id, input: messages, sampling })
  for (const g of gateways) await Promise.all([0, 1, 2, 3].map(i => g.client.chat.completions.create({ model: tiny.name, messages, max_tokens: 4, seed: i })))

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
  for (let i = 0; i < STREAM_RUNS; i++) {
    const t = performance.now(); let first = 0; let n = 0
    await miners[0].engine.generate({ modelId: tiny.id, input: messages, sampling: { ...sampling, seed: i } }, { onToken: () => { if (n++ === 0) first = performance.now() } })
    const end = performance.now()
    direct.ttft.push(first - t); direct.tps.push((n - 1) / ((end - first) / 1000))
    await streamed(client, i, viaGw)
    await streamed(localClient, i, viaLocal)
  }

  // the load jobs: the same short chat, LOAD_TOKENS tokens, a seed per request
  const loadJob = (i) => ({ model: tiny.name, messages: [{ role: 'user', content: `story ${i % 50}` }], max_tokens: LOAD_TOKENS, seed: i })
  /** `total` jobs, `concurrency` at a time, through `run`; returns latencies, failures and wall time. */
  const drive = async (total, concurrency, run) => {
    const lat = []; let next = 0; let failed = 0; const statuses = {}
    const t0 = performance.now()
    await Promise.all(Array.from({ length: Math.min(concurrency, total) }, async () => {
      while (next < total) {
        const i = next++
        const t = performance.now()
        try { await run(i); lat.push(performance.now() - t); statuses[200] = (statuses[200] ?? 0) + 1 } catch (e) { failed++; const s = e?.status ?? 'error'; statuses[s] = (statuses[s] ?? 0) + 1 }
      }
    }))
    return { lat, failed, statuses, wall: (performance.now() - t0) / 1000 }
  }
  const waitStats = async (g) => {
    const v = (await g.gw.metrics.queueWait.get()).values
    return { sum: v.find(x => x.metricName?.endsWith('_sum'))?.value ?? 0, count: v.find(x => x.metricName?.endsWith('_count'))?.value ?? 0 }
  }

  const runs = []
  for (let r = 0; r < RUNS; r++) {
    const run = { levels: {} }
    // the miners' direct throughput on the same jobs: both engines, every slot busy
    const totalDirect = 64
    const dEngine = await drive(totalDirect, 2 * SLOTS, (i) => miners[i % 2].engine.generate({ modelId: tiny.id, input: loadJob(i).messages, sampling: { seed: i, temperature: 1, topP: 1, topK: 0, maxTokens: LOAD_TOKENS, stop: [] } }))
    run.engineDirectRps = totalDirect / dEngine.wall
    // the job protocol without the gateway: a mesh client keeps 2 × slots jobs on each miner
    const dMesh = await drive(totalDirect, 4 * SLOTS, (i) => gateways[0].node.runJob(miners[i % 2].node.peerId, { kind: 'llm', modelId: tiny.id, input: loadJob(i).messages, sampling: { seed: i, temperature: 1, topP: 1, topK: 0, maxTokens: LOAD_TOKENS, stop: [] } }))
    run.meshDirectRps = totalDirect / dMesh.wall
    for (const c of LEVELS) {
      const before = await waitStats(gateways[0])
      const total = requestsAt(c)
      const d = await drive(total, c, (i) => client.chat.completions.create(loadJob(i)))
      const after = await waitStats(gateways[0])
      run.levels[c] = {
        requests: total,
        successRate: (total - d.failed) / total,
        statuses: d.statuses,
        requestsPerSecond: (total - d.failed) / d.wall,
        p50: pct(d.lat, 50),
        p99: pct(d.lat, 99),
        queueWaitMsMean: after.count > before.count ? 1000 * (after.sum - before.sum) / (after.count - before.count) : 0
      }
    }
    // C) both gateways at once, 64 each
    const both = await Promise.all(gateways.map(g => drive(128, 64, (i) => g.client.chat.completions.create(loadJob(i)))))
    run.twoGateways = both.map(d => ({ successRate: (128 - d.failed) / 128, requestsPerSecond: (128 - d.failed) / d.wall, p99: pct(d.lat, 99) }))
    runs.push(run)
  }

  const med = (f) => round(median(runs.map(f)), 3)
  const saturation = (run) => Math.max(...LEVELS.filter(c => c >= 32).map(c => run.levels[c].requestsPerSecond))
  const perMiner = miners.map(m => m.server.stats.served)
  console.log(JSON.stringify({
    bench: 'gateway',
    model: tiny.name,
    threadsPerEngine: 1,
    slotsPerMiner: SLOTS,
    runs: RUNS,
    streaming: {
      runs: STREAM_RUNS,
      tokens: TOKENS,
      direct: { ttftMsMedian: round(median(direct.ttft)), tokensPerSecondMedian: round(median(direct.tps), 1) },
      gatewayMesh: { ttftMsMedian: round(median(viaGw.ttft)), tokensPerSecondMedian: round(median(viaGw.tps), 1) },
      gatewayLocalNoMesh: { ttftMsMedian: round(median(viaLocal.ttft)), tokensPerSecondMedian: round(median(viaLocal.tps), 1) },
      ttftOverheadMsMedian: round(median(viaGw.ttft.map((x, i) => x - direct.ttft[i]))),
      tokensPerSecondRatio: round(median(viaGw.tps) / median(direct.tps), 3),
      tokensPerSecondRatioNoMesh: round(median(viaLocal.tps) / median(direct.tps), 3)
    },
    load: {
      miners: 2,
      maxTokens: LOAD_TOKENS,
      engineDirectRequestsPerSecond: med(r => r.engineDirectRps),
      meshDirectRequestsPerSecond: med(r => r.meshDirectRps),
      byConcurrency: Object.fromEntries(LEVELS.map(c => [c, {
        requests: requestsAt(c),
        successRate: med(r => r.levels[c].successRate),
        requestsPerSecond: med(r => r.levels[c].requestsPerSecond),
        latencyMs: { p50: med(r => r.levels[c].p50), p99: med(r => r.levels[c].p99) },
        queueWaitMsMean: med(r => r.levels[c].queueWaitMsMean),
        statusesLastRun: runs.at(-1).levels[c].statuses
      }])),
      saturationRequestsPerSecond: med(saturation),
      saturationOverEngineDirect: med(r => saturation(r) / r.engineDirectRps),
      saturationOverMeshDirect: med(r => saturation(r) / r.meshDirectRps),
      jobsPerMiner: perMiner
    },
    twoGateways: {
      concurrencyEach: 64,
      requestsEach: 128,
      successRate: [med(r => r.twoGateways[0].successRate), med(r => r.twoGateways[1].successRate)],
      requestsPerSecond: [med(r => r.twoGateways[0].requestsPerSecond), med(r => r.twoGateways[1].requestsPerSecond)],
      shareRatio: med(r => Math.min(r.twoGateways[0].requestsPerSecond, r.twoGateways[1].requestsPerSecond) / Math.max(r.twoGateways[0].requestsPerSecond, r.twoGateways[1].requestsPerSecond))
    }
  }))
} finally {
  for (const s of stops.reverse()) await Promise.resolve().then(s).catch(() => {})
  await rm(dir, { recursive: true, force: true })
}
