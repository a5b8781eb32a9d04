// Mesh benchmark: prints JSON. Run `npx tsc -p .` first; `npm run bench:mesh`.
// (a) a job through the mesh vs the same job on the engine directly, alternated in one run:
//     extra time to first token and the tokens/s ratio;
// (b) advert propagation p50/p99 to all nodes at N = 10 and 30 nodes on 127.0.0.1;
// (c) memory per node.
import '../dist/core/shim.js'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Wallet } from 'ethers'
import { identityFromPrivateKey } from '../dist/core/identity.js'
import { silentLogger } from '../dist/core/logger.js'
import { createHeuristNode, buildAdvert, basicHardware } from '../dist/p2p/index.js'
import { createLlamaEngine, ensureTinyModels } from '../dist/inference/index.js'
import { engineExecutor } from '../dist/cli/mesh.js'

const args = new Map(process.argv.slice(2).map(a => a.replace(/^--/, '').split('=')))
const ROUNDS = Number(args.get('rounds') ?? 7)
const SIZES = (args.get('sizes') ?? '10,30').split(',').map(Number)
const MAX_TOKENS = Number(args.get('tokens') ?? 200)
const BATCH_MS = args.has('batch-ms') ? Number(args.get('batch-ms')) : undefined

const median = xs => { const s = [...xs].sort((a, b) => a - b); return s.length === 0 ? NaN : s[Math.floor((s.length - 1) / 2)] }
const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)] }
const r2 = x => Math.round(x * 100) / 100
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))
const node = (init = {}) => createHeuristNode({ identity: identityFromPrivateKey(Wallet.createRandom().privateKey), logger: silentLogger(), listen: ['/ip4/127.0.0.1/tcp/0'], devnet: true, ...init })

// The client runs in its own process (as a gateway would), so its decoding does not share the
// miner's event loop with the engine; the direct run happens in the miner's process.
async function clientProcess () {
  const client = await node({ listen: [] })
  process.on('message', async msg => {
    if (msg.cmd === 'dial') { await client.dial(msg.addr); process.send({ ok: true }); return }
    if (msg.cmd === 'job') {
      const t0 = performance.now(); let first = -1; let last = -1; let n = 0
      const r = await client.runJob(msg.peerId, msg.job, { onToken: () => { last = performance.now(); if (first < 0) first = last; n++ } })
      // the engine's own decode speed during this job (from the result): tells delivery overhead from CPU contention
      process.send({ ttft: first - t0, tps: (n - 1) / ((last - first) / 1000), n, engineTps: r.output.kind === 'llm' ? r.output.result.usage.tokensPerSecond : NaN })
      return
    }
    if (msg.cmd === 'stop') { await client.stop(); process.exit(0) }
  })
  process.send({ ready: true })
}

async function jobBench () {
  const dir = await mkdtemp(join(tmpdir(), 'heurist-bench-'))
  const engine = createLlamaEngine({ threads: 1, parallel: 1, gpu: 'cpu' })
  const { fork } = await import('node:child_process')
  const child = fork(new URL(import.meta.url).pathname, ['--role=client'], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] })
  const ask = msg => new Promise(resolve => { child.once('message', resolve); if (msg !== null) child.send(msg) })
  try {
    await ask(null)
    const [m] = await ensureTinyModels(dir, { names: ['tiny-llama'] })
    const info = await engine.load(m.path, { id: m.id, name: m.name })
    const miner = await node()
    await miner.serveJobs(engineExecutor(engine, new Map(), [info]), BATCH_MS === undefined ? {} : { tokenBatchMs: BATCH_MS })
    await ask({ cmd: 'dial', addr: miner.multiaddrs()[0] })
    const sampling = { seed: 11, temperature: 0.8, topP: 0.95, topK: 40, maxTokens: MAX_TOKENS, stop: [] }
    const direct = async () => {
      const t0 = performance.now(); let first = -1; let last = -1; let n = 0
      await engine.generate({ modelId: info.id, input: 'benchmark prompt', sampling }, { onToken: () => { last = performance.now(); if (first < 0) first = last; n++ } })
      return { ttft: first - t0, tps: (n - 1) / ((last - first) / 1000), n }
    }
    const job = { kind: 'llm', modelId: info.id, input: 'benchmark prompt', sampling }
    const mesh = async () => await ask({ cmd: 'job', peerId: miner.peerId.toString(), job })
    await direct(); await mesh() // warm-up
    const d = []; const k = []
    for (let i = 0; i < ROUNDS; i++) { d.push(await direct()); k.push(await mesh()) }
    child.send({ cmd: 'stop' })
    await miner.stop()
    const extra = k.map((x, i) => x.ttft - d[i].ttft)
    return {
      rounds: ROUNDS,
      tokenBatchMs: BATCH_MS ?? 'default (4)',
      tokens: median(k.map(x => x.n)),
      directTtftMsP50: r2(median(d.map(x => x.ttft))),
      meshTtftMsP50: r2(median(k.map(x => x.ttft))),
      extraTtftMsP50: r2(median(extra)),
      directTokensPerSecondP50: r2(median(d.map(x => x.tps))),
      meshTokensPerSecondP50: r2(median(k.map(x => x.tps))),
      tokensPerSecondRatio: r2(median(k.map(x => x.tps)) / median(d.map(x => x.tps))),
      // the miner's engine during mesh jobs, as it measured itself, and what reached the client over it:
      // a low engine figure with a delivery ratio near 1 means the engine was slowed (CPU shared
      // with the client process and libp2p), not the stream
      meshEngineTokensPerSecondP50: r2(median(k.map(x => x.engineTps))),
      deliveryOverEngineRatio: r2(median(k.map(x => x.tps / x.engineTps)))
    }
  } finally {
    if (child.exitCode === null) setTimeout(() => child.kill(), 2000).unref()
    await engine.stop()
    await rm(dir, { recursive: true, force: true })
  }
}

async function propagationBench (n) {
  global.gc?.()
  const before = process.memoryUsage()
  const nodes = [await node()]
  const boot = nodes[0].multiaddrs()[0]
  for (let i = 1; i < n; i++) nodes.push(await node({ bootstrap: [boot] }))
  // let the mesh form (and peer exchange run) before measuring
  const settleEnd = Date.now() + 30_000
  while (Date.now() < settleEnd && !nodes.every(x => x.pubsub.getMeshPeers('heurist/1/capacity').length >= Math.min(4, n - 1))) await sleep(250)
  await sleep(2000)
  global.gc?.()
  const after = process.memoryUsage()
  const arrivals = new Map() // operator -> Map(receiver -> time)
  nodes.forEach((x, i) => x.peerTable.onAdvert(e => {
    const a = arrivals.get(e.address) ?? new Map(); arrivals.set(e.address, a)
    if (!a.has(i)) a.set(i, performance.now())
  }))
  const publishers = nodes.filter((_, i) => i % Math.max(1, Math.floor(n / 10)) === 0).slice(0, 10)
  const lat = []; let missing = 0
  const content = { hardware: basicHardware(), models: [], queueDepth: 0, maxJobs: 1, tokensPerSecond: 0, imagesPerSecond: 0, price: 0n, version: 'bench', paid: false }
  for (const p of publishers) {
    const t0 = performance.now()
    await p.publishAdvert(buildAdvert(p, content, Date.now(), 15_000))
    const end = Date.now() + 10_000
    while (Date.now() < end && (arrivals.get(p.address)?.size ?? 0) < n - 1) await sleep(5)
    const a = arrivals.get(p.address) ?? new Map()
    for (const [, t] of a) lat.push(t - t0)
    missing += (n - 1) - a.size
    await sleep(600) // stay under the per-operator advert rate limit
  }
  const conns = nodes.map(x => x.connectedPeers().length)
  await Promise.allSettled(nodes.map(x => x.stop()))
  return {
    nodes: n,
    adverts: publishers.length,
    deliveries: lat.length,
    missing,
    p50Ms: r2(pct(lat, 0.5)),
    p99Ms: r2(pct(lat, 0.99)),
    connectionsPerNodeMedian: median(conns),
    connectionsPerNodeMin: Math.min(...conns),
    heapPerNodeKiB: Math.round((after.heapUsed - before.heapUsed) / n / 1024),
    rssPerNodeKiB: Math.round((after.rss - before.rss) / n / 1024)
  }
}

if (args.get('role') === 'client') { await clientProcess() } else {
const out = { bench: 'mesh', node: process.versions.node, gcExposed: typeof global.gc === 'function' }
out.job = await jobBench()
out.propagation = []
for (const n of SIZES.filter(x => x > 0)) out.propagation.push(await propagationBench(n))
console.log(JSON.stringify(out, null, 2))
process.exit(0)
}
