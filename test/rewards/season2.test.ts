import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { join } from 'node:path'
import { ZeroHash } from 'ethers'
import { startDevnet, connectChain, signVoucher, type Devnet, type ChainClient } from '../../src/chain/index.js'
import { identityFromPrivateKey } from '../../src/core/identity.js'
import { silentLogger } from '../../src/core/logger.js'
import { Store } from '../../src/core/store.js'
import { POOL } from '../../src/core/typed-data.js'
import { createHeuristNode, signReceipt, TOPICS, type HeuristNode } from '../../src/p2p/index.js'
import { WAD, season2PoolCap, FLOOR_WEI_PER_UNIT, REDEMPTION_WINDOW_SECONDS } from '../../src/economics/index.js'
import { EpochService, RewardClaimer, onRewardRoots, REWARDS_TOPIC } from '../../src/rewards/index.js'
import { tempDir } from '../helpers.js'
import { until } from '../p2p/util.js'

const EPOCH = 3600n
const logger = silentLogger()
let devnet: Devnet
let t: { dir: string, cleanup: () => Promise<void> }
const undo: Array<() => Promise<unknown>> = []

beforeAll(async () => {
  t = await tempDir('heurist-s2-')
  devnet = await startDevnet({ port: 0, deploy: { epochSeconds: EPOCH, schedule: 'season2' } })
}, 120_000)

afterAll(async () => {
  for (const u of undo.reverse()) await u().catch(() => {})
  await devnet?.stop()
  await t?.cleanup()
})

async function part (i: number, name: string, bootstrap: string[]): Promise<{ node: HeuristNode, store: Store, chain: ChainClient }> {
  const store = await Store.open(join(t.dir, name))
  const chain = await connectChain({ deployment: devnet.deployment, signer: devnet.accounts[i]! })
  const node = await createHeuristNode({ identity: identityFromPrivateKey(devnet.accounts[i]!.privateKey), logger, store, listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap, devnet: true, heartbeatMs: 200 })
  undo.push(async () => { await store.close() }, async () => { chain.close() }, async () => { await node.stop() })
  return { node, store, chain }
}

describe('Season 2 schedule on chain', () => {
  it('each pool pays base + dynamic from its own organic revenue (Season 2 post); a lone miner claims both pools to the wei', async () => {
    const d = devnet.deployment
    expect(d.params.schedule).toBe('season2')
    const gw = await part(1, 'gw', [])
    onRewardRoots(gw.node, d, logger, () => {})
    const boot = [gw.node.multiaddrs()[0]!]
    const miner = await part(2, 'miner', boot)
    const val = await part(3, 'validator', boot)
    await gw.chain.deposit(20n * WAD)
    await miner.chain.register(BigInt(d.params.minCollateral))
    await val.chain.registerValidator(BigInt(d.params.minValidatorStake))
    // 10 HEU of paid LLM usage this epoch, and the image job paid at the floor price (points are bounded by payment)
    const imagePaid = 500n * FLOOR_WEI_PER_UNIT.waifu
    for (const [pod, pool, amount] of [['44', POOL.llm, 10n * WAD], ['55', POOL.image, imagePaid]] as const) {
      const v = { payer: gw.node.address, miner: miner.node.address, podId: '0x' + pod.repeat(32), podDeployer: '0x0000000000000000000000000000000000000000', podBps: 0, pool, frontend: '0x0000000000000000000000000000000000000000', cumulativeAmount: amount }
      await miner.chain.redeemVoucher(v, await signVoucher(devnet.accounts[1]!, d, v))
    }

    const epochs = new EpochService({ node: val.node, chain: val.chain, wallet: devnet.accounts[3]!, store: val.store, logger, rewardsDir: join(t.dir, 'v-rewards') }, { pollMs: 250, republishMs: 500, graceMs: 500 })
    await epochs.start()
    undo.push(async () => { await epochs.stop() })
    const claimer = new RewardClaimer({ node: miner.node, chain: miner.chain, store: miner.store, logger, rewardsDir: join(t.dir, 'm-rewards') }, { pollMs: 250 })
    await claimer.start()
    undo.push(async () => { await claimer.stop() })
    expect(await until(() => [miner, val].every(p => gw.node.pubsub.getSubscribers(TOPICS.receipts).some(x => x.equals(p.node.peerId)) && gw.node.pubsub.getSubscribers(REWARDS_TOPIC).some(x => x.equals(p.node.peerId))), 20_000)).toBe(true)

    const where = { chainId: d.chainId, verifyingContract: d.contracts.Slashing }
    for (const [i, pool] of [[1, POOL.llm], [2, POOL.image]] as const) {
      const signed = await signReceipt(devnet.accounts[2]!, {
        jobId: '0x' + i.toString(16).padStart(64, '0'), requester: gw.node.address, miner: miner.node.address, modelId: ZeroHash, pool,
        inputHash: ZeroHash, outputHash: ZeroHash, paramsHash: ZeroHash, computeUnits: 500n, startedAt: BigInt(Math.floor(Date.now() / 1000)) - 1n, endedAt: BigInt(Math.floor(Date.now() / 1000))
      }, where)
      await gw.node.publishReceipt({ v: 1, type: 'receipt', signed, chainId: d.chainId, verifyingContract: d.contracts.Slashing })
    }
    expect(await until(async () => (await epochs.ledger.entries(0n)).length === 2, 20_000)).toBe(true)
    const before = await miner.chain.read<bigint>(miner.chain.contracts.token, 'balanceOf', [miner.node.address])
    await devnet.timeTravel(EPOCH + REDEMPTION_WINDOW_SECONDS)
    expect(await until(() => claimer.earnings().some(e => e.claimed), 30_000, 200)).toBe(true)

    const params = { base: BigInt(d.params.season2Base), maxDynamic: BigInt(d.params.season2MaxDynamic), halfSaturation: BigInt(d.params.season2HalfSaturation) }
    const expected = season2PoolCap(10n * WAD, params) + season2PoolCap(imagePaid, params)
    expect(await miner.chain.read<bigint>(miner.chain.contracts.token, 'balanceOf', [miner.node.address]) - before).toBe(expected)
    const { cap } = await miner.chain.epochCap(0n)
    expect(cap).toBe(expected)
    expect(await miner.chain.read<bigint>(miner.chain.contracts.emission, 'totals', [0n])).toBe(cap)
  }, 120_000)
})
