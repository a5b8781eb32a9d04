// A discrete-event model of gossipsub (v1.1 mesh + v1.2 IDONTWANT) as js-gossipsub runs it,
// sized for 1,000–10,000 nodes in minutes. Pure: no I/O, no libp2p; every size and CPU cost is
// passed in by the caller (bench/scale.mjs measures them on the real codecs and validators).
//
// What is modelled, per topic:
// - connections: each node dials `dials` random peers (miners may be told to dial infrastructure
//   nodes first); inbound accepted up to `maxConns`;
// - the mesh: each subscriber grafts up to D topic peers among its connections, prunes above
//   Dhi back to D, grafts again below Dlo (one settling pass, as after a few heartbeats);
// - publish: flood publish (js-gossipsub's default) to every connected topic peer, whether the
//   publisher is subscribed (mesh) or not (fanout);
// - forward: on first receipt a node sends IDONTWANT (data ≥ 512 bytes) to its mesh peers,
//   validates (CPU time, measured), then forwards to its mesh peers except the source and the
//   origin and those whose IDONTWANT already reached it;
// - gossip: each heartbeat a node sends IHAVE with the ids of the last `historyGossip`
//   heartbeats (≤ maxIHaveLength) to max(Dlazy, gossipFactor × non-mesh topic peers) of them;
//   a peer that lacks a message answers IWANT and gets it (one heartbeat simulated per message
//   for IWANT; IHAVE bytes are counted in expectation for every heartbeat);
// - links: one-way latency from positions on a ring (regions), the sender's uplink serializes
//   the copies of one message (other traffic on the link is not queued: see `utilization`);
// - churn: a fraction of nodes is away (joined or left less than one heartbeat ago, mesh not
//   yet repaired) during each simulated message.
// Messages are simulated by sampling: `samples` messages per topic, drawn over publishers, each
// disseminated through the whole network; per-node counts are scaled by the topic's total rate.

export function rng (seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Binary min-heap of events (time, a, b, kind). */
class Heap {
  constructor () { this.t = []; this.a = []; this.b = []; this.k = [] }
  get size () { return this.t.length }
  push (t, a, b, k) {
    const T = this.t; const A = this.a; const B = this.b; const K = this.k
    let i = T.length; T.push(t); A.push(a); B.push(b); K.push(k)
    while (i > 0) {
      const p = (i - 1) >> 1
      if (T[p] <= t) break
      T[i] = T[p]; A[i] = A[p]; B[i] = B[p]; K[i] = K[p]; i = p
    }
    T[i] = t; A[i] = a; B[i] = b; K[i] = k
  }
  pop (out) {
    const T = this.t; const A = this.a; const B = this.b; const K = this.k
    out.t = T[0]; out.a = A[0]; out.b = B[0]; out.k = K[0]
    const lt = T.pop(); const la = A.pop(); const lb = B.pop(); const lk = K.pop()
    const n = T.length
    if (n === 0) return out
    let i = 0
    for (;;) {
      let c = 2 * i + 1
      if (c >= n) break
      if (c + 1 < n && T[c + 1] < T[c]) c++
      if (T[c] >= lt) break
      T[i] = T[c]; A[i] = A[c]; B[i] = B[c]; K[i] = K[c]; i = c
    }
    T[i] = lt; A[i] = la; B[i] = lb; K[i] = lk
    return out
  }
}

export const defaultGossipParams = { D: 6, Dlo: 4, Dhi: 12, Dlazy: 6, gossipFactor: 0.25, heartbeatMs: 1000, historyGossip: 3, maxIHaveLength: 5000, idontwantMinDataSize: 512 }

/**
 * Wire sizes (bytes) of gossipsub's RPC pieces, measured by the caller on real RPCs:
 * envelope = a one-message RPC minus its data; idLen = a message id (StrictSign: key + seqno);
 * controlOverhead = the framing of one control RPC; perId = bytes per id inside IHAVE/IWANT/IDONTWANT.
 */
export const defaultWire = { envelope: 160, idLen: 41, perId: 43, controlOverhead: 12, topicLen: 20 }

/**
 * Builds the network: nodes with roles, positions, links; connections; per-topic meshes.
 * roles: [{ role, count, dials, maxConns, uplinkBps, infraDials }] (infraDials: of its dials, how
 * many go to nodes whose role is in `infra`).
 */
export function buildNetwork ({ roles, infra = [], topics, params = defaultGossipParams, seed = 1, latency = { baseMs: 5, spanMs: 100 }, graph }) {
  const rand = rng(seed)
  const role = []; const spec = []
  for (const r of roles) for (let i = 0; i < r.count; i++) { role.push(r.role); spec.push(r) }
  const N = role.length
  const pos = Float64Array.from({ length: N }, () => rand())
  const uplink = Float64Array.from(spec, s => s.uplinkBps)
  const conns = Array.from({ length: N }, () => new Set())
  const infraIds = []; for (let i = 0; i < N; i++) if (infra.includes(role[i])) infraIds.push(i)
  const order = Array.from({ length: N }, (_, i) => i)
  for (let i = N - 1; i > 0; i--) { const j = Math.floor(rand() * (i + 1)); [order[i], order[j]] = [order[j], order[i]] }
  // `graph`: a measured topology (calibration): connections as given, no dialling
  if (graph !== undefined) graph.conns.forEach((cs, v) => { for (const u of cs) { conns[v].add(u); conns[u].add(v) } })
  for (const v of graph === undefined ? order : []) {
    const s = spec[v]
    const want = s.dials
    let infraLeft = Math.min(s.infraDials ?? 0, infraIds.length)
    // a node dials until it holds `dials` connections (inbound ones count, as libp2p's targetPeers does),
    // but its infrastructure dials are made regardless (bootstrap peers are always dialled)
    let made = 0
    for (let tries = 0; (conns[v].size < want || infraLeft > 0) && made < want && tries < want * 20; tries++) {
      const fromInfra = infraLeft > 0
      const u = fromInfra ? infraIds[Math.floor(rand() * infraIds.length)] : Math.floor(rand() * N)
      if (u === v || conns[v].has(u) || conns[u].size >= spec[u].maxConns) continue
      conns[v].add(u); conns[u].add(v); made++
      if (fromInfra) infraLeft--
    }
  }
  const connArr = conns.map(s => Int32Array.from(s))
  const net = { N, role, pos, uplink, conns: connArr, params, latency, topics: {} }
  for (const t of topics) net.topics[t.name] = buildTopic(net, t, rand)
  return net
}

function buildTopic (net, t, rand) {
  const { N, role, conns, params } = net
  const sub = new Uint8Array(N)
  // `member(v)`: for a topic sharded over miners, whether node v is in this shard (others of
  // its roles are not subscribed)
  for (let i = 0; i < N; i++) if (t.subscribers.includes(role[i]) && (t.member === undefined || t.member(i, role[i]))) sub[i] = 1
  const mesh = Array.from({ length: N }, () => new Set())
  const topicPeers = conns.map((c, v) => sub[v] === 1 ? c.filter(u => sub[u] === 1) : c.filter(u => sub[u] === 1))
  const shuffle = a => { const b = Array.from(a); for (let i = b.length - 1; i > 0; i--) { const j = Math.floor(rand() * (i + 1)); [b[i], b[j]] = [b[j], b[i]] } return b }
  if (t.mesh !== undefined) {
    // a measured mesh (calibration)
    const meshArr = t.mesh.map(m => Int32Array.from(m))
    const gossipPeers = topicPeers.map((p, v) => sub[v] === 1 ? Int32Array.from(p.filter(u => !t.mesh[v].includes(u))) : new Int32Array(0))
    return { ...t, sub, mesh: meshArr, topicPeers: topicPeers.map(p => Int32Array.from(p)), gossipPeers }
  }
  const graftUpTo = (v, target) => {
    for (const u of shuffle(topicPeers[v])) {
      if (mesh[v].size >= target) break
      if (mesh[v].has(u) || mesh[u].size >= params.Dhi) continue
      mesh[v].add(u); mesh[u].add(v)
    }
  }
  const subs = []; for (let v = 0; v < N; v++) if (sub[v] === 1) subs.push(v)
  for (const v of shuffle(subs)) graftUpTo(v, params.D)
  for (const v of subs) {
    if (mesh[v].size > params.Dhi) {
      for (const u of shuffle(mesh[v]).slice(params.D)) { mesh[v].delete(u); mesh[u].delete(v) }
    }
  }
  for (const v of subs) if (mesh[v].size < params.Dlo) graftUpTo(v, params.D)
  const meshArr = mesh.map(s => Int32Array.from(s))
  // non-mesh topic peers, the IHAVE targets
  const gossipPeers = topicPeers.map((p, v) => sub[v] === 1 ? Int32Array.from(p.filter(u => !mesh[v].has(u))) : new Int32Array(0))
  return { ...t, sub, mesh: meshArr, topicPeers: topicPeers.map(p => Int32Array.from(p)), gossipPeers }
}

export function latencyMs (net, a, b) {
  const d = Math.abs(net.pos[a] - net.pos[b])
  return net.latency.baseMs + net.latency.spanMs * 2 * Math.min(d, 1 - d)
}

/** Per-node counters, per category. */
function counters (N) {
  const mk = () => ({ msgs: new Float64Array(N), bytes: new Float64Array(N) })
  return { in: { full: mk(), control: mk() }, out: { full: mk(), control: mk() }, validations: new Float64Array(N), cpuMs: new Float64Array(N) }
}

function add (c, dir, cat, v, bytes, n = 1) { c[dir][cat].msgs[v] += n; c[dir][cat].bytes[v] += bytes }

/**
 * Runs one topic: `samples` messages from random publishers (of the topic's publisher roles),
 * each through the whole network. Returns per-node per-second counters (scaled by `rate`,
 * the topic's messages per second network-wide) and the delivery latencies seen by `watch` roles.
 */
export function runTopic (net, topicName, { samples, rate, awayFraction = 0, seed = 2, watch = [] }) {
  const T = net.topics[topicName]
  const { N, params, role } = net
  const W = T.wire ?? defaultWire
  const rand = rng(seed)
  const pubs = []; for (let v = 0; v < N; v++) if (T.publishers.includes(role[v])) pubs.push(v)
  const c = counters(N)
  const full = T.size + W.envelope
  const idwBytes = W.controlOverhead + W.perId
  const cpuMs = T.cpuMs // CPU per first receipt: gossipsub's signature check plus the topic validator
  const arrive = new Float64Array(N); const src = new Int32Array(N); const away = new Uint8Array(N)
  const watched = new Uint8Array(N); for (let v = 0; v < N; v++) if (watch.includes(role[v])) watched[v] = 1
  const lat = []; let missing = 0; let watchedTotal = 0; let viaIwant = 0; let had = 0; let subs = 0
  const heap = new Heap(); const ev = { t: 0, a: 0, b: 0, k: 0 }
  const ARRIVE = 0; const FORWARD = 1
  const hbPhase = Float64Array.from({ length: N }, () => rand() * params.heartbeatMs)
  const useIdw = T.size >= params.idontwantMinDataSize
  for (let s = 0; s < samples; s++) {
    arrive.fill(Infinity); src.fill(-1)
    for (let v = 0; v < N; v++) away[v] = rand() < awayFraction ? 1 : 0
    const p = pubs[Math.floor(rand() * pubs.length)]
    away[p] = 0
    arrive[p] = 0
    // flood publish to every connected topic peer, copies serialized on the uplink
    let k = 0
    for (const u of T.topicPeers[p]) {
      k++
      add(c, 'out', 'full', p, full)
      heap.push(k * full / net.uplink[p] * 1000 + latencyMs(net, p, u), u, p, ARRIVE)
    }
    while (heap.size > 0) {
      heap.pop(ev)
      const t = ev.t; const v = ev.a; const from = ev.b
      if (ev.k === ARRIVE) {
        if (away[v] === 1) continue
        add(c, 'in', 'full', v, full)
        if (arrive[v] <= t) continue // a duplicate: dropped by the seen cache, not validated
        arrive[v] = t; src[v] = from
        c.validations[v] += 1; c.cpuMs[v] += cpuMs
        if (T.sub[v] === 1 && useIdw) {
          for (const u of T.mesh[v]) {
            if (u === from) continue
            add(c, 'out', 'control', v, idwBytes)
            if (away[u] === 0) add(c, 'in', 'control', u, idwBytes)
          }
        }
        if (T.sub[v] === 1) heap.push(t + cpuMs, v, from, FORWARD)
      } else {
        // forward after validation, to mesh peers that have not told us they have it
        let k2 = 0
        for (const u of T.mesh[v]) {
          if (u === from || u === p) continue
          if (useIdw && arrive[u] !== Infinity && src[u] !== v && arrive[u] + latencyMs(net, u, v) <= t) continue
          k2++
          add(c, 'out', 'full', v, full)
          heap.push(t + k2 * full / net.uplink[v] * 1000 + latencyMs(net, v, u), u, v, ARRIVE)
        }
      }
    }
    // IWANT at the first heartbeat after each node has the message (later heartbeats only
    // matter for nodes still without it: simulated while any remain, up to historyGossip)
    for (let h = 1; h <= params.historyGossip; h++) {
      let lacking = 0
      for (let v = 0; v < N; v++) if (T.sub[v] === 1 && away[v] === 0 && arrive[v] === Infinity) lacking++
      if (h > 1 && lacking === 0) break
      for (let v = 0; v < N; v++) {
        if (arrive[v] === Infinity || T.sub[v] !== 1) continue
        const gp = T.gossipPeers[v]
        if (gp.length === 0) continue
        const g = Math.min(gp.length, Math.max(params.Dlazy, Math.floor(params.gossipFactor * gp.length)))
        const hb = hbPhase[v] + params.heartbeatMs * (Math.floor((arrive[v] - hbPhase[v]) / params.heartbeatMs) + h)
        for (let i = 0; i < g; i++) {
          const u = gp[Math.floor(rand() * gp.length)]
          if (away[u] === 1) continue
          const l = latencyMs(net, v, u)
          if (arrive[u] <= hb + l) continue
          add(c, 'out', 'control', u, W.controlOverhead + W.perId); add(c, 'in', 'control', v, W.controlOverhead + W.perId)
          add(c, 'out', 'full', v, full); add(c, 'in', 'full', u, full)
          const got = hb + 3 * l + full / net.uplink[v] * 1000
          if (got < arrive[u]) {
            if (arrive[u] === Infinity) { c.validations[u] += 1; c.cpuMs[u] += cpuMs; viaIwant++ }
            arrive[u] = got
          }
        }
      }
    }
    for (let v = 0; v < N; v++) if (T.sub[v] === 1) { subs++; if (arrive[v] !== Infinity) had++ }
    for (let v = 0; v < N; v++) {
      if (watched[v] !== 1 || v === p || away[v] === 1) continue
      watchedTotal++
      if (arrive[v] === Infinity) missing++
      else lat.push(arrive[v])
    }
  }
  // a sharded topic is simulated on one shard at rate/shards; by symmetry each node's cost over
  // all shards is `shards` times its expected cost in one (every miner is in one shard, a
  // validator in all)
  const shards = T.shards ?? 1
  const scale = rate / shards / samples * shards
  for (const dir of ['in', 'out']) for (const cat of ['full', 'control']) { c[dir][cat].msgs = c[dir][cat].msgs.map(x => x * scale); c[dir][cat].bytes = c[dir][cat].bytes.map(x => x * scale) }
  c.validations = c.validations.map(x => x * scale); c.cpuMs = c.cpuMs.map(x => x * scale)
  // IHAVE, in expectation: every heartbeat, the ids of the last historyGossip heartbeats
  // (ids of the messages a node has: the topic's rate times the fraction delivered)
  const ids = Math.min(params.maxIHaveLength, rate / shards * (subs === 0 ? 1 : had / subs) * params.historyGossip * params.heartbeatMs / 1000)
  if (ids > 0) {
    const ihave = W.controlOverhead + W.topicLen + ids * W.perId
    const perSec = 1000 / params.heartbeatMs
    for (let v = 0; v < N; v++) {
      const gp = T.gossipPeers[v]
      if (T.sub[v] !== 1 || gp.length === 0) continue
      const g = Math.min(gp.length, Math.max(params.Dlazy, Math.floor(params.gossipFactor * gp.length)))
      add(c, 'out', 'control', v, shards * g * ihave * perSec, shards * g * perSec)
      for (const u of gp) add(c, 'in', 'control', u, shards * g / gp.length * ihave * perSec, shards * g / gp.length * perSec)
    }
  }
  return { counters: c, latencyMs: lat, missing, watchedTotal, viaIwant, samples }
}

/** Sums per-topic counters into one per-node view. */
export function sumCounters (N, list) {
  const c = counters(N)
  for (const x of list) {
    for (const dir of ['in', 'out']) for (const cat of ['full', 'control']) for (let v = 0; v < N; v++) { c[dir][cat].msgs[v] += x[dir][cat].msgs[v]; c[dir][cat].bytes[v] += x[dir][cat].bytes[v] }
    for (let v = 0; v < N; v++) { c.validations[v] += x.validations[v]; c.cpuMs[v] += x.cpuMs[v] }
  }
  return c
}

export const pct = (xs, p) => { if (xs.length === 0) return NaN; const s = Float64Array.from(xs).sort(); return s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))] }

/** Mean and p90 per role of messages, bytes (in/out), validations and CPU ms, per second. */
export function perRole (net, c) {
  const out = {}
  const roles = [...new Set(net.role)]
  for (const r of roles) {
    const ids = []; for (let v = 0; v < net.N; v++) if (net.role[v] === r) ids.push(v)
    const mean = f => ids.reduce((s, v) => s + f(v), 0) / ids.length
    const p90 = f => pct(ids.map(f), 0.9)
    const inB = v => c.in.full.bytes[v] + c.in.control.bytes[v]
    const outB = v => c.out.full.bytes[v] + c.out.control.bytes[v]
    const inM = v => c.in.full.msgs[v] + c.in.control.msgs[v]
    const outM = v => c.out.full.msgs[v] + c.out.control.msgs[v]
    const r1 = x => Math.round(x * 10) / 10
    out[r] = {
      nodes: ids.length,
      inMsgsPerS: r1(mean(inM)),
      outMsgsPerS: r1(mean(outM)),
      inKBps: r1(mean(inB) / 1000),
      outKBps: r1(mean(outB) / 1000),
      totalKBpsP90: r1(p90(v => inB(v) + outB(v)) / 1000),
      validationsPerS: r1(mean(v => c.validations[v])),
      validationCpuMsPerS: r1(mean(v => c.cpuMs[v]))
    }
  }
  return out
}
