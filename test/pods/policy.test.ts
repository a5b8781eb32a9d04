import { describe, it, expect } from 'vitest'
import { planHosting, desiredHosts, rendezvous, type PodView, type MinerView, type SelfView, type PolicyInput } from '../../src/pods/index.js'

const A = 'a'.repeat(64)
const B = 'b'.repeat(64)
const addr = (i: number): string => '0x' + i.toString(16).padStart(40, '0')

function pod (id: string, votes = 0n, extra: Partial<PodView> = {}): PodView {
  return { id, name: id.slice(0, 4), kind: 'llm', minVramMb: 0, votes, retired: false, ...extra }
}

function self (i: number, extra: Partial<SelfView> = {}): SelfView {
  return { address: addr(i), vramMb: 0, hosting: [], loaded: [], failed: [], freeMemoryBytes: 8 * 1024 ** 3, ...extra }
}

function input (o: Partial<PolicyInput> & { self: SelfView }): PolicyInput {
  return { pods: [pod(A)], demand: new Map(), miners: [], now: 1_000_000, lastDemand: new Map(), ...o }
}

/** Runs the policy as each of `n` miners (same view) and returns who decides to load `id`. */
function whoLoads (n: number, pods: PodView[], demand: Map<string, number>, id: string, vram: (i: number) => number = () => 0): string[] {
  const miners: MinerView[] = Array.from({ length: n }, (_, i) => ({ address: addr(i + 1), vramMb: vram(i + 1), hosting: [] }))
  const out: string[] = []
  for (let i = 1; i <= n; i++) {
    const plan = planHosting(input({ pods, demand, miners, self: self(i, { vramMb: vram(i) }) }))
    if (plan.load.includes(id)) out.push(addr(i))
  }
  return out
}

describe('hosting policy', () => {
  it('no demand: nobody loads a pod (scale to zero)', () => {
    expect(whoLoads(5, [pod(A)], new Map(), A)).toEqual([])
  })

  it('demand for an unhosted pod: exactly the desired number of miners load it, and all agree who', () => {
    // one pod, no votes anywhere: voteCap = all 5 miners; 3 pending at 2 jobs per host → 2 hosts
    const loaders = whoLoads(5, [pod(A)], new Map([[A, 3]]), A)
    expect(loaders).toHaveLength(2)
    const plan = planHosting(input({ pods: [pod(A)], demand: new Map([[A, 3]]), miners: [1, 2, 3, 4, 5].map(i => ({ address: addr(i), vramMb: 0, hosting: [] })), self: self(1) }))
    expect([...plan.pods[0]!.hosts].sort()).toEqual([...loaders].sort())
  })

  it('the number of hosts grows with the pod\'s share of votes under the same demand', () => {
    const demand = new Map([[A, 100], [B, 0]])
    const low = whoLoads(4, [pod(A, 1n), pod(B, 99n)], demand, A)
    const half = whoLoads(4, [pod(A, 50n), pod(B, 50n)], demand, A)
    const high = whoLoads(4, [pod(A, 99n), pod(B, 1n)], demand, A)
    expect(low).toHaveLength(1)
    expect(half).toHaveLength(2)
    expect(high).toHaveLength(4)
  })

  it('desiredHosts: table', () => {
    expect(desiredHosts(0, 1, 5, 2)).toEqual({ voteCap: 5, desired: 0 })
    expect(desiredHosts(1, 0, 5, 2)).toEqual({ voteCap: 1, desired: 1 })
    expect(desiredHosts(9, 0.5, 4, 2)).toEqual({ voteCap: 2, desired: 2 })
    expect(desiredHosts(9, 1, 4, 2)).toEqual({ voteCap: 4, desired: 4 })
    expect(desiredHosts(5, 1, 0, 2)).toEqual({ voteCap: 0, desired: 0 })
  })

  it('warm hosts rank first: a miner already hosting keeps the pod, no second cold start', () => {
    const miners: MinerView[] = [1, 2, 3].map(i => ({ address: addr(i), vramMb: 0, hosting: [] }))
    // pick the miner the hash ranks last, and make it the one already hosting
    const last = [...miners].sort((a, b) => rendezvous(A, a.address) < rendezvous(A, b.address) ? -1 : 1)[2]!
    last.hosting = [A]
    const demand = new Map([[A, 1]])
    for (const m of miners) {
      const s = self(Number(BigInt(m.address)), m === last ? { hosting: [A], loaded: [{ id: A, lastUsed: 999_000 }] } : {})
      const plan = planHosting(input({ demand, miners, self: s }))
      expect(plan.load).toEqual([])
      expect(plan.pods[0]!.hosts).toEqual([last.address])
      expect(plan.pods[0]!.state).toBe('hosted')
    }
  })

  it('a pod needing more VRAM than any miner has stays pending with the reason', () => {
    const big = pod(A, 0n, { minVramMb: 80 * 1024 })
    expect(whoLoads(3, [big], new Map([[A, 5]]), A, () => 24 * 1024)).toEqual([])
    const plan = planHosting(input({ pods: [big], demand: new Map([[A, 5]]), miners: [{ address: addr(2), vramMb: 24 * 1024, hosting: [] }], self: self(1, { vramMb: 24 * 1024 }) }))
    expect(plan.pods[0]).toMatchObject({ state: 'pending', eligible: 0, reason: 'no miner has 80.0 GB of VRAM' })
    // a miner with enough VRAM is the only one eligible
    expect(whoLoads(3, [big], new Map([[A, 5]]), A, i => i === 3 ? 81 * 1024 : 8 * 1024)).toEqual([addr(3)])
  })

  it('idle pods are unloaded after idleMs without demand or jobs; demand or a recent job keeps them', () => {
    const loaded = [{ id: A, lastUsed: 1_000_000 - 61_000 }]
    expect(planHosting(input({ self: self(1, { loaded, hosting: [A] }) }), { idleMs: 60_000 }).unload).toEqual([A])
    expect(planHosting(input({ self: self(1, { loaded: [{ id: A, lastUsed: 1_000_000 - 10_000 }], hosting: [A] }) }), { idleMs: 60_000 }).unload).toEqual([])
    expect(planHosting(input({ self: self(1, { loaded, hosting: [A] }), lastDemand: new Map([[A, 1_000_000 - 5000]]) }), { idleMs: 60_000 }).unload).toEqual([])
    expect(planHosting(input({ self: self(1, { loaded, hosting: [A] }), demand: new Map([[A, 1]]) }), { idleMs: 60_000 }).unload).toEqual([])
  })

  it('retired pods are unloaded and never loaded', () => {
    const r = pod(A, 0n, { retired: true })
    const plan = planHosting(input({ pods: [r], demand: new Map([[A, 5]]), self: self(1, { loaded: [{ id: A, lastUsed: 1_000_000 }], hosting: [A] }) }))
    expect(plan.unload).toEqual([A])
    expect(plan.load).toEqual([])
    expect(plan.pods[0]!.state).toBe('retired')
  })

  it('a pod that failed here is not loaded again, and the next miner in rank takes it', () => {
    const demand = new Map([[A, 1]])
    const miners: MinerView[] = [1, 2].map(i => ({ address: addr(i), vramMb: 0, hosting: [] }))
    const first = planHosting(input({ demand, miners, self: self(1) })).pods[0]!.hosts[0]!
    const i = Number(BigInt(first))
    const plan = planHosting(input({ demand, miners, self: self(i, { failed: [A] }) }))
    expect(plan.load).toEqual([])
    expect(plan.pods[0]!.state).toBe('failed')
    expect(plan.pods[0]!.hosts).not.toContain(first)
  })

  it('room: at most maxLoaded pods, none when memory is short; most pending first', () => {
    const pods = [pod(A), pod(B)]
    const demand = new Map([[A, 1], [B, 5]])
    expect(planHosting(input({ pods, demand, self: self(1) }), { maxLoaded: 1 }).load).toEqual([B])
    expect(planHosting(input({ pods, demand, self: self(1) }), { maxLoaded: 4 }).load).toEqual([B, A])
    expect(planHosting(input({ pods, demand, self: self(1, { freeMemoryBytes: 1024 }) })).load).toEqual([])
  })
})
