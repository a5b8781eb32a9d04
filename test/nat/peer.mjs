// A mesh peer for the NAT test and bench, run inside a namespace (`ip netns exec NS node
// test/nat/peer.mjs ROLE 'JSON'`). It imports the built code (dist/). Roles:
//   relay   a public bootstrap node serving as relay, with the limits given
//   client  a node that runs jobs on the miner it hears adverts from
// It prints one JSON line {"ready":...} when started, then answers one JSON line per command
// read from stdin ({"cmd":"job"|"dial"|"stats"|"info", ...}); stdin closing stops it.
import '../../dist/core/shim.js'
import { createInterface } from 'node:readline'
import { connect } from 'node:net'
import { Wallet } from 'ethers'
import { multiaddr } from '@multiformats/multiaddr'
import { createHeuristNode, isRelayed } from '../../dist/p2p/index.js'
import { identityFromPrivateKey } from '../../dist/core/identity.js'
import { createLogger } from '../../dist/core/logger.js'

const [role, json] = process.argv.slice(2)
const o = JSON.parse(json ?? '{}')
const logger = createLogger({ level: o.logLevel ?? 'warn', format: 'json' })
const out = (x) => { process.stdout.write(JSON.stringify(x, (_k, v) => typeof v === 'bigint' ? v.toString() : v) + '\n') }

const node = await createHeuristNode({
  identity: identityFromPrivateKey(o.key ?? Wallet.createRandom().privateKey),
  logger,
  listen: o.listen ?? [],
  bootstrap: o.bootstrap ?? [],
  devnet: false,
  heartbeatMs: 500,
  reachability: role === 'relay'
    ? { relay: 'on', limits: { ...(o.limits ?? {}), ...(o.limits?.dataLimitBytes !== undefined ? { dataLimitBytes: BigInt(o.limits.dataLimitBytes) } : {}) } }
    : { relay: 'off', reservations: 0 }
})

let relayedJobs = 0
const cpu0 = process.cpuUsage()

async function job (c) {
  const miner = node.peerTable.miners().find(m => c.miner === undefined || m.peerId === c.miner)
  if (miner === undefined) return { ok: false, error: 'no miner heard' }
  const model = miner.advert.models.find(m => m.kind === 'llm')
  const sampling = { seed: c.seed ?? 1, temperature: 0, topP: 1, topK: 0, maxTokens: c.maxTokens ?? 16, stop: [] }
  const t0 = performance.now()
  let first = -1
  let tokens = 0
  try {
    const r = await node.runJob(miner.peerId, { kind: 'llm', modelId: model.id, input: c.input ?? 'hello', sampling }, {
      timeoutMs: c.timeoutMs ?? 30_000,
      onToken: () => { if (first < 0) first = performance.now() - t0; tokens++ }
    })
    const totalMs = performance.now() - t0
    const conns = node.libp2p.getConnections(miner.peerId).filter(x => x.status === 'open')
    return {
      ok: true,
      miner: miner.peerId,
      text: r.output.kind === 'llm' ? r.output.result.text : '',
      receiptValid: r.receiptValid,
      receiptMiner: r.receipt.receipt.miner,
      ttftMs: first,
      tokens,
      totalMs,
      tokensPerSecond: first >= 0 && tokens > 1 ? (tokens - 1) / ((totalMs - first) / 1000) : 0,
      connections: conns.map(x => ({ relayed: isRelayed(x), limited: x.limits !== undefined, addr: x.remoteAddr.toString() }))
    }
  } catch (e) {
    return { ok: false, code: e.code ?? null, error: String(e.message ?? e).slice(0, 300), totalMs: performance.now() - t0 }
  }
}

async function handle (c) {
  switch (c.cmd) {
    case 'job': return await job(c)
    case 'dial':
      try {
        const conn = await node.libp2p.dial(multiaddr(c.addr), { signal: AbortSignal.timeout(c.timeoutMs ?? 3000) })
        return { ok: true, relayed: isRelayed(conn), addr: conn.remoteAddr.toString() }
      } catch (e) {
        return { ok: false, error: String(e.message ?? e).slice(0, 300) }
      }
    case 'tcp':
      // a raw TCP connect, below libp2p: can this host reach that address at all?
      return await new Promise(resolve => {
        const sock = connect({ host: c.host, port: c.port, timeout: c.timeoutMs ?? 3000 })
        sock.once('connect', () => { sock.destroy(); resolve({ ok: true }) })
        sock.once('timeout', () => { sock.destroy(); resolve({ ok: false, error: 'timeout' }) })
        sock.once('error', e => { resolve({ ok: false, error: e.code ?? e.message }) })
      })
    case 'hangup': {
      for (const conn of node.libp2p.getConnections()) if (conn.remotePeer.toString() === c.peer) await conn.close().catch(() => {})
      return { ok: true }
    }
    case 'info':
      return {
        peerId: node.peerId.toString(),
        addrs: node.multiaddrs(),
        miners: node.peerTable.miners().map(m => ({ peerId: m.peerId, addrs: m.advert.addrs })),
        reachability: node.reachability.report()
      }
    case 'stats': {
      const cpu = process.cpuUsage(cpu0)
      let circuits = 0
      for (const conn of node.libp2p.getConnections()) circuits += conn.streams.filter(s => s.protocol === '/libp2p/circuit/relay/0.2.0/hop').length
      return { cpuUserUs: cpu.user, cpuSystemUs: cpu.system, rssBytes: process.memoryUsage().rss, heapUsedBytes: process.memoryUsage().heapUsed, reservations: node.relay.reservationCount, openCircuits: circuits, relayedJobs, guard: node.relay.stats }
    }
    default: return { ok: false, error: `unknown command ${c.cmd}` }
  }
}

out({ ready: true, role, peerId: node.peerId.toString(), addrs: node.multiaddrs() })
const rl = createInterface({ input: process.stdin })
let chain = Promise.resolve()
rl.on('line', line => {
  chain = chain.then(async () => {
    let c
    try { c = JSON.parse(line) } catch { out({ ok: false, error: 'bad command' }); return }
    out({ id: c.id, ...(await handle(c)) })
  })
})
rl.on('close', () => { chain.then(() => node.stop()).finally(() => process.exit(0)) })
process.on('SIGTERM', () => { node.stop().finally(() => process.exit(0)) })
