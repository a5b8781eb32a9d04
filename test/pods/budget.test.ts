import { describe, it, expect, afterEach } from 'vitest'
import OpenAI from 'openai'
import { demandOf, MemoryBudget, modelNeedBytes, type DemandSettings } from '../../src/inference/index.js'
import { deployPod } from '../../src/pods/index.js'
import { tempDir } from '../helpers.js'
import { until } from '../p2p/util.js'
import { startPodNet, tinyWeights, hostsOf, type PodNet } from './fixture.js'

/**
 * Pods plan against the miner's memory budget (the one its fixed models were placed against):
 * a pod that does not fit is never loaded and the miner says why; one that fits reserves its
 * need while loaded and gives it back when unloaded.
 */
const settings: DemandSettings = { contextSize: 0, parallel: 1, imageMaxSide: 64, llmDevices: ['cpu'], imageDevices: ['cpu'] }

describe('pods under a memory budget', () => {
  let net: PodNet | undefined
  let cleanup: (() => Promise<void>) | undefined
  afterEach(async () => {
    await net?.stop()
    await cleanup?.()
    net = undefined
  })

  async function start (freeBytes: number, seed: number): Promise<{ net: PodNet, budget: MemoryBudget, podId: string, client: OpenAI }> {
    const t = await tempDir('heurist-pod-budget-')
    cleanup = t.cleanup
    const budget = new MemoryBudget([{ device: 'cpu', freeBytes }])
    const n = await startPodNet(t.dir, {
      miners: 1,
      manager: { warmUp: false },
      budget: () => ({ reserve: async entry => { budget.require(await demandOf(entry, settings)) }, release: id => { budget.release(id) } })
    })
    net = n
    const w = tinyWeights(seed)
    n.weights.put('/budget-pod.gguf', w.bytes)
    await deployPod(await n.chainOf(n.devnet.accounts[6]!), { sha256: w.sha256, kind: 'llm', minVramMb: 0, revenueBps: 0, name: 'budget-pod', uri: n.weights.url('/budget-pod.gguf') })
    for (const m of n.miners) await m.host.directory.refresh()
    await n.gatewayDirectory.refresh()
    const { apiKey } = await n.gateway.accounts.create(10n ** 17n)
    return { net: n, budget, podId: w.sha256, client: new OpenAI({ apiKey, baseURL: `${n.gateway.gateway.url}/v1`, maxRetries: 0, timeout: 90_000 }) }
  }

  it('a miner whose budget cannot hold the pod never loads it and says why', async () => {
    // 64 KiB left: the fixed models took the rest
    const { net: n, budget, podId, client } = await start(64 * 1024, 41)
    const stop = new AbortController()
    // the request waits for a host (cold start) and counts as demand; the miner tries and refuses
    const pending = client.completions.create({ model: 'budget-pod', prompt: 'hello', max_tokens: 4 }, { signal: stop.signal }).catch((e: unknown) => e)
    const events = n.miners[0]!.host.manager.events
    expect(await until(() => events.some(e => e.pod === podId && e.event === 'failed'), 60_000, 100)).toBe(true)
    stop.abort()
    await pending
    const failed = events.find(e => e.pod === podId && e.event === 'failed')!
    expect(failed.reason).toMatch(/^budget-pod needs [\d.]+ MiB \(weights [\d.]+ MiB \+ KV cache [\d.]+ MiB for \d+ tokens × 1 sequences \+ 10 %\); the most room left is 0\.06 MiB on cpu \(of 0\.06 MiB free at start\)$/)
    expect(events.some(e => e.pod === podId && e.event === 'loaded')).toBe(false)
    expect(hostsOf(n, podId)).toHaveLength(0)
    expect(budget.remaining()).toEqual({ cpu: 64 * 1024 })
  }, 150_000)

  it('a miner with room loads it, holds its need while it is loaded and gives it back when it scales to zero', async () => {
    const { net: n, budget, podId, client } = await start(1024 ** 3, 42)
    const r = await client.completions.create({ model: 'budget-pod', prompt: 'hello', max_tokens: 4, seed: 1 })
    expect(r.choices[0]!.text.length).toBeGreaterThan(0)
    expect(hostsOf(n, podId)).toHaveLength(1)
    const need = modelNeedBytes(budget.placement(podId)!.demand)
    expect(need).toBeGreaterThan(0)
    expect(budget.remaining()).toEqual({ cpu: 1024 ** 3 - need })
    expect(await until(() => hostsOf(n, podId).length === 0, 30_000, 100)).toBe(true)
    expect(budget.remaining()).toEqual({ cpu: 1024 ** 3 })
  }, 150_000)
})
