// Internet-scale benchmark (issue 23): prints one JSON table. Run `npm run build` first;
// `npm run bench:scale` (all parts) or `node bench/scale.mjs --parts=sim,routing,epoch`.
// Parts:
//   measure   — sizes and CPU of the real messages and validators (bench/scale-measure.mjs)
//   calibrate — real libp2p nodes on 127.0.0.1 vs the simulation of the same graph (bench/scale-calibrate.mjs)
//   sim       — 1,000 and 10,000 miners: before, unsharded (adverts and receipts changes only) and
//               after (with verdicts sharded by miner, as on main) (sim/gossipsim.mjs)
//   routing   — gateway routing decision and peer-table memory at 10,000 adverts
//   epoch     — reward tree (root + every proof) at 10,000 and 100,000 miners, OpenZeppelin vs ours
import { loadavg, cpus } from 'node:os'
import { measureMessages } from './scale-measure.mjs'
import { buildNetwork, runTopic, sumCounters, perRole, pct, defaultGossipParams } from '../sim/gossipsim.mjs'
import { VERDICT_SHARDS } from '../dist/p2p/index.js'

const args = new Map(process.argv.slice(2).map(a => a.replace(/^--/, '').split('=')))
const PARTS = new Set((args.get('parts') ?? 'measure,calibrate,sim,routing,epoch').split(','))
const SAMPLES = Number(args.get('samples') ?? 40)
const JOBS = Number(args.get('jobs') ?? 100)
const r1 = x => Math.round(x * 10) / 10

/**
 * What each role subscribes to and publishes (docs/scale.md): `before` the changes of issue 23,
 * `unsharded` with adverts and receipts only at gateways and validators but one verdicts topic,
 * `after` as on main (verdicts also sharded by the judged miner, p2p/messages.ts verdictTopic).
 */
export function protocol (kind, { miners, validators, jobsPerS, sizes, cpuMs, wire, advertEveryS }) {
  const sig = cpuMs.envelopeSignature
  const verdictRate = jobsPerS * 0.1 * validators // each validator samples 10 % of receipts (validation/validator.ts)
  const verdicts = { name: 'verdicts', subscribers: ['miner', 'validator'], publishers: ['validator'], size: sizes.verdict, cpuMs: sig + cpuMs.verdictValidator, rate: verdictRate, wire }
  const common = [verdicts]
  if (kind === 'after') {
    // verdicts on VERDICT_SHARDS topics by the judged miner's address: each miner in its own
    // shard (one miner in VERDICT_SHARDS is simulated in it), validators in all
    const shards = VERDICT_SHARDS
    common[0] = { ...verdicts, shards, member: (v, role) => role !== 'miner' || v % shards === 0 }
  }
  if (kind === 'before') {
    return [
      { name: 'capacity', subscribers: ['miner', 'gateway', 'validator'], publishers: ['miner'], size: sizes.advert, cpuMs: sig + cpuMs.advertValidator, rate: miners / 5, wire },
      { name: 'receipts', subscribers: ['miner', 'gateway', 'validator'], publishers: ['gateway'], size: sizes.receipt, cpuMs: sig + cpuMs.receiptValidator, rate: jobsPerS, wire },
      ...common
    ]
  }
  // miners with p2p.subscribeAdverts and p2p.subscribeReceipts false; gateways and validators as by default
  return [
    // change-driven adverts: a heartbeat every advertEveryS plus one per job start/end (≥ 1 s apart)
    { name: 'capacity', subscribers: ['gateway', 'validator'], publishers: ['miner'], size: sizes.advert, cpuMs: sig + cpuMs.advertValidator, rate: miners / advertEveryS + 2 * jobsPerS, wire },
    { name: 'receipts', subscribers: ['gateway', 'validator'], publishers: ['gateway'], size: sizes.receipt, cpuMs: sig + cpuMs.receiptValidator, rate: jobsPerS, wire },
    ...common
  ]
}

export function roles (kind, { miners, gateways, validators }) {
  const home = 20e6 / 8 // a home miner's uplink: 20 Mbit/s
  const dc = 1e9 / 8
  if (kind === 'before') {
    // today: every node dials 8 (targetPeers), accepts up to 100 (maxConnections)
    return {
      roles: [
        { role: 'miner', count: miners, dials: 8, maxConns: 100, uplinkBps: home },
        { role: 'gateway', count: gateways, dials: 8, maxConns: 100, uplinkBps: dc },
        { role: 'validator', count: validators, dials: 8, maxConns: 100, uplinkBps: dc }
      ],
      infra: []
    }
  }
  // after: miners keep 4 of their 8 connections to gateways/validators (the bootstrap list),
  // which accept up to 1,000 (p2p.maxConnections on infrastructure)
  // and dial each other (their bootstrap lists name each other)
  return {
    roles: [
      { role: 'miner', count: miners, dials: 8, infraDials: 4, maxConns: 100, uplinkBps: home },
      { role: 'gateway', count: gateways, dials: 8, infraDials: 8, maxConns: 1000, uplinkBps: dc },
      { role: 'validator', count: validators, dials: 8, infraDials: 8, maxConns: 1000, uplinkBps: dc }
    ],
    infra: ['gateway', 'validator']
  }
}

/** Advert age at a gateway at a random moment: time since the miner's last advert + its delivery. */
function advertAges ({ everyS, jobsPerMiner, deliveries, n = 20000, seed = 7 }) {
  let a = seed; const rand = () => { a = (a * 1103515245 + 12345) % 2147483648; return a / 2147483648 }
  const ages = []
  for (let i = 0; i < n; i++) {
    // last heartbeat uniformly within the interval; a change (job start/end) resets it if more recent
    let since = rand() * everyS
    if (jobsPerMiner > 0) { const lastChange = -Math.log(1 - rand()) / (2 * jobsPerMiner); if (lastChange >= 1) since = Math.min(since, lastChange) }
    ages.push(since * 1000 + deliveries[Math.floor(rand() * deliveries.length)])
  }
  return ages
}

export function scenario (kind, size, m, { samples = SAMPLES, jobsPerS = JOBS, advertEveryS = 5, churnPerMin = 0.01 } = {}) {
  const t0 = performance.now()
  const topics = protocol(kind, { ...size, jobsPerS, ...m, advertEveryS })
  const { roles: rs, infra } = roles(kind, size)
  const net = buildNetwork({ roles: rs, infra, topics, seed: size.miners })
  // away: nodes that joined or left within the last heartbeat (mesh not repaired yet)
  const awayFraction = churnPerMin / 60 * defaultGossipParams.heartbeatMs / 1000
  const res = {}
  for (const t of topics) {
    const watch = t.name === 'capacity' ? ['gateway'] : t.name === 'receipts' ? ['validator'] : ['miner']
    res[t.name] = runTopic(net, t.name, { samples, rate: t.rate, awayFraction, seed: 11, watch })
  }
  const total = sumCounters(net.N, Object.values(res).map(r => r.counters))
  const adv = res.capacity
  const ages = advertAges({ everyS: kind === 'before' ? 5 : advertEveryS, jobsPerMiner: kind === 'before' ? 0 : jobsPerS / size.miners, deliveries: adv.latencyMs })
  // how long a change (a job taken, a model loaded) takes to show at a gateway: the next
  // periodic advert before; the next 1 s check after (change-driven)
  const rnd = (() => { let a = 99; return () => { a = (a * 1103515245 + 12345) % 2147483648; return a / 2147483648 } })()
  const lag = Array.from({ length: 20000 }, () => rnd() * (kind === 'before' ? 5000 : 1000) + adv.latencyMs[Math.floor(rnd() * adv.latencyMs.length)])
  const conns = net.conns.map(c => c.length)
  const byRole = r => { const xs = []; for (let v = 0; v < net.N; v++) if (net.role[v] === r) xs.push(conns[v]); return Math.round(xs.reduce((s, x) => s + x, 0) / xs.length) }
  const roleTable = perRole(net, total)
  // with sharded verdicts only 1 miner in 256 is simulated in the shard: the mean is scaled, a percentile is not
  if (kind === 'after') roleTable.miner.totalKBpsP90 = null
  return {
    protocol: kind,
    ...size,
    jobsPerS,
    topics: Object.fromEntries(topics.map(t => [t.name, { msgsPerS: r1(t.rate), bytes: t.size, subscribers: t.subscribers.join('+') }])),
    connectionsMean: { miner: byRole('miner'), gateway: byRole('gateway'), validator: byRole('validator') },
    perRole: roleTable,
    advertAtGatewaysMs: { deliveryP50: r1(pct(adv.latencyMs, 0.5)), deliveryP99: r1(pct(adv.latencyMs, 0.99)), ageP50: r1(pct(ages, 0.5)), ageP99: r1(pct(ages, 0.99)), changeShownP50: r1(pct(lag, 0.5)), changeShownP99: r1(pct(lag, 0.99)), missed: adv.missing, of: adv.watchedTotal },
    receiptToValidatorsMs: { p50: r1(pct(res.receipts.latencyMs, 0.5)), p99: r1(pct(res.receipts.latencyMs, 0.99)), missed: res.receipts.missing, of: res.receipts.watchedTotal },
    sampledMessagesPerTopic: samples,
    simSeconds: r1((performance.now() - t0) / 1000)
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const out = { bench: 'scale', node: process.versions.node, cpus: cpus().length, loadavgAtStart: loadavg().map(r1) }
  const m = await measureMessages()
  if (PARTS.has('measure')) out.measured = m
  if (PARTS.has('calibrate')) {
    const { calibrate } = await import('./scale-calibrate.mjs')
    out.calibration = await calibrate({ n: Number(args.get('calib-nodes') ?? 30), seconds: Number(args.get('calib-seconds') ?? 30), everyS: Number(args.get('calib-every') ?? 15), measured: m })
  }
  if (PARTS.has('sim')) {
    out.sim = []
    const sizes = (args.get('sizes') ?? '1000:10:10,10000:50:50').split(',').map(s => { const [miners, gateways, validators] = s.split(':').map(Number); return { miners, gateways, validators } })
    for (const size of sizes) for (const kind of ['before', 'unsharded', 'after']) out.sim.push(scenario(kind, size, m))
    // side by side: a node's bytes (in + out) before / after, per role and size
    out.simRatios = sizes.map(size => {
      const at = kind => out.sim.find(s => s.protocol === kind && s.miners === size.miners).perRole
      const total = (t, r) => t[r].inKBps + t[r].outKBps
      const ratio = (a, b, r) => Math.round(total(at(a), r) / total(at(b), r) * 10) / 10
      return { miners: size.miners, bytesBeforeOverAfter: Object.fromEntries(['miner', 'gateway', 'validator'].map(r => [r, ratio('before', 'after', r)])), bytesUnshardedOverAfter: Object.fromEntries(['miner', 'gateway', 'validator'].map(r => [r, ratio('unsharded', 'after', r)])) }
    })
  }
  if (PARTS.has('routing')) { const { routingBench } = await import('./scale-routing.mjs'); out.routing = await routingBench() }
  if (PARTS.has('epoch')) { const { epochBench } = await import('./scale-epoch.mjs'); out.epoch = await epochBench() }
  out.loadavgAtEnd = loadavg().map(r1)
  console.log(JSON.stringify(out, null, 2))
  process.exit(0)
}
