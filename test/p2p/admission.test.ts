import { describe, it, expect, afterEach } from 'vitest'
import { depositAdmission, jobCostBound, type HeuristNode, type JobRequest, type RequestFrame } from '../../src/p2p/index.js'
import { isHeuristError } from '../../src/core/errors.js'
import { llmComputeUnits, promptUnits } from '../../src/economics/index.js'
import { testNode, stopAll } from './util.js'
import { ScriptedExecutor, SCRIPT_MODEL } from './scripted-executor.js'

/**
 * A miner's admission over real TCP: a requester is served only while its Payments deposit
 * covers the cost bound of this job and of its jobs already running here. The deposit read is
 * the chain's (test/adversary/miner-free-work.test.ts reads it from the devnet); here it is a
 * fixed table, so the count of concurrent jobs is what the test varies.
 */
const PRICE = 1000n
const job: JobRequest = { kind: 'llm', modelId: SCRIPT_MODEL.id, input: 'hello', sampling: { seed: 1, temperature: 0, topP: 1, topK: 0, maxTokens: 3, stop: [] } }

async function outcome (p: Promise<unknown>): Promise<string> {
  try { await p; return 'served' } catch (e) { return isHeuristError(e) ? String(e.details?.code ?? e.code) : String(e) }
}

describe('deposit admission on the job server', () => {
  let nodes: HeuristNode[] = []
  afterEach(async () => { await stopAll(nodes); nodes = [] })

  it('concurrent jobs from one requester are admitted only up to its deposit; a finished job frees its share; a requester with no deposit gets P2P_NO_DEPOSIT before any work', async () => {
    const miner = await testNode()
    const rich = await testNode({ bootstrap: [miner.multiaddrs()[0]!] })
    const broke = await testNode({ bootstrap: [miner.multiaddrs()[0]!] })
    nodes.push(miner, rich, broke)
    // one job's bound: (⌈5 bytes / 4⌉ + 3 tokens) × weight 1 × price
    const bound = llmComputeUnits(1n, promptUnits('hello'), 3) * PRICE
    expect(jobCostBound({ v: 1, type: 'request', jobId: '0x' + '0'.repeat(64), timeoutMs: 1000, ...job } as RequestFrame, SCRIPT_MODEL, PRICE)).toBe(bound)
    const deposits = new Map([[rich.address.toLowerCase(), 2n * bound + bound / 2n]])
    const exec = new ScriptedExecutor(['a', 'b', 'c'], 150)
    await miner.serveJobs(exec, { maxConcurrentJobs: 8, admit: depositAdmission({ depositOf: async (a) => deposits.get(a.toLowerCase()) ?? 0n, pricePerUnit: () => PRICE }) })
    await rich.dial(miner.multiaddrs()[0]!)
    await broke.dial(miner.multiaddrs()[0]!)

    const first = await Promise.all([0, 1, 2, 3].map(async () => await outcome(rich.runJob(miner.peerId, job))))
    expect(first.filter(r => r === 'served')).toHaveLength(2)
    expect(first.filter(r => r === 'P2P_NO_DEPOSIT')).toHaveLength(2)
    expect(exec.seen).toHaveLength(2)
    // the two admitted jobs ended: their share of the deposit is free again
    expect(await outcome(rich.runJob(miner.peerId, job))).toBe('served')
    expect(await outcome(broke.runJob(miner.peerId, job))).toBe('P2P_NO_DEPOSIT')
    expect(exec.seen).toHaveLength(3)
  })
})
