// bench:nat — a job to a miner behind a home NAT, relayed, against a public miner reached
// directly, side by side in the same network namespaces (test/nat/netns.mjs), and what the
// relay pays per relayed job (CPU time, memory). Needs root, `ip`, `iptables` and a build
// (`npx tsc -p .`). Prints JSON.
//
// Hole punching: libp2p's DCUtR (and AutoNAT) only act on public IP addresses; the
// namespaces use 10.231.0.0/16, so no upgrade happens here and the direct reference is a
// public miner (what a hole-punched connection would approach).
//
//   node bench/nat.mjs [jobs per side, default 10] [max tokens, default 48]
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { makeNat, netnsUnavailable, IPS } from '../test/nat/netns.mjs'

const ROOT = fileURLToPath(new URL('../', import.meta.url))
const BIN = join(ROOT, 'bin/heurist')
const PEER = join(ROOT, 'test/nat/peer.mjs')
const JOBS = Number(process.argv[2] ?? 10)
const MAX_TOKENS = Number(process.argv[3] ?? 48)

const why = netnsUnavailable()
if (why !== null) { console.error(`bench:nat cannot run: ${why}`); process.exit(2) }

function proc (ns, args, env = {}) {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, ...args], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] })
  const lines = []
  const waiters = new Set()
  for (const s of [child.stdout, child.stderr]) {
    createInterface({ input: s }).on('line', l => {
      try { lines.push(JSON.parse(l)) } catch { return }
      for (const w of [...waiters]) w()
    })
  }
  let id = 0
  const p = {
    child,
    wait: (pred, ms, what) => new Promise((resolve, reject) => {
      const hit = lines.find(pred)
      if (hit !== undefined) { resolve(hit); return }
      const t = setTimeout(() => { waiters.delete(w); reject(new Error(`timeout waiting for ${what}`)) }, ms)
      const w = () => { const h = lines.find(pred); if (h !== undefined) { clearTimeout(t); waiters.delete(w); resolve(h) } }
      waiters.add(w)
    }),
    ask: async (cmd, ms = 60_000) => { const i = ++id; child.stdin.write(JSON.stringify({ ...cmd, id: i }) + '\n'); return await p.wait(l => l.id === i, ms, cmd.cmd) },
    stop: async () => {
      if (child.exitCode !== null) return
      child.stdin.end(); child.kill('SIGTERM')
      const t = setTimeout(() => child.kill('SIGKILL'), 5000)
      await new Promise(resolve => child.once('exit', resolve)); clearTimeout(t)
    }
  }
  return p
}

const median = xs => { const s = [...xs].sort((a, b) => a - b); const m = Math.floor(s.length / 2); return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2 }

const nat = makeNat()
const procs = []
const dirs = []
try {
  const minerEnv = async (listen, bootstrap) => {
    const home = await mkdtemp(join(tmpdir(), 'heurist-bench-nat-'))
    dirs.push(home)
    const env = { HEURIST_HOME: home, HEURIST_PASSWORD: 'bench', HEURIST_LOG_FORMAT: 'json', HEURIST_INFERENCE_THREADS: '1', HEURIST_INFERENCE_GPU: 'cpu', HEURIST_MINE_ADVERT_INTERVAL_MS: '1000', HEURIST_P2P_LISTEN: listen, HEURIST_P2P_BOOTSTRAP: bootstrap }
    const init = proc(nat.ns.pub, [BIN, 'init', '--kdf-cost', '10', '--json'], env)
    await new Promise(resolve => init.child.once('exit', resolve))
    return env
  }
  const relay = proc(nat.ns.pub, [PEER, 'relay', JSON.stringify({ listen: [`/ip4/${IPS.pub}/tcp/4001`] })])
  procs.push(relay)
  const relayReady = await relay.wait(l => l.ready === true, 30_000, 'relay')
  const relayAddr = `/ip4/${IPS.pub}/tcp/4001/p2p/${relayReady.peerId}`

  const homeMiner = proc(nat.ns.home, [BIN, 'mine', '--models', 'tiny-llama', '--max-jobs', '1'], await minerEnv('/ip4/0.0.0.0/tcp/4021', relayAddr))
  procs.push(homeMiner)
  // the public reference: relay 'off' so it does not count as a second relay
  const pubMiner = proc(nat.ns.pub, [BIN, 'mine', '--models', 'tiny-llama', '--max-jobs', '1'], { ...(await minerEnv(`/ip4/${IPS.pub}/tcp/4022`, relayAddr)), HEURIST_P2P_RELAY: 'off', HEURIST_P2P_RELAY_RESERVATIONS: '0' })
  procs.push(pubMiner)
  const homeId = (await homeMiner.wait(l => l.msg === 'miner ready', 120_000, 'home miner')).peerId
  const pubId = (await pubMiner.wait(l => l.msg === 'miner ready', 120_000, 'public miner')).peerId
  await homeMiner.wait(l => l.msg === 'reachability' && l.reachability === 'private-via-relay', 30_000, 'home miner relay reservation')

  const client = proc(nat.ns.pub, [PEER, 'client', JSON.stringify({ listen: [`/ip4/${IPS.pub}/tcp/0`], bootstrap: [relayAddr] })])
  procs.push(client)
  await client.wait(l => l.ready === true, 30_000, 'client')
  for (let i = 0; i < 120; i++) {
    const info = await client.ask({ cmd: 'info' })
    const ids = info.miners.map(m => m.peerId)
    if (ids.includes(homeId) && ids.includes(pubId)) break
    await new Promise(resolve => setTimeout(resolve, 250))
  }
  // warm both paths (circuit set-up, model first run) before timing
  for (const miner of [homeId, pubId]) {
    const w = await client.ask({ cmd: 'job', miner, input: 'warm up', maxTokens: 4 })
    if (!w.ok) throw new Error(`warm-up job to ${miner} failed: ${w.error}`)
  }

  const side = { relayed: [], direct: [] }
  const relayCost = { cpuUs: 0, jobs: 0 }
  const rss0 = (await relay.ask({ cmd: 'stats' })).rssBytes
  let rssMax = rss0
  for (let i = 0; i < JOBS; i++) {
    // alternate so both sides see the same machine load
    for (const [name, miner] of [['relayed', homeId], ['direct', pubId]]) {
      const before = await relay.ask({ cmd: 'stats' })
      const r = await client.ask({ cmd: 'job', miner, input: `bench prompt number ${i}`, seed: i + 1, maxTokens: MAX_TOKENS })
      const after = await relay.ask({ cmd: 'stats' })
      if (!r.ok) throw new Error(`${name} job failed: ${r.error}`)
      side[name].push(r)
      rssMax = Math.max(rssMax, after.rssBytes)
      if (name === 'relayed') { relayCost.cpuUs += (after.cpuUserUs + after.cpuSystemUs) - (before.cpuUserUs + before.cpuSystemUs); relayCost.jobs++ } else {
        relayCost.idleCpuUs = (relayCost.idleCpuUs ?? 0) + (after.cpuUserUs + after.cpuSystemUs) - (before.cpuUserUs + before.cpuSystemUs)
      }
    }
  }
  const sum = xs => ({
    jobs: xs.length,
    ttftMsMedian: Number(median(xs.map(x => x.ttftMs)).toFixed(2)),
    tokensPerSecondMedian: Number(median(xs.map(x => x.tokensPerSecond)).toFixed(1)),
    totalMsMedian: Number(median(xs.map(x => x.totalMs)).toFixed(2)),
    tokensMedian: median(xs.map(x => x.tokens)),
    allReceiptsValid: xs.every(x => x.receiptValid),
    connections: [...new Set(xs.flatMap(x => x.connections.map(c => c.relayed ? 'relayed' : 'direct')))]
  })
  const relayed = sum(side.relayed)
  const direct = sum(side.direct)
  const last = side.relayed.at(-1)
  const final = await relay.ask({ cmd: 'stats' })
  console.log(JSON.stringify({
    bench: 'nat',
    note: 'home miner behind iptables MASQUERADE reached through a circuit relay v2, against a public miner reached directly; same tiny-llama model, 1 thread each, client in the public namespace; jobs alternate',
    jobsPerSide: JOBS,
    maxTokens: MAX_TOKENS,
    relayed,
    direct,
    ratios: {
      ttftRelayedOverDirect: Number((relayed.ttftMsMedian / direct.ttftMsMedian).toFixed(3)),
      tokensPerSecondRelayedOverDirect: Number((relayed.tokensPerSecondMedian / direct.tokensPerSecondMedian).toFixed(3))
    },
    holePunch: {
      upgradedToDirect: last.connections.some(c => !c.relayed),
      why: 'DCUtR and AutoNAT only act on public IPs; the namespaces use 10.231.0.0/16, so the relayed connection stays relayed and the public miner is the direct reference'
    },
    relay: {
      cpuMsPerRelayedJob: Number((relayCost.cpuUs / relayCost.jobs / 1000).toFixed(3)),
      cpuMsPerDirectJob: Number(((relayCost.idleCpuUs ?? 0) / JOBS / 1000).toFixed(3)),
      rssBytesStart: rss0,
      rssBytesMax: rssMax,
      rssGrowthBytesPerRelayedJob: Math.round((rssMax - rss0) / relayCost.jobs),
      openCircuits: final.openCircuits,
      reservations: final.reservations
    }
  }, null, 2))
} finally {
  await Promise.allSettled(procs.map(p => p.stop()))
  nat.teardown()
  await Promise.allSettled(dirs.map(d => rm(d, { recursive: true, force: true })))
}
