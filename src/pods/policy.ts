import { createHash } from 'node:crypto'
import type { ModelKind } from '../inference/types.js'

/**
 * The hosting policy every miner runs (whitepaper §2.1.2 pods, §3.2.4 votes scale capacity):
 * a pure function from what the miner sees (pods on chain with their votes, demand that
 * gateways publish, which miners advertise which pods, its own room) to what it should load
 * and unload. Every miner computes the same ranking from the same view, so they agree on who
 * hosts a pod without talking to each other:
 *
 *   desired(pod) = min(eligible miners, voteCap, max(1, ⌈pending / jobsPerHost⌉))   while demanded
 *   voteCap      = max(1, ⌈voteShare · eligible miners⌉)   voteShare = pod votes / all pod votes
 *                  (an equal share each when nobody voted)
 *
 * Eligible miners are ranked: those already hosting first (a cold start costs a download and
 * a load), then by rendezvous hash of (pod id, miner address), which spreads pods evenly and
 * is stable as miners come and go. A miner loads a pod when it ranks among the first
 * `desired` and has room. It unloads a pod that nobody demanded and it served no job for
 * for `idleMs` (scale to zero), or that was retired.
 */

export interface PodView {
  /** sha256 of the weights, 64 hex digits (no 0x). */
  id: string
  name: string
  kind: ModelKind
  /** Least VRAM a host needs, MiB; 0 = runs on CPU. */
  minVramMb: number
  /** stHEU wei voted for the pod. */
  votes: bigint
  retired: boolean
}

export interface MinerView {
  address: string
  /** Largest single GPU's VRAM, MiB; 0 = no GPU. */
  vramMb: number
  /** Pod ids it advertises as loaded now. */
  hosting: string[]
}

export interface SelfView extends MinerView {
  /** Pods loaded here, with the time of the last job or load (unix ms). */
  loaded: Array<{ id: string, lastUsed: number }>
  /** Pods that failed here (bad URL, bad checksum): never retried by the policy until cleared. */
  failed: string[]
  /** Free memory for another model, bytes (RAM on CPU hosts). */
  freeMemoryBytes: number
}

export interface PolicyOptions {
  /** A pod idle this long (no demand seen, no job here) is unloaded. Default 60 s. */
  idleMs: number
  /** Jobs one host is expected to absorb before another host is wanted. Default 2 (mine.maxJobs). */
  jobsPerHost: number
  /** Most pods loaded at once on one miner. Default 4. */
  maxLoaded: number
  /** Memory a pod needs at least, when nothing better is known, bytes. Default 64 MiB. */
  minFreeMemoryBytes: number
}

export const defaultPolicyOptions: PolicyOptions = {
  idleMs: 60_000,
  jobsPerHost: 2,
  maxLoaded: 4,
  minFreeMemoryBytes: 64 * 1024 * 1024
}

export type PodState = 'hosted' | 'scaling' | 'pending' | 'idle' | 'retired' | 'failed'

export interface PodPlan {
  id: string
  state: PodState
  /** Why, in a few words (shown by `pod list` and logged by the miner). */
  reason: string
  pending: number
  eligible: number
  voteCap: number
  desired: number
  /** Miners that should host it, best first (addresses). */
  hosts: string[]
}

export interface Plan {
  load: string[]
  unload: string[]
  /**
   * Pods loaded here while more miners host them than wanted, and this one ranks beyond the
   * wanted hosts (votes or demand fell). The manager unloads them once that has lasted a
   * while, so a dip in demand does not cost a cold start.
   */
  excess: string[]
  pods: PodPlan[]
}

export interface PolicyInput {
  pods: PodView[]
  /** Pending jobs per pod id, summed over live gateways. */
  demand: ReadonlyMap<string, number>
  /** Every live miner, self included. */
  miners: MinerView[]
  self: SelfView
  now: number
  /** When demand for each pod was last seen above zero (unix ms). */
  lastDemand: ReadonlyMap<string, number>
  /** An onlooker (`pod list`), not a miner: `self` is not counted among the miners. */
  observer?: boolean
}

/** Rendezvous weight: the lowest hash of (pod, miner) ranks first. */
export function rendezvous (podId: string, address: string): string {
  return createHash('sha256').update(`${podId}:${address.toLowerCase()}`).digest('hex')
}

export function fits (pod: Pick<PodView, 'minVramMb'>, miner: Pick<MinerView, 'vramMb'>): boolean {
  return pod.minVramMb === 0 || miner.vramMb >= pod.minVramMb
}

/** Hosts a pod should have for its vote share and demand (0 without demand). */
export function desiredHosts (pending: number, voteShare: number, eligible: number, jobsPerHost: number): { voteCap: number, desired: number } {
  if (eligible === 0) return { voteCap: 0, desired: 0 }
  const voteCap = Math.max(1, Math.ceil(voteShare * eligible - 1e-9))
  if (pending <= 0) return { voteCap, desired: 0 }
  const byDemand = Math.max(1, Math.ceil(pending / Math.max(1, jobsPerHost)))
  return { voteCap, desired: Math.min(eligible, voteCap, byDemand) }
}

/** Each pod's state as an onlooker sees it (for `pod list`): no self, nothing to load. */
export function podStates (pods: PodView[], demand: ReadonlyMap<string, number>, miners: MinerView[], init: Partial<PolicyOptions> = {}): PodPlan[] {
  const self: SelfView = { address: '0x0000000000000000000000000000000000000000', vramMb: 0, hosting: [], loaded: [], failed: [], freeMemoryBytes: 0 }
  return planHosting({ pods, demand, miners, self, now: 0, lastDemand: new Map(), observer: true }, init).pods
}

export function planHosting (input: PolicyInput, init: Partial<PolicyOptions> = {}): Plan {
  const o = { ...defaultPolicyOptions, ...init }
  const self = input.self
  const selfAddr = self.address.toLowerCase()
  const live = input.pods.filter(p => !p.retired)
  const totalVotes = live.reduce((s, p) => s + p.votes, 0n)
  const loadedIds = new Set(self.loaded.map(l => l.id))
  const failed = new Set(self.failed)
  // self's own view of itself wins over its (possibly stale) advert
  const others = input.miners.filter(m => m.address.toLowerCase() !== selfAddr)
  const miners = input.observer === true ? others : [...others, { ...self, hosting: [...loadedIds] }]

  const pods: PodPlan[] = []
  const wanted: Array<{ id: string, pending: number, votes: bigint }> = []
  const excess: string[] = []
  for (const p of input.pods) {
    const pending = input.demand.get(p.id) ?? 0
    const hosting = miners.filter(m => m.hosting.includes(p.id)).map(m => m.address)
    if (p.retired) {
      pods.push({ id: p.id, state: 'retired', reason: 'retired by its deployer', pending, eligible: 0, voteCap: 0, desired: 0, hosts: [] })
      continue
    }
    // a miner that failed to fetch or load the pod steps aside so the next one in rank tries
    const eligible = miners.filter(m => fits(p, m) && !(m.address.toLowerCase() === selfAddr && failed.has(p.id)))
    // share as a float is fine: it only picks a host count; bigint → number loses nothing that matters here
    const share = totalVotes === 0n ? 1 / live.length : Number(p.votes * 1_000_000n / totalVotes) / 1_000_000
    const { voteCap, desired } = desiredHosts(pending, share, eligible.length, o.jobsPerHost)
    const ranked = eligible
      .map(m => ({ m, warm: m.hosting.includes(p.id), w: rendezvous(p.id, m.address) }))
      .sort((a, b) => a.warm !== b.warm ? (a.warm ? -1 : 1) : a.w < b.w ? -1 : a.w > b.w ? 1 : 0)
      .map(r => r.m.address)
    const hosts = ranked.slice(0, desired)
    let state: PodState
    let reason: string
    if (failed.has(p.id) && pending > 0) { state = 'failed'; reason = 'this miner could not fetch or load it' } else if (pending > 0 && eligible.length === 0) {
      state = 'pending'
      reason = `no miner has ${(p.minVramMb / 1024).toFixed(1)} GB of VRAM`
    } else if (pending > 0 && hosting.length < desired) {
      state = 'scaling'
      reason = `${hosting.length} of ${desired} hosts`
    } else if (hosting.length > 0) {
      state = 'hosted'
      reason = `${hosting.length} host${hosting.length === 1 ? '' : 's'}`
    } else {
      state = 'idle'
      reason = 'no demand, no host (scaled to zero)'
    }
    pods.push({ id: p.id, state, reason, pending, eligible: eligible.length, voteCap, desired, hosts })
    if (desired > 0 && loadedIds.has(p.id) && hosting.length > desired && !hosts.some(a => a.toLowerCase() === selfAddr)) excess.push(p.id)
    if (desired > 0 && hosts.some(a => a.toLowerCase() === selfAddr) && !loadedIds.has(p.id) && !failed.has(p.id)) wanted.push({ id: p.id, pending, votes: p.votes })
  }

  // unload: retired, unknown, or idle (no demand seen and no job here for idleMs)
  const byId = new Map(input.pods.map(p => [p.id, p]))
  const unload: string[] = []
  for (const l of self.loaded) {
    const p = byId.get(l.id)
    const lastDemand = input.lastDemand.get(l.id) ?? 0
    const demandedNow = (input.demand.get(l.id) ?? 0) > 0
    const idleSince = Math.max(l.lastUsed, lastDemand)
    if (p === undefined || p.retired || (!demandedNow && input.now - idleSince >= o.idleMs)) unload.push(l.id)
  }

  // load: most pending first, then most votes; within room (count, memory)
  wanted.sort((a, b) => b.pending - a.pending || (b.votes > a.votes ? 1 : b.votes < a.votes ? -1 : 0))
  const room = o.maxLoaded - (self.loaded.length - unload.length)
  const load = self.freeMemoryBytes < o.minFreeMemoryBytes ? [] : wanted.slice(0, Math.max(0, room)).map(w => w.id)
  return { load, unload, excess: excess.filter(id => !unload.includes(id)), pods }
}
