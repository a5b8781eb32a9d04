// Gateway routing at 10,000 adverts: the real PeerTable fed 10,000 validated-shape adverts
// (3 models each out of 20), the real mesh backend's candidates, observed-speed ranking and
// the whitepaper order (rankCandidates), timed per request; the table's heap. Used by bench/scale.mjs.
import '../dist/core/shim.js'
import { Wallet, hexlify, randomBytes } from 'ethers'
import { silentLogger } from '../dist/core/logger.js'
import { PeerTable } from '../dist/p2p/index.js'
import { createMeshBackend, rankCandidates } from '../dist/gateway/index.js'
import { ObservedSpeeds } from '../dist/gateway/observed.js'
import { identityFromPrivateKey } from '../dist/core/identity.js'
import { sampleAdvert } from './scale-measure.mjs'

const r3 = x => Math.round(x * 1000) / 1000
const pct = (xs, p) => { const s = [...xs].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.ceil(p * s.length) - 1)] }

export async function routingBench ({ adverts = 10_000, requests = 300, models = 20 } = {}) {
  const base = sampleAdvert(identityFromPrivateKey(Wallet.createRandom().privateKey), 1, Date.now())
  const modelIds = Array.from({ length: models }, () => hexlify(randomBytes(32)).slice(2))
  global.gc?.(); const before = process.memoryUsage().heapUsed
  const table = new PeerTable(null, silentLogger(), { maxMiners: adverts })
  const now = Date.now()
  for (let i = 0; i < adverts; i++) {
    const operator = hexlify(randomBytes(20))
    const ms = [0, 1, 2].map(k => ({ ...base.models[k], id: modelIds[(i * 3 + k) % models] }))
    // adverts parse into fresh objects on a real gateway: each is its own copy
    const advert = JSON.parse(JSON.stringify({ ...base, operator, seq: i + 1, ts: now, ttlMs: 600_000, models: ms, tokensPerSecond: 20 + (i % 80), addrs: [`/ip4/10.${i >> 16 & 255}.${i >> 8 & 255}.${i & 255}/tcp/4001`] }))
    table.update(`peer-${i}`, advert)
  }
  global.gc?.(); const after = process.memoryUsage().heapUsed
  const backend = createMeshBackend({ peerTable: table, runJob: async () => { throw new Error('not in this bench') } }, silentLogger())
  const observed = new ObservedSpeeds()
  const referred = new Set()
  const times = []; const lookups = []
  for (let i = 0; i < requests; i++) {
    const modelId = modelIds[i % models]
    const t = performance.now()
    const found = backend.candidates(modelId)
    const t1 = performance.now()
    const ranked = rankCandidates(observed.rankSpeeds(found, 'llm'), { referred })
    times.push(performance.now() - t); lookups.push(t1 - t)
    if (ranked.length === 0) throw new Error('no candidates')
  }
  // side by side: the lookup as the table did it before its index (every entry, filtered by model)
  const scans = []
  for (let i = 0; i < requests; i++) {
    const modelId = modelIds[i % models]
    const t = performance.now()
    const all = table.miners().filter(e => e.advert.models.some(m => m.id === modelId)).sort((a, b) => b.lastSeen - a.lastSeen)
    scans.push(performance.now() - t)
    if (all.length === 0) throw new Error('no candidates')
  }
  const perModel = backend.candidates(modelIds[0]).length
  return {
    adverts,
    models,
    candidatesPerModel: perModel,
    requests,
    decisionMsP50: r3(pct(times, 0.5)),
    decisionMsP99: r3(pct(times, 0.99)),
    ofWhichPeerTableLookupMsP50: r3(pct(lookups, 0.5)),
    linearScanLookupMsP50: r3(pct(scans, 0.5)),
    lookupSpeedup: r3(pct(scans, 0.5) / pct(lookups, 0.5)),
    peerTableHeapMiB: global.gc === undefined ? 'run with --expose-gc' : r3((after - before) / 2 ** 20),
    heapPerAdvertKiB: global.gc === undefined ? null : r3((after - before) / adverts / 1024)
  }
}
