// Calibration of sim/gossipsim.mjs against real libp2p nodes (bench/mesh.mjs's set-up: one
// process, 127.0.0.1, a bootstrap star that peer exchange and advert dials turn into a mesh).
// Every node publishes a real capacity advert every `everyS` (random phase; 15 s by default, not
// 5 s: at 5 s the 30 nodes' signature checks alone starve this shared 2-core box, connections time
// out and the mesh falls apart, which calibrates nothing) for `seconds`; each
// node's gossipsub RPCs are counted on the way out (sendRpc) and in (handleReceivedRpc) and
// sized with gossipsub's own protobuf encoder. The simulation then runs on the same measured
// graph (connections and capacity mesh, snapshot every 2 s, one simulation per snapshot) with
// the measured CPU costs, and the errors are
// (sim − real) / real of the per-node means.
import '../dist/core/shim.js'
import { Wallet } from 'ethers'
import { loadavg } from 'node:os'
import { identityFromPrivateKey } from '../dist/core/identity.js'
import { silentLogger } from '../dist/core/logger.js'
import { createHeuristNode, encodeMessage, TOPICS } from '../dist/p2p/index.js'
import { RPC } from '../node_modules/@libp2p/gossipsub/dist/src/message/rpc.js'
import { sampleAdvert } from './scale-measure.mjs'
import { buildNetwork, runTopic, pct, defaultGossipParams } from '../sim/gossipsim.mjs'

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))
const r1 = x => Math.round(x * 10) / 10
const r3 = x => Math.round(x * 1000) / 1000

function instrument (ps) {
  const c = { out: { full: 0, fullBytes: 0, control: 0, controlBytes: 0 }, in: { full: 0, fullBytes: 0, control: 0, controlBytes: 0 } }
  const count = (side, rpc) => {
    const bytes = RPC.encode(rpc).length + 2
    const msgs = rpc.messages?.length ?? 0
    const ctl = rpc.control
    const ctlN = (ctl?.ihave?.length ?? 0) + (ctl?.iwant?.length ?? 0) + (ctl?.idontwant?.length ?? 0) + (ctl?.graft?.length ?? 0) + (ctl?.prune?.length ?? 0)
    if (msgs > 0) { c[side].full += msgs; c[side].fullBytes += bytes } else if (ctlN > 0) { c[side].control += ctlN; c[side].controlBytes += bytes }
  }
  const send = ps.sendRpc.bind(ps)
  ps.sendRpc = (id, rpc) => { const ok = send(id, rpc); if (ok) count('out', rpc); return ok }
  const recv = ps.handleReceivedRpc.bind(ps)
  ps.handleReceivedRpc = async (from, rpc) => { count('in', rpc); return await recv(from, rpc) }
  return c
}

export async function calibrate ({ n = 30, seconds = 30, everyS = 15, measured }) {
  const load = loadavg().map(r1)
  const mk = (init = {}) => createHeuristNode({ identity: identityFromPrivateKey(Wallet.createRandom().privateKey), logger: silentLogger(), listen: ['/ip4/127.0.0.1/tcp/0'], devnet: true, ...init })
  const nodes = [await mk()]
  const boot = nodes[0].multiaddrs()[0]
  for (let i = 1; i < n; i++) nodes.push(await mk({ bootstrap: [boot] }))
  const settleEnd = Date.now() + 30_000
  while (Date.now() < settleEnd && !nodes.every(x => x.pubsub.getMeshPeers(TOPICS.capacity).length >= Math.min(4, n - 1))) await sleep(250)
  await sleep(3000)
  // adverts to warm up discovery dials, then the measured window
  const arrivals = new Map()
  nodes.forEach((x, i) => x.peerTable.onAdvert(e => { const t = arrivals.get(`${e.address}:${e.advert.seq}`); if (t !== undefined && !t.got.has(i)) { t.got.add(i); t.lat.push(performance.now() - t.t0) } }))
  const seqs = new Array(n).fill(0)
  const publishOnce = async (i) => {
    const x = nodes[i]
    const seq = ++seqs[i]
    const a = sampleAdvert(x.identity, seq, Date.now(), x.multiaddrs())
    arrivals.set(`${x.address}:${seq}`, { t0: performance.now(), got: new Set(), lat: [] })
    await x.publishAdvert(a)
  }
  for (let i = 0; i < n; i++) await publishOnce(i)
  await sleep(3000)
  arrivals.clear()
  const snapshot = () => {
    const index = new Map(nodes.map((x, i) => [x.peerId.toString(), i]))
    return {
      conns: nodes.map(x => x.connectedPeers().map(p => index.get(p)).filter(i => i !== undefined)),
      mesh: nodes.map(x => x.pubsub.getMeshPeers(TOPICS.capacity).map(p => index.get(p)).filter(i => i !== undefined))
    }
  }
  const atStart = snapshot()
  const counters = nodes.map(x => instrument(x.pubsub))
  let heartbeats = 0
  const onBeat = () => { heartbeats++ }
  for (const x of nodes) x.pubsub.addEventListener('gossipsub:heartbeat', onBeat)
  const t0 = Date.now()
  const timers = nodes.map((_, i) => {
    const start = setTimeout(() => {
      publishOnce(i).catch(() => {})
      timers[i] = setInterval(() => { publishOnce(i).catch(() => {}) }, everyS * 1000)
    }, Math.random() * everyS * 1000)
    return start
  })
  // the graph moves (discovery dials, PX, timeouts under load): snapshot it every 2 s
  const snaps = [atStart]
  for (let waited = 0; waited < seconds * 1000; waited += 2000) { await sleep(2000); snaps.push(snapshot()) }
  for (const t of timers) { clearTimeout(t); clearInterval(t) }
  const window = (Date.now() - t0) / 1000
  const heartbeatMs = window * 1000 / (heartbeats / n)
  await sleep(1500) // let the last adverts land (counted: their sends were in the window)
  const published = [...arrivals.values()]
  const lat = published.flatMap(a => a.lat)
  const missing = published.reduce((s, a) => s + (n - 1 - a.got.size), 0)
  // the measured graph: as the window started (the mesh at its end is reported beside it)
  const atEnd = snapshot()
  const { conns, mesh } = atStart
  snaps.push(atEnd)
  await Promise.allSettled(nodes.map(x => x.stop()))
  const mean = f => counters.reduce((s, c) => s + f(c), 0) / n / window
  const real = {
    fullInPerS: mean(c => c.in.full), fullOutPerS: mean(c => c.out.full),
    bytesInPerS: mean(c => c.in.fullBytes + c.in.controlBytes), bytesOutPerS: mean(c => c.out.fullBytes + c.out.controlBytes),
    controlBytesInPerS: mean(c => c.in.controlBytes),
    deliveryP50Ms: pct(lat, 0.5), deliveryP99Ms: pct(lat, 0.99)
  }
  // the simulation of the same graph, adverts at the rate that was published
  const rate = published.length / window
  const topic = { name: 'capacity', subscribers: ['node'], publishers: ['node'], size: encodeMessage(sampleAdvert(nodes[0].identity, 1, Date.now())).length, cpuMs: measured.cpuMs.envelopeSignature + measured.cpuMs.advertValidator, wire: measured.wire, mesh }
  // one simulation per snapshot, each at 1/k of the rate: the graph's history, as measured
  const runs = snaps.map((g, k) => {
    // the heartbeat as it ran (a starved event loop beats late), not the configured 1 s
    const net = buildNetwork({ roles: [{ role: 'node', count: n, dials: 0, maxConns: 1000, uplinkBps: 1e9 }], topics: [{ ...topic, mesh: g.mesh }], graph: { conns: g.conns }, latency: { baseMs: 0.2, spanMs: 0 }, seed: k + 1, params: { ...defaultGossipParams, heartbeatMs } })
    return runTopic(net, 'capacity', { samples: 40, rate: rate / snaps.length, watch: ['node'], seed: k + 3 })
  })
  const s = { latencyMs: runs.flatMap(r => r.latencyMs) }
  const smean = (dir, cat) => runs.reduce((a, r) => a + r.counters[dir][cat].bytes.reduce((x, y) => x + y, 0), 0) / n
  const smsgs = (dir, cat) => runs.reduce((a, r) => a + r.counters[dir][cat].msgs.reduce((x, y) => x + y, 0), 0) / n
  const simMissing = runs.reduce((a, r) => a + r.missing, 0) / runs.reduce((a, r) => a + r.watchedTotal, 0)
  const sim = {
    fullInPerS: smsgs('in', 'full'), fullOutPerS: smsgs('out', 'full'),
    bytesInPerS: smean('in', 'full') + smean('in', 'control'), bytesOutPerS: smean('out', 'full') + smean('out', 'control'),
    controlBytesInPerS: smean('in', 'control'),
    deliveryP50Ms: pct(s.latencyMs, 0.5), deliveryP99Ms: pct(s.latencyMs, 0.99)
  }
  // per delivered advert (copies and bytes a node takes for each advert it gets): independent of
  // how much of the real mesh the load took down during the window
  const realDeliveredPerS = lat.length / window
  const simDeliveredPerS = runs.reduce((a, r) => a + r.latencyMs.length / r.samples * (rate / snaps.length), 0)
  real.copiesPerDelivery = real.fullInPerS * n / realDeliveredPerS
  sim.copiesPerDelivery = sim.fullInPerS * n / simDeliveredPerS
  real.bytesInPerDelivery = real.bytesInPerS * n / realDeliveredPerS
  sim.bytesInPerDelivery = sim.bytesInPerS * n / simDeliveredPerS
  const err = k => r3((sim[k] - real[k]) / real[k])
  const round = o => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, r1(v)]))
  return {
    nodes: n,
    advertEveryS: everyS,
    windowS: r1(window),
    advertsPublished: published.length,
    deliveries: lat.length,
    missing,
    missingFraction: { real: r3(missing / (published.length * (n - 1))), sim: r3(simMissing) },
    graphSnapshots: snaps.length,
    heartbeatMsMeasured: r1(heartbeatMs),
    connectionsMean: r1(conns.reduce((a, c) => a + c.length, 0) / n),
    meshMean: r1(mesh.reduce((a, c) => a + c.length, 0) / n),
    connectionsMeanAtEnd: r1(atEnd.conns.reduce((a, c) => a + c.length, 0) / n),
    meshMeanAtEnd: r1(atEnd.mesh.reduce((a, c) => a + c.length, 0) / n),
    loadavgBefore: load,
    loadavgAfter: loadavg().map(r1),
    real: round(real),
    sim: round(sim),
    relativeError: { copiesPerDelivery: err('copiesPerDelivery'), bytesInPerDelivery: err('bytesInPerDelivery'), fullIn: err('fullInPerS'), fullOut: err('fullOutPerS'), bytesIn: err('bytesInPerS'), bytesOut: err('bytesOutPerS'), controlBytesIn: err('controlBytesInPerS'), deliveryP50: err('deliveryP50Ms'), deliveryP99: err('deliveryP99Ms') }
  }
}
