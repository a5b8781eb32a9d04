import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { Wallet, ZeroHash, keccak256, toUtf8Bytes } from 'ethers'
import { signRewardRoot, signVoucher, buildRewardTree, sortBySigner, type ChainClient } from '../../src/chain/index.js'
import type { Voucher } from '../../src/core/typed-data.js'
import { startChainWorld, HEU, type ChainWorld } from './chain-fixture.js'

/**
 * Attack 1 (issue 15): an epoch nobody earned in posts root 0x0; a stranger copies that
 * postRoot transaction's calldata and sends it again, once per replay, to pay the epoch's cap
 * out again. Also the other one-time actions: a copied claim and a copied redemption.
 * Everything is asserted to the wei: Emission's, the reservoir's and every party's HEU.
 */
const EPOCH = 3600n

let world: ChainWorld
let validators: Wallet[]
let attacker: Wallet
let att: ChainClient

beforeAll(async () => {
  world = await startChainWorld({ epochSeconds: EPOCH })
  validators = []
  for (let i = 0; i < 3; i++) {
    const w = await world.wallet(1000n * HEU)
    await (await world.client(w)).registerValidator(500n * HEU)
    validators.push(w)
  }
  attacker = await world.wallet(0n)
  att = await world.client(attacker)
})

afterAll(async () => { await world?.stop() })

async function signatures (epoch: bigint, root: string, total: bigint): Promise<string[]> {
  return await Promise.all(sortBySigner(validators, w => w.address).map(async w => await signRewardRoot(w, world.devnet.deployment, { epoch, root, total })))
}

describe('attack 1: emission replay', () => {
  it('an empty epoch\'s root posts once; replaying its postRoot (and a claim, and a redemption) moves nothing', async () => {
    const d = world.devnet.deployment
    const emission = d.contracts.Emission
    const reservoir = d.params.reservoir
    const poster = await world.client(validators[0])

    // epoch 0: nobody earned points, validators post root 0x0 with total 0
    const empty = await poster.currentEpoch()
    await world.devnet.timeTravel(EPOCH)
    const { cap, reservoir: toReservoir } = await poster.epochCap(empty)
    expect(cap).toBeGreaterThan(0n)
    const before = { emission: await world.heu(emission), reservoir: await world.heu(reservoir) }
    const [posted] = await poster.postRewardRoot(empty, ZeroHash, 0n, await signatures(empty, ZeroHash, 0n))
    // the cap and the schedule's reservoir part went to the reservoir, once
    expect(await world.heu(reservoir)).toBe(before.reservoir + cap + toReservoir)
    expect(await world.heu(emission)).toBe(before.emission - cap - toReservoir)
    expect(await att.read<boolean>(att.contracts.emission, 'posted', [empty])).toBe(true)

    // the stranger replays the same calldata, three times: each reverts, nothing moves
    const afterPost = { emission: await world.heu(emission), reservoir: await world.heu(reservoir), attacker: await world.heu(attacker.address) }
    const tx = await world.calldata(posted!.hash)
    for (let i = 0; i < 3; i++) {
      await expect(world.replay(attacker, tx)).rejects.toMatchObject({ code: 'CHAIN_ROOT_EXISTS', message: `replay reverted: RootExists: epoch ${empty}` })
    }
    // through the client too: refused with the decoded reason
    await expect(att.postRewardRoot(empty, ZeroHash, 0n, await signatures(empty, ZeroHash, 0n))).rejects.toMatchObject({ code: 'CHAIN_ROOT_EXISTS' })
    expect({ emission: await world.heu(emission), reservoir: await world.heu(reservoir), attacker: await world.heu(attacker.address) }).toEqual(afterPost)

    // a non-empty epoch: its root posts once, and a copied claim pays once
    const earner = Wallet.createRandom().address
    const tree = buildRewardTree([{ account: earner, amount: 7n * HEU }, { account: Wallet.createRandom().address, amount: 3n * HEU }])
    const e1 = await poster.currentEpoch()
    await world.devnet.timeTravel(EPOCH)
    await poster.postRewardRoot(e1, tree.root, tree.total, await signatures(e1, tree.root, tree.total))
    const claim = tree.claims.find(c => c.account === earner)!
    const [claimed] = await poster.claim(e1, earner, claim.amount, claim.proof)
    expect(await world.heu(earner)).toBe(7n * HEU)
    const afterClaim = { emission: await world.heu(emission), earner: await world.heu(earner) }
    await expect(world.replay(attacker, await world.calldata(claimed!.hash))).rejects.toMatchObject({ code: 'CHAIN_ALREADY_CLAIMED' })
    expect({ emission: await world.heu(emission), earner: await world.heu(earner) }).toEqual(afterClaim)

    // a copied redemption pays nothing the second time
    const payer = await world.wallet(100n * HEU)
    const pc = await world.client(payer)
    await pc.deposit(100n * HEU)
    const miner = Wallet.createRandom().address
    const v: Voucher = { payer: payer.address, miner, podId: keccak256(toUtf8Bytes('m')), podDeployer: '0x' + '00'.repeat(20), podBps: 0, pool: 0, frontend: '0x' + '00'.repeat(20), cumulativeAmount: 10n * HEU }
    const [redeemed] = await att.redeemVoucher(v, await signVoucher(payer, d, v))
    const afterRedeem = { miner: await world.heu(miner), deposit: await pc.depositOf(payer.address), vault: await world.heu(d.contracts.StakedHeurist) }
    expect(afterRedeem.miner).toBe(10n * HEU - 10n * HEU * 500n / 10_000n)
    await world.replay(attacker, await world.calldata(redeemed!.hash)) // returns 0, transfers nothing
    expect({ miner: await world.heu(miner), deposit: await pc.depositOf(payer.address), vault: await world.heu(d.contracts.StakedHeurist) }).toEqual(afterRedeem)
  })
})
