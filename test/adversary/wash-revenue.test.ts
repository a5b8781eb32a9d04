import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { ZeroAddress, keccak256, toUtf8Bytes, type Wallet } from 'ethers'
import { signVoucher, type ChainClient } from '../../src/chain/index.js'
import type { Voucher } from '../../src/core/typed-data.js'
import { splitRevenue } from '../../src/economics/index.js'
import { startChainWorld, HEU, type ChainWorld } from './chain-fixture.js'

/**
 * Attack 4 (issue 15): wash revenue. A miner pays itself (payer = miner = payout = frontend =
 * pod deployer) to raise the epoch's revenue, hence the emission cap, at no cost. Also the
 * subtler shapes: a payer key whose payout is the miner's owner, and a frontend that is the
 * miner. Each must cost the attacker exactly the protocol fee (which goes to stHEU holders)
 * and leave the epoch's cap where it was.
 */
const EPOCH = 7n * 86_400n

let world: ChainWorld

beforeAll(async () => { world = await startChainWorld({ epochSeconds: EPOCH }) })
afterAll(async () => { await world?.stop() })

interface Snapshot { cap: bigint, revenue: bigint, related: bigint, vault: bigint, heu: Record<string, bigint> }

async function snapshot (c: ChainClient, epoch: bigint, who: string[]): Promise<Snapshot> {
  const [llm, image] = await c.read<[bigint, bigint]>(c.contracts.payments, 'epochRevenue', [epoch])
  const [rl, ri] = await c.read<[bigint, bigint]>(c.contracts.payments, 'epochRelatedRevenue', [epoch])
  const heu: Record<string, bigint> = {}
  for (const a of who) heu[a] = await world.heu(a)
  return { cap: (await c.epochCap(epoch)).cap, revenue: llm + image, related: rl + ri, vault: await world.heu(c.deployment.contracts.StakedHeurist), heu }
}

describe('attack 4: wash revenue', () => {
  it('paying yourself costs exactly the protocol fee, which stHEU holders get, and raises no emission cap', async () => {
    const d = world.devnet.deployment
    const min = BigInt(d.params.minCollateral)
    const feeBps = BigInt(d.params.protocolFeeBps)
    expect(feeBps).toBe(500n)
    const amount = 1000n * HEU

    // the self-dealer: one key, registered as a miner (its own owner), pod deployer and frontend
    const m: Wallet = await world.wallet(min + 10n * amount)
    const mc = await world.client(m)
    await mc.register(min)
    const podId = keccak256(toUtf8Bytes('wash-pod'))
    await mc.registerPod(podId, 0, 0, Number(d.params.maxPodRevenueBps))
    await mc.deposit(10n * amount)
    const epoch = await mc.currentEpoch()

    const before = await snapshot(mc, epoch, [m.address])
    const v: Voucher = { payer: m.address, miner: m.address, podId, podDeployer: m.address, podBps: Number(d.params.maxPodRevenueBps), pool: 0, frontend: m.address, cumulativeAmount: amount }
    await mc.redeemVoucher(v, await signVoucher(m, d, v))
    const after = await snapshot(mc, epoch, [m.address])
    const fee = amount * feeBps / 10_000n
    const split = splitRevenue(amount, { podBps: Number(d.params.maxPodRevenueBps), frontendBps: d.params.frontendBps, protocolFeeBps: feeBps })
    expect(split.protocol).toBe(fee)
    // the deposit went down by `amount`; the wallet got back node + pod + frontend shares = amount − fee
    expect(await mc.depositOf(m.address)).toBe(9n * amount)
    expect(after.heu[m.address]).toBe(before.heu[m.address]! + amount - fee)
    expect(after.vault).toBe(before.vault + fee)
    // the revenue is recorded as related, and the cap did not move
    expect(after.revenue).toBe(before.revenue)
    expect(after.related).toBe(before.related + amount)
    expect(after.cap).toBe(before.cap)

    // a separate payer key whose payout is the miner's owner (payer registered as an operator
    // owned by the same wallet): related, no cap
    const owner = await world.wallet(2n * min + amount)
    const opA = await world.wallet(0n)
    const opB = await world.wallet(amount)
    for (const op of [opA, opB]) {
      const consent = await (await world.client(op)).signRegistrationConsent(owner.address, BigInt((await world.devnet.provider.getBlock('latest'))!.timestamp) + 600n)
      await (await world.client(owner)).register(min, undefined, consent)
    }
    const bc = await world.client(opB)
    await bc.deposit(amount)
    const s1 = await snapshot(bc, epoch, [owner.address, opB.address])
    const v2: Voucher = { payer: opB.address, miner: opA.address, podId, podDeployer: ZeroAddress, podBps: 0, pool: 1, frontend: ZeroAddress, cumulativeAmount: amount }
    await bc.redeemVoucher(v2, await signVoucher(opB, d, v2))
    const s2 = await snapshot(bc, epoch, [owner.address, opB.address])
    expect(s2.heu[owner.address]).toBe(s1.heu[owner.address]! + amount - fee)
    expect(s2.vault).toBe(s1.vault + fee)
    expect(s2.revenue).toBe(s1.revenue)
    expect(s2.related).toBe(s1.related + amount)
    expect(s2.cap).toBe(s1.cap)

    // an unrelated payer whose frontend is the miner itself: related, no cap
    const payer = await world.wallet(amount)
    const pc = await world.client(payer)
    await pc.deposit(amount)
    const s3 = await snapshot(pc, epoch, [m.address, payer.address])
    const v3: Voucher = { payer: payer.address, miner: m.address, podId, podDeployer: ZeroAddress, podBps: 0, pool: 0, frontend: m.address, cumulativeAmount: amount }
    await pc.redeemVoucher(v3, await signVoucher(payer, d, v3))
    const s4 = await snapshot(pc, epoch, [m.address, payer.address])
    expect(s4.heu[m.address]).toBe(s3.heu[m.address]! + amount - fee)
    expect(s4.revenue).toBe(s3.revenue)
    expect(s4.cap).toBe(s3.cap)

    // an honest, unrelated payment does raise the cap: the rule is about relations, not revenue
    const honest = await world.wallet(amount)
    const hc = await world.client(honest)
    await hc.deposit(amount)
    const v4: Voucher = { ...v3, payer: honest.address, frontend: ZeroAddress }
    await hc.redeemVoucher(v4, await signVoucher(honest, d, v4))
    const s5 = await snapshot(hc, epoch, [])
    expect(s5.revenue).toBe(s4.revenue + amount)
    expect(s5.cap).toBeGreaterThan(s4.cap)
    expect(await hc.currentEpoch()).toBe(epoch)
  })
})
