import { describe, it, expect, afterEach } from 'vitest'
import OpenAI from 'openai'
import { startTinyMesh, type TinyMesh } from '../gateway/load-fixture.js'
import { testNode, until } from '../p2p/util.js'

/**
 * Floods meant to lock honest users out, end to end on real tiny-llama miners over libp2p:
 * - one API key fills the gateway's queue for a model;
 * - one mesh peer opens job after job on a miner to hold its whole capacity (so gateways get
 *   only busy answers).
 * The flooder gains no priority (honest requests are served, 200), and every account pays
 * exactly for its own served jobs, to the wei.
 */
let mesh: TinyMesh | null = null
afterEach(async () => { await mesh?.stop(); mesh = null })

async function chat (client: OpenAI, model: string, i: number, maxTokens: number): Promise<number> {
  try {
    await client.chat.completions.create({ model, messages: [{ role: 'user', content: `q ${i}` }], max_tokens: maxTokens, seed: i })
    return 200
  } catch (e) {
    return (e as { status?: number }).status ?? -1
  }
}

describe('floods by one client', () => {
  it('one API key flooding the queue gets 429 past its share; another key\'s requests are all served; each pays exactly its served jobs', async () => {
    mesh = await startTinyMesh({ miners: 1, slots: 2 })
    const g = await mesh.addGateway({ queue: { maxQueued: 48, maxQueuedPerKey: 16 } })
    const credits = 10n ** 18n
    const flooder = await g.accounts.create(credits)
    const honest = await g.accounts.create(credits)
    const evil = new OpenAI({ apiKey: flooder.apiKey, baseURL: `${g.gateway.url}/v1`, maxRetries: 0, timeout: 120_000 })
    const good = new OpenAI({ apiKey: honest.apiKey, baseURL: `${g.gateway.url}/v1`, maxRetries: 0, timeout: 120_000 })
    const model = mesh.model.name
    const flood = Promise.all(Array.from({ length: 60 }, async (_, i) => await chat(evil, model, i, 64)))
    expect(await until(() => g.gateway.queue.depth() >= 16, 30_000, 10)).toBe(true)
    const mine = await Promise.all(Array.from({ length: 8 }, async (_, i) => await chat(good, model, 100 + i, 8)))
    const theirs = await flood
    expect(mine).toEqual(Array(8).fill(200))
    expect(theirs.filter(s => s === 429).length).toBeGreaterThan(0)
    expect(theirs.filter(s => s !== 200 && s !== 429)).toEqual([])

    // money: each account paid exactly the cost of its own served jobs
    const served = theirs.filter(s => s === 200).length + 8
    expect(await until(() => g.jobs.length === served, 10_000, 20)).toBe(true)
    const accounts = await g.accounts.list()
    const byAccount = new Map<string, bigint>()
    for (const j of g.jobs) byAccount.set(j.accountId, (byAccount.get(j.accountId) ?? 0n) + j.cost)
    for (const a of accounts) {
      expect(a.spent).toBe(byAccount.get(a.id) ?? 0n)
      expect(a.credits).toBe(credits - (byAccount.get(a.id) ?? 0n))
    }
  }, 180_000)

  it('a mesh peer flooding a miner with jobs holds at most its fair share once a gateway asks too: the gateway\'s requests are served', async () => {
    mesh = await startTinyMesh({ miners: 1, slots: 2, minerQueue: 14 })
    const g = await mesh.addGateway({ requestTimeoutMs: 120_000 })
    const miner = mesh.miners[0]!
    const hostile = await testNode({ bootstrap: [miner.node.multiaddrs()[0]!] })
    try {
      await hostile.dial(miner.node.multiaddrs()[0]!)
      const job = { kind: 'llm' as const, modelId: mesh.model.id, input: 'flood', sampling: { seed: 1, temperature: 1, topP: 1, topK: 0, maxTokens: 200, stop: [] } }
      // the hostile peer keeps 30 jobs outstanding: it resubmits each as soon as it ends or is refused
      let stop = false
      let hostileBusy = 0
      const flood = Promise.all(Array.from({ length: 30 }, async () => {
        for (let k = 0; k < 200 && !stop; k++) {
          try { await hostile.runJob(miner.node.peerId, job) } catch { hostileBusy++; await new Promise(resolve => setTimeout(resolve, 20)) }
        }
      }))
      expect(await until(() => miner.jobs.queueDepth >= miner.jobs.capacity, 30_000, 10)).toBe(true)
      const { apiKey } = await g.accounts.create(10n ** 18n)
      const client = new OpenAI({ apiKey, baseURL: `${g.gateway.url}/v1`, maxRetries: 0, timeout: 120_000 })
      const statuses = await Promise.all(Array.from({ length: 6 }, async (_, i) => await chat(client, mesh!.model.name, i, 8)))
      stop = true
      await flood
      expect(statuses).toEqual(Array(6).fill(200))
      expect(hostileBusy).toBeGreaterThan(0)
      expect(await until(() => g.jobs.length === 6, 10_000, 20)).toBe(true)
      const acct = (await g.accounts.list())[0]!
      expect(acct.spent).toBe(g.jobs.reduce((n, j) => n + j.cost, 0n))
    } finally {
      await hostile.stop()
    }
  }, 180_000)
})
