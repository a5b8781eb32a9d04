// Closing a large epoch, for real (issue 16, finding 6): the EDR devnet with the contracts,
// validators running the real epoch service on real libp2p (127.0.0.1), and paying gateways
// (dev accounts with a Payments deposit) gossiping receipts they countersigned, and paying the
// registered miners for them at the floor price inside the epoch (points are bounded by payment;
// throwaway keys are never paid).
//   flood:  T throwaway keys (never registered), one receipt each, plus H registered honest
//           miners: the epoch closes, the root is posted, no throwaway key gets a leaf.
//   wide:   R registered miners (default 8,001: one more than one gossip message holds,
//           MAX_LEAVES), each its own owner: two validators close, one posts, the other puts
//           the root's gossip parts back together and gets the same tree.
// Times each phase (registration, signing, filing, the close's phases from EpochRecord, parts,
// root tx) and prints one JSON document. One run per case (each takes tens of seconds).
//
//   npm run build && npm run bench:epoch-close [-- --throwaway 4001 --honest 3 --registered 8001 --publishers 10 --cases flood,wide]
import '../dist/core/shim.js'
import { Wallet, Interface, hexlify, randomBytes, ZeroAddress, ZeroHash } from 'ethers'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startDevnet, connectChain, DEFAULT_MIN_COLLATERAL } from '../dist/chain/index.js'
import { loadArtifacts } from '../dist/chain/compile.js'
import { Store } from '../dist/core/store.js'
import { silentLogger } from '../dist/core/logger.js'
import { identityFromPrivateKey } from '../dist/core/identity.js'
import { POOL, heuristDomain, PaymentAuthorizationTypes } from '../dist/core/typed-data.js'
import { FLOOR_WEI_PER_UNIT, REDEMPTION_WINDOW_SECONDS } from '../dist/economics/index.js'
import { createHeuristNode, signReceipt, receiptHash, countersign, TOPICS } from '../dist/p2p/index.js'
import { EpochService, MAX_LEAVES, onRewardRoots, checkLeaves } from '../dist/rewards/index.js'

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []))
const num = (k, d, max) => { const n = Number(args[k] ?? d); if (!Number.isInteger(n) || n < 0 || n > max) throw new Error(`--${k} must be an integer 0..${max}`); return n }
const THROWAWAY = num('throwaway', 4001, 20_000)
const HONEST = num('honest', 3, 50)
const REGISTERED = num('registered', MAX_LEAVES + 1, 20_000)
const PUBLISHERS = Math.max(1, num('publishers', 10, 60))
const CASES = String(args.cases ?? 'flood,wide').split(',')
const EPOCH = 3600n
/** The receipts topic takes 50 receipts/s per publisher after a burst of 200 (gossip.ts): stay under it. */
const BURST = 150
const RATE = 40
/** Receipts sent and not yet checked by every validator, at most. */
const WINDOW = 100
const logger = silentLogger()
const ms = t0 => Math.round(performance.now() - t0)
const until = async (check, timeoutMs, everyMs = 100) => {
  const end = Date.now() + timeoutMs
  while (Date.now() < end) { if (await check()) return true; await new Promise(r => setTimeout(r, everyMs)) }
  return await check()
}
const progress = (...a) => { if (args.quiet === undefined) process.stderr.write(`[epoch-close ${new Date().toISOString().slice(11, 19)}] ${a.join(' ')}\n`) }
const must = async (what, check, timeoutMs, everyMs) => { if (!await until(check, timeoutMs, everyMs)) throw new Error(`timed out: ${what}`) }

const artifacts = await loadArtifacts()
const heuI = new Interface(artifacts.contracts.HeuristToken.abi)
const nodesI = new Interface(artifacts.contracts.NodeRegistry.abi)

/** Registers `keys` (each its own owner) with pre-signed raw transactions, many per block: funders send ETH and HEU, each key approves and registers. */
async function registerMany (devnet, funders, keys) {
  const dep = devnet.deployment
  const base = { chainId: dep.chainId, gasPrice: 2_000_000_000n, type: 0 }
  const nonces = await Promise.all(funders.map(async f => Number(await devnet.request('eth_getTransactionCount', [f.address, 'latest']))))
  let t0 = performance.now()
  const fund = []
  const own = []
  for (const [i, k] of keys.entries()) {
    const f = i % funders.length
    const w = new Wallet(funders[f].privateKey)
    fund.push(await w.signTransaction({ ...base, nonce: nonces[f]++, to: k.address, value: 10n ** 16n, gasLimit: 21_000n }))
    fund.push(await w.signTransaction({ ...base, nonce: nonces[f]++, to: dep.contracts.HeuristToken, data: heuI.encodeFunctionData('transfer', [k.address, DEFAULT_MIN_COLLATERAL]), gasLimit: 80_000n }))
    own.push(await k.signTransaction({ ...base, nonce: 0, to: dep.contracts.HeuristToken, data: heuI.encodeFunctionData('approve', [dep.contracts.NodeRegistry, DEFAULT_MIN_COLLATERAL]), gasLimit: 80_000n }))
    own.push(await k.signTransaction({ ...base, nonce: 1, to: dep.contracts.NodeRegistry, data: nodesI.encodeFunctionData('register', [k.address, DEFAULT_MIN_COLLATERAL]), gasLimit: 200_000n }))
  }
  const signMs = ms(t0)
  t0 = performance.now()
  const before = Number(await devnet.request('eth_blockNumber', []))
  await devnet.request('evm_setAutomine', [false])
  try {
    // a block holds 60M gas: mine every 200 transactions
    for (const batch of [fund, own]) {
      for (let i = 0; i < batch.length; i++) {
        await devnet.request('eth_sendRawTransaction', [batch[i]])
        if (i % 200 === 199) await devnet.request('evm_mine', [])
      }
      await devnet.request('evm_mine', [])
    }
  } finally { await devnet.request('evm_setAutomine', [true]) }
  const sendMs = ms(t0)
  const blocks = Number(await devnet.request('eth_blockNumber', [])) - before
  const logs = await devnet.request('eth_getLogs', [{ fromBlock: '0x' + (before + 1).toString(16), toBlock: 'latest', address: dep.contracts.NodeRegistry, topics: [nodesI.getEvent('NodeRegistered').topicHash] }])
  if (logs.length !== keys.length) throw new Error(`registered ${logs.length} of ${keys.length}`)
  return { miners: keys.length, txs: fund.length + own.length, blocks, signTxsMs: signMs, sendAndMineMs: sendMs, perMinerMs: +((signMs + sendMs) / keys.length).toFixed(2) }
}

/** One registration through the node's own client (estimate, send, wait for the receipt): what `heurist register` costs. */
async function registerOneByClient (devnet, account) {
  const c = await connectChain({ deployment: devnet.deployment, signer: account })
  const t0 = performance.now()
  await c.register(DEFAULT_MIN_COLLATERAL)
  const out = ms(t0)
  c.close()
  return out
}

async function startNode (wallet, bootstrap, subscribeReceipts) {
  return await createHeuristNode({ identity: identityFromPrivateKey(wallet.privateKey), logger, listen: ['/ip4/127.0.0.1/tcp/0'], devnet: true, heartbeatMs: 500, bootstrap, ...(subscribeReceipts ? {} : { subscribe: { capacity: false, receipts: false } }) })
}

async function startValidator (devnet, dir, account) {
  const chain = await connectChain({ deployment: devnet.deployment, signer: account })
  await chain.registerValidator(BigInt(devnet.deployment.params.minValidatorStake))
  return { wallet: account, chain }
}

async function runEpochs (devnet, dir, vals) {
  const out = []
  for (const [i, v] of vals.entries()) {
    const node = await startNode(v.wallet, out.map(o => o.node.multiaddrs()[0]), true)
    const store = await Store.open(join(dir, `v${i}`))
    const epochs = new EpochService({ node, chain: v.chain, wallet: v.wallet, store, logger, rewardsDir: join(dir, `v${i}`, 'rewards') }, { pollMs: 250, republishMs: 500, graceMs: 1000 })
    await epochs.start()
    out.push({ ...v, node, store, epochs })
  }
  return out
}

/** Gateways: dev accounts with a Payments deposit, on the mesh without taking receipts themselves. */
async function startGateways (devnet, accounts, validators) {
  const out = []
  for (const w of accounts) {
    const chain = await connectChain({ deployment: devnet.deployment, signer: w })
    await chain.deposit(10n ** 18n)
    chain.close()
    out.push({ wallet: w, node: await startNode(w, validators.map(v => v.node.multiaddrs()[0]), false) })
  }
  await must('gateways see the validators on the receipts topic', () => out.every(g => g.node.pubsub.getSubscribers(TOPICS.receipts).length >= validators.length), 60_000)
  return out
}

/** Each key's receipt (one job each), countersigned by its gateway with the units it measured. */
async function makeReceipts (devnet, keys, gateways) {
  const domain = { chainId: devnet.deployment.chainId, verifyingContract: devnet.deployment.contracts.Slashing }
  const now = await devnet.now()
  const batches = gateways.map(() => [])
  for (const [n, k] of keys.entries()) {
    const g = gateways[n % gateways.length]
    const signed = await signReceipt(k, {
      jobId: hexlify(randomBytes(32)), requester: g.wallet.address, miner: k.address, modelId: '0x' + '22'.repeat(32), pool: POOL.llm,
      inputHash: ZeroHash, outputHash: ZeroHash, paramsHash: ZeroHash, computeUnits: 1000n + BigInt(n % 7), startedAt: now - 5n, endedAt: now
    }, domain)
    const hash = receiptHash(signed, domain)
    const measured = { units: signed.receipt.computeUnits, signature: countersign(g.wallet, hash, BigInt(signed.receipt.computeUnits)) }
    const m = { v: 1, type: 'receipt', signed, chainId: Number(domain.chainId), verifyingContract: domain.verifyingContract, measured }
    Object.defineProperty(m, 'hash', { value: hash, enumerable: false })
    batches[n % gateways.length].push(m)
  }
  return batches
}

/**
 * Points are bounded by what each requester paid its miner in Payments (issue 16): every gateway
 * pays the registered miners whose receipts it countersigned, at the floor price for their units,
 * in Pay-by-User settlements it authorizes to itself (64 miners per transaction), inside epoch 0.
 */
async function payMiners (devnet, gateways, batches, expected) {
  const want = new Set(expected.map(a => a.toLowerCase()))
  const domain = heuristDomain(devnet.deployment.chainId, devnet.deployment.contracts.Payments)
  let txs = 0
  for (const [i, g] of gateways.entries()) {
    const owed = batches[i].filter(m => want.has(m.signed.receipt.miner.toLowerCase()))
      .map(m => ({ miner: m.signed.receipt.miner, podId: ZeroHash, podDeployer: ZeroAddress, podBps: 0, pool: POOL.llm, cumulativeAmount: BigInt(m.signed.receipt.computeUnits) * FLOOR_WEI_PER_UNIT.llama }))
    if (owed.length === 0) continue
    const chain = await connectChain({ deployment: devnet.deployment, signer: g.wallet })
    try {
      const a = { payer: g.wallet.address, frontend: g.wallet.address, session: hexlify(randomBytes(32)), maxAmount: owed.reduce((t, x) => t + x.cumulativeAmount, 0n), expiry: (await devnet.now()) + 3600n }
      const sig = await g.wallet.signTypedData(domain, PaymentAuthorizationTypes, a)
      for (let k = 0; k < owed.length; k += 64) { await chain.settleAuthorized(a, sig, owed.slice(k, k + 64)); txs++ }
    } finally { chain.close() }
  }
  return txs
}

/**
 * Publishes every gateway's receipts under the topic's rate limit, no further ahead of the
 * slowest validator than WINDOW receipts, and only while the gateway sees every validator on the
 * receipts topic. Gossipsub neither waits for a busy receiver (no backpressure on its outbound
 * stream) nor keeps what it publishes with no topic peer (`allowPublishToZeroTopicPeers`): with
 * every node in one busy process, connections drop for a moment and receipts sent then are lost.
 * Resolves when all are sent.
 */
async function publishPaced (gateways, batches, vals) {
  let sent = 0
  let lost = 0
  const base = vals.map(v => v.node.stats.get(TOPICS.receipts, 'accept'))
  const accepted = () => Math.min(...vals.map((v, i) => v.node.stats.get(TOPICS.receipts, 'accept') - base[i]))
  const tick = setInterval(() => { progress(`sent ${sent}, checked by every validator ${accepted()}, gateways' receipt subscribers ${JSON.stringify(gateways.map(g => g.node.pubsub.getSubscribers(TOPICS.receipts).length))}`) }, 10_000)
  try {
    await Promise.all(gateways.map(async (g, i) => {
      const t0 = Date.now()
      for (const [n, m] of batches[i].entries()) {
        const due = t0 + Math.max(0, (n - BURST) * 1000 / RATE)
        if (due > Date.now()) await new Promise(r => setTimeout(r, due - Date.now()))
        const end = Date.now() + 10_000
        while (g.node.pubsub.getSubscribers(TOPICS.receipts).length < vals.length && Date.now() < end) await new Promise(r => setTimeout(r, 20))
        // no check for 2 s: what is in flight is taken as lost (the repair pass sends it again)
        while (sent - lost - accepted() >= WINDOW) {
          const a = accepted()
          if (!await until(() => accepted() > a, 2_000, 20)) lost = sent - accepted()
        }
        sent++
        await g.node.publishReceipt(m)
      }
    }))
  } finally { clearInterval(tick) }
}

/** Receipts some validator has not filed (by receipt hash), per gateway. */
async function missing (vals, batches) {
  const have = await Promise.all(vals.map(async v => new Set((await v.epochs.ledger.entries(0n)).map(e => e.receiptHash))))
  return batches.map(b => b.filter(m => have.some(h => !h.has(m.hash))))
}

/** Waits until the validators' ledgers stop growing for `quietMs` (bounded). */
async function settle (vals, quietMs, capMs) {
  let last = -1
  let lastAt = Date.now()
  await until(async () => {
    const n = (await Promise.all(vals.map(async v => (await v.epochs.ledger.entries(0n)).length))).reduce((a, b) => a + b, 0)
    if (n > last) { last = n; lastAt = Date.now() }
    return Date.now() - lastAt > quietMs
  }, capMs, 500)
  return lastAt
}

const round = o => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, Math.round(v)]))

/** Files receipts, ends the epoch and waits for the root: the close's figures. */
async function closeEpoch (devnet, vals, gateways, batches, expected) {
  const total = batches.reduce((s, b) => s + b.length, 0)
  progress(`publishing ${total} receipts`)
  let t0 = performance.now()
  await publishPaced(gateways, batches, vals)
  const publishMs = ms(t0)
  // what was lost on the way is published again by its gateway (a validator that has it ignores the duplicate)
  let republished = 0
  let lastFiledAt = Date.now()
  for (let round = 0; round < 5; round++) {
    lastFiledAt = await settle(vals, 5_000, 10 * 60_000)
    const lost = await missing(vals, batches)
    const n = lost.reduce((a, b) => a + b.length, 0)
    if (n === 0) break
    progress(`republishing ${n} receipts a validator lacks`)
    republished += n
    await publishPaced(gateways, lost, vals)
  }
  const short = (await missing(vals, batches)).reduce((a, b) => a + b.length, 0)
  if (short > 0) throw new Error(`${short} receipts never reached every validator`)
  // publishing started at t0 (performance clock); the last receipt was filed at lastFiledAt (wall clock)
  const fileMs = Math.round(lastFiledAt - (Date.now() - (performance.now() - t0)))
  t0 = performance.now()
  const paymentTxs = await payMiners(devnet, gateways, batches, expected)
  const payMs = ms(t0)
  const emission = vals[0].chain.contracts.emission
  progress('filed; ending the epoch')
  t0 = performance.now()
  await devnet.timeTravel(EPOCH + REDEMPTION_WINDOW_SECONDS)
  await must('the root is posted', async () => await vals[0].chain.read(emission, 'posted', [0n]), 600_000, 200)
  const rootMs = ms(t0)
  const recs = vals.map(v => v.epochs.closed().find(r => r.epoch === 0n))
  const onChain = await vals[0].chain.read(emission, 'roots', [0n])
  const poster = recs.find(r => r.posted && r.postedBy !== null) ?? recs[0]
  if (recs.some(r => r === undefined || r.tree.root !== onChain)) throw new Error('a validator closed with another root than the one on chain')
  const leaves = new Set(poster.tree.claims.map(c => c.account.toLowerCase()))
  const leavesMissing = expected.filter(a => !leaves.has(a.toLowerCase())).length
  return {
    receipts: total,
    publishMs,
    filedMs: fileMs,
    filedPerReceiptMs: +(fileMs / total).toFixed(2),
    republished,
    paymentTxs,
    payMs,
    timeTravelToRootOnChainMs: rootMs,
    closeMs: recs.map(r => Math.round(r.closeMs)),
    phasesMs: recs.map(r => round(r.phases)),
    leaves: poster.tree.claims.length,
    parts: poster.parts,
    expectedLeavesMissing: leavesMissing,
    rootOnChain: onChain
  }
}

async function stopAll (vals, gateways, chains) {
  for (const g of gateways) await g.node.stop()
  for (const v of vals) { await v.epochs.stop(); await v.node.stop(); await v.store.close(); v.chain.close() }
  for (const c of chains) c.close()
}

async function flood () {
  const accounts = 4 + PUBLISHERS + HONEST
  const devnet = await startDevnet({ port: 0, accounts, deploy: { epochSeconds: EPOCH } })
  const dir = await mkdtemp(join(tmpdir(), 'epoch-close-'))
  let vals = []
  let gateways = []
  try {
    const acct = i => devnet.accounts[i]
    const oneRegistrationMs = []
    const honest = []
    for (let i = 0; i < HONEST; i++) { const w = acct(2 + PUBLISHERS + i); oneRegistrationMs.push(await registerOneByClient(devnet, w)); honest.push(w) }
    vals = await runEpochs(devnet, dir, [await startValidator(devnet, dir, acct(1))])
    gateways = await startGateways(devnet, Array.from({ length: PUBLISHERS }, (_, i) => acct(2 + i)), vals)
    let t0 = performance.now()
    const throwaway = Array.from({ length: THROWAWAY }, () => new Wallet(hexlify(randomBytes(32))))
    const batches = await makeReceipts(devnet, [...throwaway, ...honest], gateways)
    const signMs = ms(t0)
    const r = await closeEpoch(devnet, vals, gateways, batches, honest.map(w => w.address))
    const rec = vals[0].epochs.closed()[0]
    const throwawayLeaves = rec.tree.claims.filter(c => throwaway.some(k => k.address === c.account)).length
    return { throwaway: THROWAWAY, honest: HONEST, gateways: PUBLISHERS, oneRegistrationByClientMs: oneRegistrationMs, signReceiptsMs: signMs, ...r, throwawayLeaves }
  } finally {
    await stopAll(vals, gateways, [])
    await devnet.stop()
    await rm(dir, { recursive: true, force: true })
  }
}

async function wide () {
  const funders = 4
  const accounts = 4 + PUBLISHERS + funders
  const devnet = await startDevnet({ port: 0, accounts, deploy: { epochSeconds: EPOCH } })
  const dir = await mkdtemp(join(tmpdir(), 'epoch-close-'))
  let vals = []
  let gateways = []
  const watchers = []
  try {
    const acct = i => devnet.accounts[i]
    const keys = Array.from({ length: REGISTERED }, () => new Wallet(hexlify(randomBytes(32))))
    progress(`registering ${REGISTERED} miners`)
    const registration = await registerMany(devnet, Array.from({ length: funders }, (_, i) => acct(2 + PUBLISHERS + i)), keys)
    vals = await runEpochs(devnet, dir, [await startValidator(devnet, dir, acct(0)), await startValidator(devnet, dir, acct(1))])
    // the second validator's view of the first one's root: whole once every part arrived
    const whole = []
    watchers.push(onRewardRoots(vals[1].node, devnet.deployment, logger, s => { if (s.signer === vals[0].wallet.address && s.message.sigOnly !== true) whole.push({ at: performance.now(), s }) }))
    gateways = await startGateways(devnet, Array.from({ length: PUBLISHERS }, (_, i) => acct(2 + i)), vals)
    let t0 = performance.now()
    const batches = await makeReceipts(devnet, keys, gateways)
    const signMs = ms(t0)
    const r = await closeEpoch(devnet, vals, gateways, batches, keys.map(k => k.address))
    await must('the second validator reassembles the first one\'s root', () => whole.length > 0, 60_000)
    const got = whole[0].s.message
    const rebuilt = checkLeaves(got)
    return {
      registered: REGISTERED, gateways: PUBLISHERS, maxLeavesPerMessage: MAX_LEAVES, registration, signReceiptsMs: signMs, ...r,
      secondValidator: { reassembledLeaves: got.leaves.length, sameRoot: rebuilt !== null && rebuilt.root === r.rootOnChain }
    }
  } finally {
    for (const off of watchers) off()
    await stopAll(vals, gateways, [])
    await devnet.stop()
    await rm(dir, { recursive: true, force: true })
  }
}

const out = { runs: 1 }
const t0 = performance.now()
if (CASES.includes('flood')) out.flood = await flood()
if (CASES.includes('wide')) out.wide = await wide()
out.totalMs = ms(t0)
console.log(JSON.stringify(out, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 2))
