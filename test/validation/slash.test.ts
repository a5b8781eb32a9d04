import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import type { Wallet } from 'ethers'
import { tempDir } from '../helpers.js'
import { startDevnet, connectChain, DEFAULT_MIN_COLLATERAL, type Devnet, type ChainClient } from '../../src/chain/index.js'
import { createLogger } from '../../src/core/logger.js'
import type { JobOutput, JobRequest, ReceiptDomainOptions, SignedReceipt } from '../../src/p2p/index.js'
import {
  createValidator, chainStakeViews, chainSlasher, transcriptOf, REASON,
  type Validator, type ValidationTranscript, type VerdictMessage
} from '../../src/validation/index.js'
import { loadTinyLlms, llmJob, minerExecutor, receiptFor, run, type TinyLlms } from './fixtures.js'

// Three validators with equal stake, miners with collateral, on the embedded EDR devnet;
// jobs run on the real tiny models; verdicts travel over an in-memory bus (the gossip
// plumbing is tested in the e2e suite); evidence goes to the real Slashing contract.
describe('validators, verdict quorum and Slashing on the devnet', () => {
  let cleanup: () => Promise<void>
  let t: TinyLlms
  let devnet: Devnet
  let domain: ReceiptDomainOptions
  const clients: ChainClient[] = []
  const logger = createLogger({ level: 'silent', format: 'json' })
  const F = 5000n // slashBps of the default deployment

  beforeAll(async () => {
    const d = await tempDir()
    cleanup = d.cleanup
    t = await loadTinyLlms(d.dir)
    devnet = await startDevnet({ port: 0, accounts: 12 })
    domain = { chainId: devnet.chainId, verifyingContract: devnet.deployment.contracts.Slashing }
    for (const i of [1, 2, 3]) await (await client(i)).registerValidator(DEFAULT_MIN_COLLATERAL)
    for (const i of [4, 5, 6, 7, 8]) await (await client(i)).register(DEFAULT_MIN_COLLATERAL)
  }, 180_000)
  afterAll(async () => {
    for (const c of clients) c.close()
    await devnet?.stop()
    await t?.engine.stop()
    await cleanup?.()
  })

  async function client (i: number): Promise<ChainClient> {
    const c = await connectChain({ deployment: devnet.deployment, signer: devnet.accounts[i]! })
    clients.push(c)
    return c
  }
  const wallet = (i: number): Wallet => devnet.accounts[i]! as unknown as Wallet
  const collateral = async (i: number): Promise<bigint> => await clients[0]!.read<bigint>(clients[0]!.contracts.nodes, 'collateralOf', [devnet.accounts[i]!.address])

  /** Three validators sharing a transcript store (the gateway) and a verdict bus. */
  async function network (opts: { serve?: (v: number) => boolean, tamper?: (t: ValidationTranscript) => ValidationTranscript, sampleRate?: number } = {}): Promise<{ validators: Validator[], transcripts: Map<string, ValidationTranscript>, bus: VerdictMessage[] }> {
    const transcripts = new Map<string, ValidationTranscript>()
    const bus: VerdictMessage[] = []
    const validators: Validator[] = []
    let seed = 7
    for (const i of [1, 2, 3]) {
      const c = await client(i)
      const views = chainStakeViews(c, 0)
      validators.push(createValidator({
        wallet: wallet(i),
        domain,
        logger,
        llm: t.engine,
        rerunImage: null,
        fetchTranscript: async (s) => {
          if (opts.serve !== undefined && !opts.serve(i)) return null
          const tr = transcripts.get(s.receipt.jobId)
          return tr === undefined ? null : (opts.tamper?.(tr) ?? tr)
        },
        publish: async (m) => { bus.push(m) },
        ...views,
        slash: chainSlasher(c),
        random: () => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed / 2 ** 31 }
      }, { sampleRate: opts.sampleRate ?? 0.5 }))
    }
    return { validators, transcripts, bus }
  }

  /** Gossip: every published verdict reaches every validator, until nothing new is said. */
  async function settle (validators: Validator[], bus: VerdictMessage[]): Promise<void> {
    for (let rounds = 0; rounds < 50; rounds++) {
      for (const v of validators) await v.idle()
      if (bus.length === 0) return
      const msgs = bus.splice(0)
      for (const m of msgs) for (const v of validators) await v.onVerdict(m)
    }
    throw new Error('verdicts did not settle')
  }

  async function mine (minerIdx: number, mode: Parameters<typeof minerExecutor>[1], jobs: number, net: Awaited<ReturnType<typeof network>>, from = 0): Promise<SignedReceipt[]> {
    const ex = minerExecutor(t, mode)
    const out: SignedReceipt[] = []
    for (let i = from; i < from + jobs; i++) {
      const job: JobRequest = llmJob(t.a.id, i)
      const result: JobOutput = await run(ex, job)
      const signed = await receiptFor(wallet(minerIdx), job, result, domain)
      net.transcripts.set(signed.receipt.jobId, transcriptOf(signed.receipt.jobId, job, result))
      for (const v of net.validators) v.onReceipt({ v: 1, type: 'receipt', signed, chainId: Number(domain.chainId), verifyingContract: domain.verifyingContract })
      await settle(net.validators, net.bus)
      out.push(signed)
    }
    return out
  }

  it('slashes a wrong-model miner by F once a quorum agrees, and never an honest miner', async () => {
    const net = await network()
    const c0 = await collateral(4)
    await mine(5, 'honest', 20, net)
    await mine(4, 'wrong-model', 12, net)
    await mine(5, 'honest', 20, net, 20)
    expect(await collateral(4)).toBe(c0 - c0 * F / 10_000n)
    expect(await collateral(5)).toBe(c0)
    const stats = net.validators.map(v => v.stats)
    expect(stats.reduce((a, s) => a + s.slashesSubmitted, 0)).toBe(1)
    expect(stats.every(s => s.gatewayBlamed === 0 && s.errors === 0)).toBe(true)
    expect(stats.reduce((a, s) => a + s.failed, 0)).toBeGreaterThanOrEqual(3)
  })

  it('detects high-temperature sampling through the window test and slashes on the quorum', async () => {
    const net = await network({ sampleRate: 1 })
    const c0 = await collateral(6)
    await mine(6, 'high-temperature', 20, net)
    expect(await collateral(6)).toBe(c0 - c0 * F / 10_000n)
  })

  it('slashes nothing when too few validators can check (1 of 3 by stake)', async () => {
    const net = await network({ serve: v => v === 1 })
    const c0 = await collateral(7)
    await mine(7, 'random-tokens', 8, net)
    expect(await collateral(7)).toBe(c0)
    expect(net.validators[0]!.stats.failed).toBeGreaterThan(0)
    expect(net.validators.reduce((a, v) => a + v.stats.slashesSubmitted, 0)).toBe(0)
  })

  it('slashes nothing on a tampered transcript: the gateway is blamed, not the miner', async () => {
    const net = await network({
      sampleRate: 1,
      tamper: tr => tr.kind === 'llm' ? { ...tr, output: { ...tr.output, tokens: [...tr.output.tokens].reverse(), text: [...tr.output.text].reverse().join('') } } : tr
    })
    const c0 = await collateral(8)
    await mine(8, 'honest', 5, net)
    expect(await collateral(8)).toBe(c0)
    for (const v of net.validators) {
      expect(v.stats.gatewayBlamed).toBe(5)
      expect(v.stats.failed).toBe(0)
    }
  })

  it('rejects a direct slash with verdicts below quorum on chain too', async () => {
    const net = await network({ sampleRate: 1 })
    const [signed] = await mine(7, 'honest', 1, net)
    const { buildVerdictMessage } = await import('../../src/validation/index.js')
    const { receiptHash } = await import('../../src/p2p/index.js')
    const m = await buildVerdictMessage(wallet(1), domain, signed!, receiptHash(signed!, domain), false, REASON.outsideSupport)
    await expect(chainSlasher(clients[0]!)({ signed: signed!, verdicts: [m.verdict], signatures: [m.signature] })).rejects.toThrow(/NoQuorum/)
  })
})
