import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { keccak256, toUtf8Bytes, type Wallet } from 'ethers'
import * as lp from 'it-length-prefixed'
import {
  JOB_PROTOCOL, MAX_BYTES, RECEIPT_CLOCK_SKEW_S, encodeMessage, signReceipt as signWireReceipt, inputHashOf, paramsHashOf, outputHashOf,
  type JobRequest
} from '../../src/p2p/index.js'
import { identityFromPrivateKey } from '../../src/core/identity.js'
import { testNode } from '../p2p/util.js'
import { signReceipt, signVerdict, receiptDigest, sortBySigner, type ChainClient } from '../../src/chain/index.js'
import type { Receipt, Verdict } from '../../src/core/typed-data.js'
import { startChainWorld, type ChainWorld } from './chain-fixture.js'

/**
 * Attack 9b (issue 15): a receipt the miner signed under its previous registration (before it
 * exited and took its collateral back) is kept by a reporter and, with a quorum of failing
 * verdicts, used to slash the collateral the miner posted when it registered again. The
 * receipt must slash only the registration it was earned under. And the converse: a miner that
 * backdates its receipts past its last exit, to make its work unslashable, is not paid.
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

describe('attack 9b, the converse: a miner backdating receipts past its last exit', () => {
  it('the requester refuses a receipt whose times lie outside the job it watched', async () => {
    const job: JobRequest = { kind: 'llm', modelId: 'b'.repeat(64), input: 'hello', sampling: { seed: 1, temperature: 0, topP: 1, topK: 0, maxTokens: 5, stop: [] } }
    const minerWallet = await world.wallet(0n)
    const miner = await testNode({ identity: identityFromPrivateKey(minerWallet.privateKey) })
    const gateway = await testNode({ bootstrap: [miner.multiaddrs()[0]!] })
    try {
      let backdateS = 0n
      // a miner that serves honestly and signs with its own key, but stamps the times it likes
      await miner.libp2p.handle(JOB_PROTOCOL, async (stream) => {
        const frames = lp.decode(stream, { maxDataLength: MAX_BYTES.request })
        const req = JSON.parse(new TextDecoder().decode((await frames.next()).value!.subarray())) as { jobId: string }
        const send = (f: unknown): void => { stream.send(lp.encode.single(encodeMessage(f))) }
        send({ v: 1, type: 'accepted', jobId: req.jobId, queued: 0 })
        const result = { text: 'hi', tokens: [1], finishReason: 'stop' as const, usage: { promptTokens: 1, outputTokens: 1, ttftMs: 1, tokensPerSecond: 1, totalMs: 1 } }
        send({ v: 1, type: 'result', kind: 'llm', ...result })
        const now = BigInt(Math.floor(Date.now() / 1000))
        const signed = await signWireReceipt(minerWallet, {
          jobId: req.jobId, requester: gateway.address, miner: miner.address, modelId: '0x' + job.modelId, pool: 0,
          inputHash: inputHashOf(job), outputHash: outputHashOf({ kind: 'llm', result }), paramsHash: paramsHashOf(job), computeUnits: 1n, startedAt: now - backdateS, endedAt: now - backdateS + 1n
        })
        send({ v: 1, type: 'receipt', signed })
        await stream.close()
      })
      await gateway.dial(miner.multiaddrs()[0]!)
      // honest times: valid
      const ok = await gateway.runJob(miner.peerId, job)
      expect({ valid: ok.receiptValid, problem: ok.receiptProblem }).toEqual({ valid: true, problem: undefined })
      // backdated by an hour (past an exit that happened since): refused, so the gateway pays nothing for it
      backdateS = 3600n
      const late = await gateway.runJob(miner.peerId, job)
      expect(late.receiptValid).toBe(false)
      expect(late.receiptProblem).toMatch(new RegExp(`lie outside the job \\(\\d+–\\d+, ±${RECEIPT_CLOCK_SKEW_S} s\\)$`))
    } finally {
      await gateway.stop()
      await miner.stop()
    }
  })
})
