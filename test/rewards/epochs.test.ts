import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { join } from 'node:path'
import { ZeroHash, type Wallet } from 'ethers'
import { startDevnet, connectChain, signVoucher, signRewardRoot, readRewardFiles, type Devnet, type ChainClient } from '../../src/chain/index.js'
import { identityFromPrivateKey } from '../../src/core/identity.js'
import { silentLogger } from '../../src/core/logger.js'
import { Store } from '../../src/core/store.js'
import { POOL, type Receipt } from '../../src/core/typed-data.js'
import { createHeuristNode, signReceipt, receiptHash, TOPICS, type HeuristNode, type SignedReceipt } from '../../src/p2p/index.js'
import { WAD, allocate, multiplierWad, splitTips, whitepaperEpochCap, REDEMPTION_WINDOW_SECONDS } from '../../src/economics/index.js'
import { EpochService, RewardClaimer, chainPaid, onRewardRoots, REWARDS_TOPIC, readPointsSnapshot, type SignedVerdict } from '../../src/rewards/index.js'
import { signVerdictWith } from '../../src/validation/index.js'
import { tempDir } from '../helpers.js'
import { until } from '../p2p/util.js'

const EPOCH = 3600n
const logger = silentLogger()

let devnet: Devnet
let dir: string
let cleanupDir: () => Promise<void>
const nodes: HeuristNode[] = []
const stores: Store[] = []
const chains: ChainClient[] = []
const stops: Array<() => Promise<void>> = []

async function chainFor (w: Wallet): Promise<ChainClient> {
  const c = await connectChain({ deployment: devnet.deployment, signer: w })
  chains.push(c)
  return c
}

async function node (w: Wallet, name: string, bootstrap: string[]): Promise<{ node: HeuristNode, store: Store }> {
  const store = await Store.open(join(dir, name, 'store'))
  stores.push(store)
  const n = await createHeuristNode({ identity: identityFromPrivateKey(w.privateKey), logger, store, listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap, devnet: true, heartbeatMs: 200 })
  nodes.push(n)
  return { node: n, store }
}

let jobSeq = 0
async function receipt (miner: Wallet, requester: string, pool: number, computeUnits: bigint): Promise<SignedReceipt> {
  const r: Receipt = {
    jobId: '0x' + (++jobSeq).toString(16).padStart(64, '0'),
    requester,
    miner: miner.address,
    modelId: '0x' + '11'.repeat(32),
    pool,
    inputHash: ZeroHash,
    outputHash: ZeroHash,
    paramsHash: ZeroHash,
    computeUnits,
    // signed times decide the epoch: now, on the chain's schedule (epoch 0 here)
    startedAt: BigInt(Math.floor(Date.now() / 1000)) - 10n,
    endedAt: BigInt(Math.floor(Date.now() / 1000))
  }
  return await signReceipt(miner, r, { chainId: devnet.deployment.chainId, verifyingContract: devnet.deployment.contracts.Slashing })
}

beforeAll(async () => {
  ({ dir, cleanup: cleanupDir } = await tempDir('heurist-rewards-'))
  devnet = await startDevnet({ port: 0, accounts: 12, deploy: { epochSeconds: EPOCH } })
}, 120_000)

afterAll(async () => {
  for (const s of stops.reverse()) await s().catch(() => {})
  await Promise.allSettled(nodes.map(async n => { await n.stop() }))
  for (const s of stores) await s.close().catch(() => {})
  for (const c of chains) c.close()
  await devnet?.stop()
  await cleanupDir?.()
})

describe('epochs on a real devnet and mesh', () => {
  it('validators co-sign and post the root once a quorum signed; miners claim exactly src/economics allocation; the reservoir gets the rest', async () => {
    const acc = devnet.accounts
    const [gwW, aW, bW, v1W, v2W, v3W, voterW, botW] = [acc[1]!, acc[2]!, acc[3]!, acc[4]!, acc[5]!, acc[6]!, acc[7]!, acc[8]!]
    const d = devnet.deployment
    const gwChain = await chainFor(gwW)
    await gwChain.deposit(100n * WAD)
    const aChain = await chainFor(aW)
    const bChain = await chainFor(bW)
    await aChain.register(BigInt(d.params.minCollateral))
    await bChain.register(BigInt(d.params.minCollateral))
    await aChain.stake(50_000n * WAD) // miner A's own stake: multiplier 1.25
    const voterChain = await chainFor(voterW)
    await voterChain.stake(20_000n * WAD)
    await voterChain.voteNode(bW.address, 20_000n * WAD) // votes on B: multiplier 1.1, and a tip to the voter
    const vChains = [await chainFor(v1W), await chainFor(v2W), await chainFor(v3W)]
    for (const c of vChains) await c.registerValidator(BigInt(d.params.minValidatorStake))
    // revenue this epoch: 12 HEU of LLM jobs, 4 HEU of image jobs (paid from the gateway's deposit
    // to each miner, far above the floor price of their units: points are bounded by payment;
    // vouchers are cumulative per pod, so each pool's voucher names its own pod)
    for (const [miner, chain, pool, amount] of [[aW, aChain, POOL.llm, 8n * WAD], [bW, bChain, POOL.llm, 4n * WAD], [aW, aChain, POOL.image, 2n * WAD], [bW, bChain, POOL.image, 2n * WAD]] as const) {
      const v = { payer: gwW.address, miner: miner.address, podId: '0x' + (pool === POOL.llm ? '22' : '33').repeat(32), podDeployer: '0x0000000000000000000000000000000000000000', podBps: 0, pool, frontend: '0x0000000000000000000000000000000000000000', cumulativeAmount: amount }
      await chain.redeemVoucher(v, await signVoucher(gwW, d, v))
    }

    // the mesh: the gateway is the bootstrap peer and relays reward roots
    const gw = await node(gwW, 'gateway', [])
    onRewardRoots(gw.node, d, logger, () => {})
    const boot = [gw.node.multiaddrs()[0]!]
    const bot = await node(botW, 'bot', boot)
    const a = await node(aW, 'miner-a', boot)
    const b = await node(bW, 'miner-b', boot)
    const vs = [await node(v1W, 'v1', boot), await node(v2W, 'v2', boot), await node(v3W, 'v3', boot)]
    const services = vs.map((v, i) => new EpochService({ node: v.node, chain: vChains[i]!, wallet: [v1W, v2W, v3W][i]!, store: v.store, logger, rewardsDir: join(dir, `v${i + 1}`, 'rewards') }, { pollMs: 250, republishMs: 500, graceMs: 500 }))
    for (const s of services) { await s.start(); stops.push(async () => { await s.stop() }) }
    const claimA = new RewardClaimer({ node: a.node, chain: aChain, store: a.store, logger, rewardsDir: join(dir, 'miner-a', 'rewards') }, { pollMs: 250, snapshotMs: 250 })
    const claimB = new RewardClaimer({ node: b.node, chain: bChain, store: b.store, logger, rewardsDir: join(dir, 'miner-b', 'rewards') }, { pollMs: 250, snapshotMs: 250, autoClaim: false })
    for (const c of [claimA, claimB]) { await c.start(); stops.push(async () => { await c.stop() }) }
    const everyone = [a, b, ...vs]
    expect(await until(() => everyone.every(n => gw.node.pubsub.getSubscribers(TOPICS.receipts).some(p => p.equals(n.node.peerId)) &&
      gw.node.pubsub.getSubscribers(REWARDS_TOPIC).some(p => p.equals(n.node.peerId))), 20_000)).toBe(true)
    expect(await until(() => bot.node.pubsub.getSubscribers(TOPICS.receipts).length > 0, 20_000)).toBe(true)

    const where = { chainId: d.chainId, verifyingContract: d.contracts.Slashing }
    const publish = async (from: HeuristNode, signed: SignedReceipt): Promise<void> => {
      await from.publishReceipt({ v: 1, type: 'receipt', signed, chainId: d.chainId, verifyingContract: d.contracts.Slashing })
    }
    // organic: published by the paying gateway that asked for them
    const aLlm = [3000n, 5000n, 2000n]
    const aImg = [8000n]
    const bLlm = [4000n]
    const bImg = [6000n, 1000n]
    const sent: SignedReceipt[] = []
    for (const cu of aLlm) sent.push(await receipt(aW, gwW.address, POOL.llm, cu))
    for (const cu of aImg) sent.push(await receipt(aW, gwW.address, POOL.image, cu))
    for (const cu of bLlm) sent.push(await receipt(bW, gwW.address, POOL.llm, cu))
    for (const cu of bImg) sent.push(await receipt(bW, gwW.address, POOL.image, cu))
    const failed = await receipt(aW, gwW.address, POOL.llm, 9000n) // validators fail it
    for (const s of [...sent, failed]) await publish(gw.node, s)
    // not organic: an unfunded requester, and a miner asking itself
    await publish(bot.node, await receipt(bW, botW.address, POOL.llm, 9000n))
    await publish(b.node, await receipt(bW, bW.address, POOL.llm, 9000n))
    const failedHash = receiptHash(failed, where)
    const signedFail = async (w: Wallet): Promise<SignedVerdict> => {
      const verdict = { receiptHash: failedHash, validator: w.address, pass: false, reason: 1 }
      return { verdict, signature: await signVerdictWith(w, where, verdict) }
    }
    for (const s of services) {
      expect(await s.recordVerdict(await signedFail(v1W))).toBe(true)
      expect(await s.recordVerdict(await signedFail(v2W))).toBe(true)
      // a verdict signed by a key with no validator stake never reaches the ledger
      expect(await s.recordVerdict(await signedFail(botW))).toBe(false)
    }
    expect(await until(async () => (await Promise.all(services.map(async s => (await s.ledger.entries(0n)).length))).every(n => n === sent.length + 3), 20_000)).toBe(true)

    // status while the epoch runs: a miner's snapshot holds this epoch's points (a miner sees
    // no verdicts, so the failed receipt still counts in its estimate)
    expect(await until(async () => (await readPointsSnapshot(join(dir, 'miner-a', 'rewards')))?.counted === sent.length + 1, 10_000)).toBe(true)
    const snap = (await readPointsSnapshot(join(dir, 'miner-a', 'rewards')))!
    expect(snap.epoch).toBe('0')
    expect(snap.miners.find(m => m.operator === aW.address)).toEqual({ operator: aW.address, llama: (3000n + 5000n + 2000n + 9000n).toString(), waifu: '8000' })

    const reservoir = d.params.reservoir
    const before = {
      a: await aChain.read<bigint>(aChain.contracts.token, 'balanceOf', [aW.address]),
      b: await aChain.read<bigint>(aChain.contracts.token, 'balanceOf', [bW.address]),
      voter: await aChain.read<bigint>(aChain.contracts.token, 'balanceOf', [voterW.address]),
      reservoir: await aChain.read<bigint>(aChain.contracts.token, 'balanceOf', [reservoir])
    }
    await devnet.timeTravel(EPOCH + REDEMPTION_WINDOW_SECONDS)
    expect(await until(async () => !/^0x0+$/.test(await aChain.read<string>(aChain.contracts.emission, 'roots', [0n])), 30_000, 200)).toBe(true)

    // the expected table, from src/economics directly
    const cap = whitepaperEpochCap(16n * WAD, EPOCH)
    const llamaPool = cap.emission * 12n / 16n
    const waifuPool = cap.emission - llamaPool
    // A's stake is worth a little more than the 50,000 HEU it staked: the protocol fee of the
    // redemptions above went to the stHEU vault (whitepaper §3.4.3)
    const aStake = (await aChain.balances(aW.address)).stheuValue
    expect(aStake).toBeGreaterThan(50_000n * WAD)
    const mA = multiplierWad(aStake, 0n)
    const mB = multiplierWad(0n, 20_000n * WAD)
    const sum = (xs: bigint[]): bigint => xs.reduce((s, x) => s + x, 0n)
    const llama = allocate(llamaPool, [{ id: 'a', points: sum(aLlm), multiplierWad: mA }, { id: 'b', points: sum(bLlm), multiplierWad: mB }])
    const waifu = allocate(waifuPool, [{ id: 'a', points: sum(aImg), multiplierWad: mA }, { id: 'b', points: sum(bImg), multiplierWad: mB }])
    const tipsL = splitTips(llama.payouts[1]!.amount, 1000, [{ id: voterW.address, votes: 20_000n * WAD }])
    const tipsW = splitTips(waifu.payouts[1]!.amount, 1000, [{ id: voterW.address, votes: 20_000n * WAD }])
    const expectA = llama.payouts[0]!.amount + waifu.payouts[0]!.amount
    const expectB = tipsL.node + tipsW.node
    const expectVoter = tipsL.voters[0]!.amount + tipsW.voters[0]!.amount
    const total = expectA + expectB + expectVoter

    const roots = new Set(services.flatMap(s => s.closed().map(r => r.tree.root)))
    expect(roots.size).toBe(1)
    expect(await aChain.read<bigint>(aChain.contracts.emission, 'totals', [0n])).toBe(total)
    expect(total).toBeLessThanOrEqual(cap.emission)
    // the reservoir got E_max − E plus what the cap left unpaid, at posting
    expect(await aChain.read<bigint>(aChain.contracts.token, 'balanceOf', [reservoir]) - before.reservoir).toBe(cap.reservoir + cap.emission - total)

    // miner A claimed by itself; miner B (auto-claim off) has the claim file and claims by hand
    expect(await until(async () => await aChain.read<boolean>(aChain.contracts.emission, 'claimed', [0n, aW.address]), 15_000, 200)).toBe(true)
    expect(await aChain.read<bigint>(aChain.contracts.token, 'balanceOf', [aW.address]) - before.a).toBe(expectA)
    expect(await until(async () => claimB.earnings().length === 1, 15_000, 200)).toBe(true)
    expect(await bChain.read<boolean>(bChain.contracts.emission, 'claimed', [0n, bW.address])).toBe(false)
    const files = await readRewardFiles(join(dir, 'miner-b', 'rewards'))
    const mine = files[0]!.claims.find(c => c.account === bW.address)!
    expect(BigInt(mine.amount)).toBe(expectB)
    await bChain.claim(0n, bW.address, BigInt(mine.amount), mine.proof)
    expect(await aChain.read<bigint>(aChain.contracts.token, 'balanceOf', [bW.address]) - before.b).toBe(expectB)
    // the voter's tip is claimable from any node's file (anyone may submit a claim)
    const tip = files[0]!.claims.find(c => c.account === voterW.address)!
    expect(BigInt(tip.amount)).toBe(expectVoter)
    await bChain.claim(0n, voterW.address, BigInt(tip.amount), tip.proof)
    expect(await aChain.read<bigint>(aChain.contracts.token, 'balanceOf', [voterW.address]) - before.voter).toBe(expectVoter)

    const stakeOf = async (v: string): Promise<bigint> => (await aChain.read<[bigint, bigint]>(aChain.contracts.nodes, 'validators', [v]))[0]
    const excluded = (await services[0]!.ledger.points(0n, { isPayer: async (x) => x.toLowerCase() === gwW.address.toLowerCase(), payoutOf: async (x) => await aChain.read<string>(aChain.contracts.nodes, 'payoutOf', [x]), stakeOf, paidWei: chainPaid(aChain) })).excluded
    expect(excluded).toEqual({ 'not-organic': 2, failed: 1, duplicate: 0 })

    // the contract refuses a quorum-signed total above the epoch's cap (validators stopped first,
    // so none of them posts epoch 1's own root before this try)
    for (const s of services) await s.stop()
    await devnet.timeTravel(EPOCH)
    const { cap: cap1 } = await aChain.epochCap(1n)
    const over = cap1 + 1n
    const sigs = []
    for (const w of [v1W, v2W, v3W].sort((x, y) => (BigInt(x.address) < BigInt(y.address) ? -1 : 1))) sigs.push(await signRewardRoot(w, d, { epoch: 1n, root: '0x' + 'ab'.repeat(32), total: over }))
    await expect(aChain.postRewardRoot(1n, '0x' + 'ab'.repeat(32), over, sigs)).rejects.toThrow(/OverCap/)
  }, 120_000)
})
