import { describe, it, expect, afterEach } from 'vitest'
import type { HeuristNode, JobRequest } from '../../src/p2p/index.js'
import { isHeuristError } from '../../src/core/errors.js'
import { testNode, stopAll, until } from './util.js'
import { ScriptedExecutor, SCRIPT_MODEL } from './scripted-executor.js'

/**
 * A miner's capacity (running slots + queue) is what limits its job streams, not a per-peer
 * constant; past it a request gets a typed `busy` reply at once; with several requesters each
 * gets a fair share of the capacity. Real libp2p over TCP on 127.0.0.1.
 */
const job: JobRequest = { kind: 'llm', modelId: SCRIPT_MODEL.id, input: 'hello', sampling: { seed: 1, temperature: 0, topP: 1, topK: 0, maxTokens: 5, stop: [] } }

type Outcome = { ok: true } | { ok: false, code: string, details: Record<string, unknown> }
async function outcome (p: Promise<unknown>): Promise<Outcome> {
  try { await p; return { ok: true } } catch (e) { return { ok: false, code: isHeuristError(e) ? e.code : String(e), details: isHeuristError(e) ? e.details ?? {} : {} } }
}

describe('miner capacity and busy replies', () => {
  let nodes: HeuristNode[] = []
  afterEach(async () => { await stopAll(nodes); nodes = [] })

  async function setUp (slots: number, queue: number, delayMs: number): Promise<{ miner: HeuristNode, exec: ScriptedExecutor, client: () => Promise<HeuristNode> }> {
    const miner = await testNode()
    nodes.push(miner)
    const exec = new ScriptedExecutor(['one', ' two', ' three', ' four', ' five'], delayMs)
    await miner.serveJobs(exec, { maxConcurrentJobs: slots, maxQueue: queue })
    return {
      miner,
      exec,
      client: async () => {
        const c = await testNode({ bootstrap: [miner.multiaddrs()[0]!] })
        nodes.push(c)
        await c.dial(miner.multiaddrs()[0]!)
        return c
      }
    }
  }

  it('one requester gets the whole capacity (2 running + 14 queued = 16 at once, not 4); the 17th and later get a typed busy reply', async () => {
    const { miner, client } = await setUp(2, 14, 10)
    const c = await client()
    const results = await Promise.all(Array.from({ length: 20 }, async () => await outcome(c.runJob(miner.peerId, job))))
    const ok = results.filter(r => r.ok).length
    const busy = results.filter((r): r is Extract<Outcome, { ok: false }> => !r.ok)
    expect(ok).toBe(16)
    expect(busy).toHaveLength(4)
    for (const b of busy) {
      expect(b.code).toBe('P2P_BUSY')
      expect(b.details.capacity).toBe(16)
      expect(b.details.retryAfterMs).toBeGreaterThanOrEqual(20)
      expect(b.details.retryAfterMs).toBeLessThanOrEqual(5000)
    }
    expect(miner.jobs!.stats.busy).toBe(4)
    expect(miner.jobs!.stats.failed).toBe(0)
    expect(miner.jobs!.stats.served).toBe(16)
  })

  it('a queued job says so (accepted with queued > 0), then says when it starts (queued 0)', async () => {
    const { miner, client } = await setUp(1, 4, 20)
    const c = await client()
    const first = c.runJob(miner.peerId, job)
    const seen: number[] = []
    const second = c.runJob(miner.peerId, job, { onAccepted: (q) => { seen.push(q) } })
    await Promise.all([first, second])
    expect(seen.length).toBe(2)
    expect(seen[0]).toBeGreaterThan(0)
    expect(seen[1]).toBe(0)
  })

  it('two requesters share a miner fairly: one that floods gets capacity / 2 (the rest busy), the other still gets in beside it', async () => {
    const { miner, client } = await setUp(2, 6, 40)
    const a = await client()
    const b = await client()
    const bFirst = outcome(b.runJob(miner.peerId, job))
    expect(await until(() => miner.jobs!.queueDepth > 0, 5000, 5)).toBe(true)
    const flood = Promise.all(Array.from({ length: 10 }, async () => await outcome(a.runJob(miner.peerId, job))))
    // wait until a holds its share, then b asks for 3 more: there is room for them
    expect(await until(() => miner.jobs!.queueDepth >= 5, 5000, 5)).toBe(true)
    const bMore = await Promise.all(Array.from({ length: 3 }, async () => await outcome(b.runJob(miner.peerId, job))))
    expect(bMore.every(r => r.ok)).toBe(true)
    const f = await flood
    expect(f.filter(r => r.ok).length).toBe(4)
    expect(f.filter(r => !r.ok && r.code === 'P2P_BUSY').length).toBe(6)
    expect((await bFirst).ok).toBe(true)
  })
})
