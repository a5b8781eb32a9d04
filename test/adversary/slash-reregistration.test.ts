import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { keccak256, toUtf8Bytes, type Wallet } from 'ethers'
import { signReceipt, signVerdict, receiptDigest, sortBySigner, type ChainClient } from '../../src/chain/index.js'
import type { Receipt, Verdict } from '../../src/core/typed-data.js'
import { startChainWorld, type ChainWorld } from './chain-fixture.js'

/**
 * Attack 9b (issue 15): a receipt the miner signed under its previous registration (before it
 * exited and took its collateral back) is kept by a reporter and, with a quorum of failing
 * verdicts, used to slash the collateral the miner posted when it registered again. The
 * receipt must slash only the registration it was earned under.
 */
const COOLDOWN = 86_400n

let world: ChainWorld
let validators: Wallet[]

beforeAll(async () => {
  world = await startChainWorld({ exitCooldown: COOLDOWN })
  validators = []
  for (let i = 0; i < 3; i++) {
    const w = await world.wallet(BigInt(world.devnet.deployment.params.minValidatorStake))
    await (await world.client(w)).registerValidator(BigInt(world.devnet.deployment.params.minValidatorStake))
    validators.push(w)
  }
})
afterAll(async () => { await world?.stop() })

async function now (): Promise<bigint> { return BigInt((await world.devnet.provider.getBlock('latest'))!.timestamp) }

async function failing (rh: string): Promise<{ vs: Verdict[], sigs: string[] }> {
  const sorted = sortBySigner(validators, w => w.address)
  const vs = sorted.map(w => ({ receiptHash: rh, validator: w.address, pass: false, reason: 1 }))
  return { vs, sigs: await Promise.all(vs.map(async (v, i) => await signVerdict(sorted[i]!, world.devnet.deployment, v))) }
}

describe('attack 9b: a receipt from a previous registration', () => {
  it('cannot slash collateral posted after the miner exited and registered again; a receipt of this registration still can', async () => {
    const d = world.devnet.deployment
    const min = BigInt(d.params.minCollateral)
    const slashBps = BigInt(d.params.slashBps)
    const miner = await world.wallet(2n * min)
    const mc: ChainClient = await world.client(miner)
    await mc.register(min)

    // a job under the first registration, signed by the miner
    const job = (tag: string, at: bigint): Receipt => ({
      jobId: keccak256(toUtf8Bytes(tag)), requester: validators[0]!.address, miner: miner.address, modelId: keccak256(toUtf8Bytes('m')), pool: 0,
      inputHash: keccak256(toUtf8Bytes('in')), outputHash: keccak256(toUtf8Bytes('out')), paramsHash: keccak256(toUtf8Bytes('p')), computeUnits: 100n, startedAt: at, endedAt: at + 1n
    })
    const old = job('old', await now())
    const oldSig = await signReceipt(miner, d, old)

    // the miner exits cleanly and registers again with fresh collateral
    await mc.send('exit', mc.contracts.nodes, 'requestExit', [miner.address])
    await world.devnet.timeTravel(COOLDOWN + 1n)
    await mc.send('complete exit', mc.contracts.nodes, 'completeExit', [miner.address])
    const exited = await mc.read<bigint>(mc.contracts.nodes, 'exitedAt', [miner.address])
    await world.devnet.timeTravel(10n)
    await mc.register(min)

    // the reporter slashes with the old receipt and a real quorum of failing verdicts
    const reporter = await world.wallet(0n)
    const rc = await world.client(reporter)
    const rh = receiptDigest(d, old)
    const q = await failing(rh)
    const balances = async (): Promise<Record<string, bigint>> => ({
      collateral: await rc.read<bigint>(rc.contracts.nodes, 'collateralOf', [miner.address]),
      reporter: await world.heu(reporter.address),
      reservoir: await world.heu(d.params.reservoir),
      registry: await world.heu(d.contracts.NodeRegistry)
    })
    const before = await balances()
    expect(before.collateral).toBe(min)
    await expect(rc.slash(old, oldSig, q.vs, q.sigs)).rejects.toMatchObject({
      code: 'CHAIN_RECEIPT_FROM_PREVIOUS_REGISTRATION',
      message: `slash reverted: ReceiptFromPreviousRegistration: startedAt ${new Date(Number(old.startedAt) * 1000).toISOString()}, exitedAt ${new Date(Number(exited) * 1000).toISOString()}`
    })
    expect(await balances()).toEqual(before)
    expect(await rc.read<boolean>(rc.contracts.slashing, 'slashed', [rh])).toBe(false)

    // a bad job under the new registration is slashed by F, to the wei
    const fresh = job('new', await now())
    const fq = await failing(receiptDigest(d, fresh))
    await rc.slash(fresh, await signReceipt(miner, d, fresh), fq.vs, fq.sigs)
    const amount = min * slashBps / 10_000n
    const reporterShare = amount * BigInt(d.params.reporterBps) / 10_000n
    const after = await balances()
    expect(after).toEqual({
      collateral: min - amount,
      reporter: before.reporter + reporterShare,
      reservoir: before.reservoir + amount - reporterShare,
      registry: before.registry - amount
    })
  })
})
