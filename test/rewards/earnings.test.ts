import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { join } from 'node:path'
import { ZeroHash, type Wallet } from 'ethers'
import { startDevnet, connectChain, signVoucher, signRewardRoot, buildRewardTree, writeRewardFile, writeDeployment, sortBySigner, type Devnet, type ChainClient } from '../../src/chain/index.js'
import { encryptKey, identityFromPrivateKey, writeKeystore } from '../../src/core/identity.js'
import { silentLogger } from '../../src/core/logger.js'
import { Store } from '../../src/core/store.js'
import { isHeuristError } from '../../src/core/errors.js'
import { POOL, type Receipt } from '../../src/core/typed-data.js'
import { signReceipt, receiptHash, type SignedReceipt } from '../../src/p2p/index.js'
import { WAD } from '../../src/economics/index.js'
import { PointsLedger, chainPaid, estimateReward, readLedgerReport, recordClaimFailure, toSnapshot, type EpochEarnings, type LedgerReport } from '../../src/rewards/index.js'
import { buildVerdictMessage } from '../../src/validation/index.js'
import { encodeMessage, verdictTopic } from '../../src/p2p/index.js'
import { startEarningsFeeds } from '../../src/cli/earnings-feeds.js'
import { runCli, tempDir } from '../helpers.js'
import { chainPaths, homePaths } from '../../src/core/home.js'
import { deploymentKey } from '../../src/chain/index.js'
import { testNode, until } from '../p2p/util.js'

const EPOCH = 3600n

let devnet: Devnet
let home: string
/** The store and reward folders of this devnet's deployment in the home (each chain's state apart). */
const scoped = (): ReturnType<typeof homePaths> => chainPaths(homePaths(home), deploymentKey(devnet.deployment))
let cleanup: () => Promise<void>
const chains: ChainClient[] = []

async function chainFor (w: Wallet): Promise<ChainClient> {
  const c = await connectChain({ deployment: devnet.deployment, signer: w })
  chains.push(c)
  return c
}

beforeAll(async () => {
  ({ dir: home, cleanup } = await tempDir('heurist-earnings-'))
  devnet = await startDevnet({ port: 0, accounts: 12, deploy: { epochSeconds: EPOCH } })
}, 120_000)

afterAll(async () => {
  for (const c of chains) c.close()
  await devnet?.stop()
  await cleanup?.()
})

/**
 * `heurist earnings` on the devnet, for a miner whose home holds its points ledger and claim
 * files: one good epoch (every receipt counts, the root pays it, it claimed), one with a failed
 * verdict, a non-organic receipt and a claim that reverted, and the running epoch. Each gap
 * carries its reason; the chain part (root, claim, vouchers per payer) is read from the chain.
 */
describe('heurist earnings, reconciled against the devnet', () => {
  it('a good epoch has no gap; a bad one explains the failed verdict, the non-organic receipt and the reverted claim', async () => {
    const acc = devnet.accounts
    const [gwW, minerW, v1W, v2W, botW] = [acc[1]!, acc[2]!, acc[4]!, acc[5]!, acc[8]!]
    const d = devnet.deployment
    const where = { chainId: d.chainId, verifyingContract: d.contracts.Slashing }
    await writeDeployment(join(home, 'devnet.json'), d)
    await writeKeystore(join(home, 'keystore.json'), await encryptKey(minerW as never, 'pw', { scryptLogN: 4 }))
    const gwChain = await chainFor(gwW)
    await gwChain.deposit(100n * WAD)
    const minerChain = await chainFor(minerW)
    await minerChain.register(BigInt(d.params.minCollateral))
    const vChains = [await chainFor(v1W), await chainFor(v2W)]
    for (const c of vChains) await c.registerValidator(BigInt(d.params.minValidatorStake))

    const store = await Store.open(scoped().store)
    const ledger = new PointsLedger(store, silentLogger())
    const gwPeer = identityFromPrivateKey(gwW.privateKey).peerId.toString()
    const botPeer = identityFromPrivateKey(botW.privateKey).peerId.toString()
    let seq = 0
    const file = async (requester: string, fromPeer: string, units: bigint): Promise<SignedReceipt> => {
      const r: Receipt = { jobId: '0x' + (++seq).toString(16).padStart(64, '0'), requester, miner: minerW.address, modelId: '0x' + '11'.repeat(32), pool: POOL.llm, inputHash: ZeroHash, outputHash: ZeroHash, paramsHash: ZeroHash, computeUnits: units, startedAt: 1000n, endedAt: 1010n }
      const signed = await signReceipt(minerW, r, where)
      expect(await ledger.record({ v: 1, type: 'receipt', signed, chainId: d.chainId, verifyingContract: d.contracts.Slashing } as never, fromPeer)).toBe(true)
      return signed
    }
    const postRoot = async (epoch: bigint, amount: bigint): Promise<void> => {
      const tree = buildRewardTree([{ account: minerW.address, amount }])
      await writeRewardFile(scoped().rewards, epoch, tree)
      const sigs = await Promise.all([v1W, v2W].map(async w => ({ signer: w.address, signature: await signRewardRoot(w, d, { epoch, root: tree.root, total: tree.total }) })))
      await vChains[0]!.postRewardRoot(epoch, tree.root, tree.total, sortBySigner(sigs, s => s.signer).map(s => s.signature))
    }
    const voucher = { payer: gwW.address, miner: minerW.address, podId: '0x' + '22'.repeat(32), podDeployer: '0x0000000000000000000000000000000000000000', podBps: 0, pool: POOL.llm, frontend: '0x0000000000000000000000000000000000000000' }

    // epoch 0: two organic receipts (paying gateway, gossiped by it), their voucher redeemed
    ledger.setEpoch(0n)
    await file(gwW.address, gwPeer, 3000n)
    await file(gwW.address, gwPeer, 5000n)
    await minerChain.redeemVoucher({ ...voucher, cumulativeAmount: 2n * WAD }, await signVoucher(gwW, d, { ...voucher, cumulativeAmount: 2n * WAD }))
    await devnet.timeTravel(EPOCH)
    await postRoot(0n, 7n * WAD)
    const files0 = (await import('../../src/chain/index.js')).readRewardFiles
    const leaf0 = (await files0(scoped().rewards))[0]!.claims[0]!
    await minerChain.claim(0n, minerW.address, 7n * WAD, leaf0.proof)

    // epoch 1: one good receipt (never paid: its voucher is not redeemed in the epoch's window),
    // one failed by validator 1, one from an unfunded requester
    ledger.setEpoch(1n)
    await file(gwW.address, gwPeer, 4000n)
    const failed = await file(gwW.address, gwPeer, 6000n)
    await ledger.recordVerdict({ receiptHash: receiptHash(failed, where), validator: v1W.address, pass: false })
    await file(botW.address, botPeer, 9000n)
    await devnet.timeTravel(EPOCH)
    await postRoot(1n, 3n * WAD)
    // the miner's claim reverted (a wrong amount for the proof); mine's claimer records it as it does on failure
    const err = await minerChain.claim(1n, minerW.address, 4n * WAD, []).then(() => null, (e: unknown) => e)
    expect(isHeuristError(err)).toBe(true)
    if (isHeuristError(err)) await recordClaimFailure(scoped().rewards, 1n, err.code, err.message)
    await store.close()

    const run = async (epoch: string): Promise<EpochEarnings> => {
      const r = await runCli(['earnings', '--home', home, '--json', '--epoch', epoch], { timeoutMs: 60_000 })
      expect(r.code, r.stderr).toBe(0)
      const out = JSON.parse(r.stdout) as { operator: string, epochs: EpochEarnings[] }
      expect(out.operator).toBe(minerW.address)
      return out.epochs[0]!
    }

    const e0 = await run('0')
    expect(e0.gaps).toEqual([])
    expect(e0.ledger!.receipts.map(r => r.status)).toEqual(['counted', 'counted'])
    expect(e0.ledger!.points).toEqual({ llama: '8000', waifu: '0' })
    expect(e0.ledger!.ledgerPoints).toEqual(e0.ledger!.points)
    expect(e0.chain.rootPosted).toBe(true)
    expect(e0.expectedReward).toBe((7n * WAD).toString())
    expect(e0.chain.claim?.amount).toBe((7n * WAD).toString())
    expect(e0.chain.redeemed.map(r => r.payer)).toEqual([gwW.address])
    expect(BigInt(e0.chain.redeemed[0]!.nodeShare)).toBeGreaterThan(0n)
    expect(BigInt(e0.chain.redeemed[0]!.nodeShare)).toBeLessThanOrEqual(2n * WAD)
    expect(e0.chain.multiplierWad).toBe(WAD.toString())

    const e1 = await run('1')
    expect(e1.ledger!.receipts.map(r => r.status).sort()).toEqual(['counted', 'failed', 'not-organic'])
    expect(e1.ledger!.sampled).toBe(1)
    // the counted receipt's 4,000 units were never paid in epoch 1's window: no points, and a gap says why
    expect(e1.ledger!.receipts.find(r => r.status === 'counted')!.points).toBe('4000')
    expect(e1.ledger!.points).toEqual({ llama: '0', waifu: '0' })
    expect(e1.ledger!.ledgerPoints).toEqual(e1.ledger!.points)
    expect(e1.ledger!.unpaid).toEqual([{ requester: gwW.address, pool: 'llama', units: '4000', paidWei: '0', points: '0' }])
    expect(e1.chain.redeemed).toEqual([])
    expect(e1.chain.claim).toBeNull()
    expect(e1.expectedReward).toBe((3n * WAD).toString())
    const codes = e1.gaps.map(g => g.code).sort()
    expect(codes).toEqual(['CLAIM_FAILED', 'RECEIPT_FAILED', 'RECEIPT_NOT_ORGANIC', 'UNPAID_UNITS'])
    const gap = (c: string): string => e1.gaps.find(g => g.code === c)!.reason
    expect(gap('RECEIPT_FAILED')).toContain(v1W.address)
    expect(gap('RECEIPT_NOT_ORGANIC')).toContain(`requester ${botW.address} has no Payments deposit`)
    expect(gap('CLAIM_FAILED')).toContain(String((err as Error).message).slice(0, 40))
    expect(gap('UNPAID_UNITS')).toContain(`requester ${gwW.address} countersigned 4000 units (llama) but its redemptions to this miner in the epoch's window paid 0 wei`)

    // the running epoch: estimated from the running miner's points snapshot, as status does
    const snapStore = await Store.open(scoped().store)
    const live = new PointsLedger(snapStore, silentLogger())
    const points = await live.points(2n, { isPayer: async () => true, payoutOf: async (a) => await minerChain.read<string>(minerChain.contracts.nodes, 'payoutOf', [a]), paidWei: chainPaid(minerChain) })
    await snapStore.close()
    const { writeFile, mkdir } = await import('node:fs/promises')
    await mkdir(scoped().rewards, { recursive: true })
    points.miners.set(minerW.address, { llama: 1000n, waifu: 0n })
    await writeFile(join(scoped().rewards, 'points.json'), JSON.stringify(toSnapshot(minerW.address, minerW.address, points)))
    const e2 = await run('2') as EpochEarnings & { estimatedReward: string | null }
    expect(e2.chain.current).toBe(true)
    expect(e2.gaps.map(g => g.code)).toEqual(['EPOCH_RUNNING'])
    expect(e2.estimatedReward).toBe((await estimateReward(minerChain, 2n, minerW.address, points.miners, 1000)).reward.toString())
    expect(BigInt(e2.estimatedReward!)).toBeGreaterThanOrEqual(0n)

    // the human form names each gap too
    const text = await runCli(['earnings', '--home', home, '--epoch', '1'])
    expect(text.code, text.stderr).toBe(0)
    expect(text.stdout).toContain('gap          RECEIPT_FAILED')
    expect(text.stdout).toContain('gap          CLAIM_FAILED')
  }, 180_000)

  it('a running miner files staked validators\' verdicts on its receipts from gossip, and earnings reads its report while the store is locked', async () => {
    const acc = devnet.accounts
    const [gwW, minerW, stakedW, strangerW] = [acc[1]!, acc[3]!, acc[6]!, acc[7]!]
    const d = devnet.deployment
    const where = { chainId: d.chainId, verifyingContract: d.contracts.Slashing }
    const { dir: home2, cleanup: clean2 } = await tempDir('heurist-earnings-live-')
    const nodes: Array<{ stop: (ms?: number) => Promise<void> }> = []
    const home2Chain = chainPaths(homePaths(home2), deploymentKey(d))
    const store = await Store.open(home2Chain.store)
    try {
      await writeDeployment(join(home2, 'devnet.json'), d)
      await writeKeystore(join(home2, 'keystore.json'), await encryptKey(minerW as never, 'pw', { scryptLogN: 4 }))
      const gwChain = await chainFor(gwW)
      await gwChain.deposit(WAD)
      await (await chainFor(stakedW)).registerValidator(BigInt(d.params.minValidatorStake))
      const minerChain = await chainFor(minerW)
      const ledger = new PointsLedger(store, silentLogger())
      ledger.setEpoch(await minerChain.currentEpoch())
      const r: Receipt = { jobId: '0x' + 'ab'.repeat(32), requester: gwW.address, miner: minerW.address, modelId: '0x' + '11'.repeat(32), pool: POOL.llm, inputHash: ZeroHash, outputHash: ZeroHash, paramsHash: ZeroHash, computeUnits: 2000n, startedAt: 1000n, endedAt: 1010n }
      const signed = await signReceipt(minerW, r, where)
      await ledger.record({ v: 1, type: 'receipt', signed, chainId: d.chainId, verifyingContract: d.contracts.Slashing } as never, identityFromPrivateKey(gwW.privateKey).peerId.toString())
      const hash = receiptHash(signed, where)

      // the mesh: the running miner's feeds (verdicts heard, the report every 200 ms); a staked
      // validator and a key without stake publish verdicts on its receipt
      const miner = await testNode({ identity: identityFromPrivateKey(minerW.privateKey) })
      nodes.push(miner)
      const rewards = home2Chain.rewards
      let stopFeeds = startEarningsFeeds({ node: miner, store, ledger, chain: minerChain, operator: minerW.address, rewardsDir: rewards, jobsServed: () => 3, logger: silentLogger(), everyMs: 200 })
      const publishers = await Promise.all([stakedW, strangerW].map(async w => await testNode({ identity: identityFromPrivateKey(w.privateKey), bootstrap: [miner.multiaddrs()[0]!] })))
      nodes.push(...publishers)
      // the miner's shard: the miner hears only that one
      const minerShard = verdictTopic(minerW.address)
      for (const p of publishers) {
        p.pubsub.subscribe(minerShard)
        expect(await until(() => p.pubsub.getSubscribers(minerShard).some(x => x.equals(miner.peerId)), 20_000)).toBe(true)
      }
      await publishers[1]!.publish(minerShard, encodeMessage(await buildVerdictMessage(strangerW as never, where, signed, hash, false, 1)))
      // a staked validator's verdict on a receipt the miner never signed (another key signed it in its name)
      const forged = await signReceipt(strangerW, { ...r, jobId: '0x' + 'cd'.repeat(32) }, where)
      await publishers[0]!.publish(minerShard, encodeMessage(await buildVerdictMessage(stakedW as never, where, forged, receiptHash(forged, where), false, 1)))
      await publishers[0]!.publish(minerShard, encodeMessage(await buildVerdictMessage(stakedW as never, where, signed, hash, false, 1)))
      expect(await until(async () => (await ledger.verdictsOf(hash)).length > 0, 20_000)).toBe(true)
      await new Promise(resolve => setTimeout(resolve, 500)) // room for the stranger's, had it been filed
      expect(await ledger.verdictsOf(hash)).toEqual([{ validator: stakedW.address.toLowerCase(), pass: false }])
      expect(await ledger.verdictsOf(receiptHash(forged, where))).toEqual([])
      const epoch = await minerChain.currentEpoch()
      const reported = async (): Promise<LedgerReport | null> => await readLedgerReport(rewards).catch(() => null)
      expect(await until(async () => (await reported())?.epochs.find(x => x.epoch === epoch.toString())?.sampled === 1, 20_000)).toBe(true)
      expect((await reported())!.served).toEqual([{ epoch: epoch.toString(), jobs: 3 }])
      // a restarted miner's counter starts again from 0: the report keeps adding to the epoch
      stopFeeds()
      stopFeeds = startEarningsFeeds({ node: miner, store, ledger, chain: minerChain, operator: minerW.address, rewardsDir: rewards, jobsServed: () => 2, logger: silentLogger(), everyMs: 200 })
      expect(await until(async () => (await reported())?.served[0]?.jobs === 5, 20_000)).toBe(true)
      stopFeeds()

      const out = await runCli(['earnings', '--home', home2, '--json', '--epoch', epoch.toString()], { timeoutMs: 60_000 })
      expect(out.code, out.stderr).toBe(0)
      const e = (JSON.parse(out.stdout) as { epochs: EpochEarnings[] }).epochs[0]!
      expect(e.ledger!.source).toContain('running miner')
      expect(e.ledger!.sampled).toBe(1)
      expect(e.ledger!.receipts[0]!.verdicts).toEqual([{ validator: stakedW.address, pass: false, stake: String(d.params.minValidatorStake) }])
      expect(e.jobsServed).toBe(5)
      expect(e.gaps.map(g => g.code).sort()).toEqual(['EPOCH_RUNNING', 'RECEIPTS_MISSING', 'RECEIPT_FAILED'])
      expect(e.gaps.find(g => g.code === 'RECEIPTS_MISSING')!.reason).toContain('served 5 jobs but heard 1 receipts')
    } finally {
      for (const n of nodes) await n.stop(0).catch(() => {})
      await store.close()
      await clean2()
    }
  }, 120_000)
})
