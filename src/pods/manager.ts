import { freemem } from 'node:os'
import { HeuristError } from '../core/errors.js'
import type { Logger } from '../core/logger.js'
import type { HeuristNode, JobExecutor, MinerEntry } from '../p2p/index.js'
import type { CachedModel, ImageEngine, ImageModel, LlamaEngine, ModelCache, ModelInfo } from '../inference/index.js'
import { planHosting, type MinerView, type Plan, type PodPlan, type PolicyOptions } from './policy.js'
import type { Pod } from './directory.js'

/**
 * The pod manager inside a miner: every `tickMs` it runs the hosting policy over the pods on
 * chain, the demand gateways publish and the adverts it hears, then pulls (model cache:
 * resume, sha256 check) and loads the pods it should host, and unloads idle ones. Its
 * executor serves jobs for loaded pods and hands any other job to the miner's own executor.
 * A pod it cannot fetch or load is marked failed with the reason (logged, and shown in
 * `status()`), and retried only after `retryMs`.
 */
export interface PodManagerOptions {
  /** How often the policy runs. Default 1 s. */
  tickMs: number
  /** A failed pod is tried again after this long. Default 5 min. */
  retryMs: number
  /** Longest a pull may take. Default 30 min. */
  pullTimeoutMs: number
  /** A pod hosted by more miners than wanted is unloaded here after this long in excess. Default 30 s. */
  scaleDownMs: number
  /** Largest weights file pulled. Default 64 GiB. */
  maxPullBytes: number
  policy: Partial<PolicyOptions>
  /**
   * Run one chat token through a freshly loaded pod before advertising it. Default true: the
   * first chat request after a load sets up the chat template and compute graph (one to two
   * seconds on a CPU, bench:pods), and a gateway should not route to a host that is not warm.
   */
  warmUp: boolean
  now: () => number
}

export const defaultPodManagerOptions: PodManagerOptions = {
  tickMs: 1000,
  retryMs: 5 * 60_000,
  pullTimeoutMs: 30 * 60_000,
  scaleDownMs: 30_000,
  maxPullBytes: 64 * 1024 ** 3,
  policy: {},
  warmUp: true,
  now: Date.now
}

export interface PodSource {
  list: () => Pod[]
}

export interface DemandSource {
  totals: () => Map<string, number>
  lastDemand: () => Map<string, number>
}

export interface PodManagerComponents {
  node: HeuristNode
  pods: PodSource
  demand: DemandSource
  cache: ModelCache
  /** The LLM engine pods load into (created on first use). */
  llm: () => LlamaEngine
  /** The image engine image pods load into (created on first use); without it image pods are refused. */
  images?: () => ImageEngine
  /** This miner's largest GPU, MiB; 0 = CPU only. */
  vramMb: number
  /** The miner's memory budget: a pod reserves its need before it loads (refused with the reason), and releases it when unloaded. */
  budget?: PodBudget
  logger: Logger
  /** Called after a pod was loaded or unloaded (re-advertise now). */
  onChange?: () => void
}

export interface PodBudget {
  /** Reserves the pod's need; throws (INFERENCE_OVER_BUDGET, with the reason) when it does not fit. */
  reserve: (entry: CachedModel) => Promise<void>
  release: (id: string) => void
}

export interface PodEvent {
  pod: string
  name: string
  event: 'pulling' | 'loaded' | 'unloaded' | 'failed'
  reason?: string
  ms?: number
  /** Unix ms. */
  at: number
}

/** Largest GPU in an advert, MiB. */
export function advertVramMb (e: Pick<MinerEntry, 'advert'>): number {
  return Math.floor(e.advert.hardware.gpus.reduce((m, g) => Math.max(m, g.vramTotal), 0) / (1024 * 1024))
}

export class PodManager {
  private readonly o: PodManagerOptions
  private readonly loaded = new Map<string, { info: ModelInfo, lastUsed: number, running: number, image?: ImageModel }>()
  private readonly loading = new Map<string, Promise<void>>()
  private readonly failed = new Map<string, { reason: string, at: number }>()
  private timer: NodeJS.Timeout | null = null
  private ticking = false
  private lastPlan: Plan = { load: [], unload: [], excess: [], pods: [] }
  private readonly excessSince = new Map<string, number>()
  readonly events: PodEvent[] = []
  private readonly abort = new AbortController()

  constructor (private readonly c: PodManagerComponents, init: Partial<PodManagerOptions> = {}) {
    this.o = { ...defaultPodManagerOptions, ...init }
  }

  start (): void {
    if (this.timer !== null) return
    this.timer = setInterval(() => { void this.tick() }, this.o.tickMs)
    this.timer.unref()
  }

  /** Stops the policy, cancels pulls and unloads every pod. */
  async stop (): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
    this.abort.abort()
    await Promise.allSettled([...this.loading.values()])
    for (const id of [...this.loaded.keys()]) await this.unload(id, 'stopping')
  }

  /** Pods loaded here now, as the advert and the job server see them. */
  models (): ModelInfo[] {
    return [...this.loaded.values()].map(l => l.info)
  }

  /** Why a pod failed here, if it did (and the failure has not expired). */
  failure (podId: string): string | undefined {
    return this.failed.get(podId)?.reason
  }

  plan (): PodPlan[] { return this.lastPlan.pods }

  private record (e: Omit<PodEvent, 'at'>): void {
    this.events.push({ ...e, at: Date.now() })
    if (this.events.length > 1000) this.events.shift()
  }

  /** One round of the policy: plan, unload, start loads. Loads run in the background. */
  async tick (): Promise<Plan> {
    if (this.ticking) return this.lastPlan
    this.ticking = true
    try {
      const now = this.o.now()
      for (const [id, f] of this.failed) if (now - f.at >= this.o.retryMs) this.failed.delete(id)
      const pods = this.c.pods.list()
      const podIds = new Set(pods.map(p => p.id))
      const self = this.c.node.address
      const miners: MinerView[] = this.c.node.peerTable.miners()
        .filter(e => e.address.toLowerCase() !== self.toLowerCase())
        .map(e => ({ address: e.address, vramMb: advertVramMb(e), hosting: e.advert.models.map(m => m.id).filter(id => podIds.has(id)) }))
      const busy = [...this.loaded].filter(([, l]) => l.running > 0).map(([id]) => id)
      const plan = planHosting({
        pods,
        demand: this.c.demand.totals(),
        lastDemand: this.c.demand.lastDemand(),
        miners,
        self: {
          address: self,
          vramMb: this.c.vramMb,
          hosting: [...this.loaded.keys()],
          // a running job counts as use now: never unload under a job
          loaded: [...this.loaded].map(([id, l]) => ({ id, lastUsed: busy.includes(id) ? now : l.lastUsed })).concat([...this.loading.keys()].map(id => ({ id, lastUsed: now }))),
          failed: [...this.failed.keys()],
          freeMemoryBytes: freemem()
        },
        now
      }, this.o.policy)
      this.lastPlan = plan
      for (const id of plan.unload) if (this.loaded.has(id)) await this.unload(id, pods.find(p => p.id === id)?.retired === true ? 'retired' : 'idle')
      for (const id of [...this.excessSince.keys()]) if (!plan.excess.includes(id)) this.excessSince.delete(id)
      for (const id of plan.excess) {
        const since = this.excessSince.get(id) ?? now
        this.excessSince.set(id, since)
        if (now - since >= this.o.scaleDownMs && !busy.includes(id)) { this.excessSince.delete(id); await this.unload(id, 'more hosts than its votes and demand want') }
      }
      for (const id of plan.load) {
        const pod = pods.find(p => p.id === id)
        if (pod === undefined || this.loading.has(id) || this.loaded.has(id)) continue
        const p = this.load(pod).finally(() => this.loading.delete(id))
        this.loading.set(id, p)
      }
      return plan
    } finally {
      this.ticking = false
    }
  }

  /** Waits for the loads under way (tests, benchmarks). */
  async settled (): Promise<void> {
    await Promise.allSettled([...this.loading.values()])
  }

  private async load (pod: Pod): Promise<void> {
    const t0 = Date.now()
    try {
      const images = this.c.images
      if (pod.kind === 'image' && images === undefined) throw new HeuristError('PODS_UNSUPPORTED_KIND', 'this miner runs no image engine')
      let entry = (await this.c.cache.list()).find(m => m.id === pod.id)
      if (entry === undefined) {
        this.record({ pod: pod.id, name: pod.name, event: 'pulling' })
        this.c.logger.info({ pod: pod.name, id: pod.id, uri: pod.uri }, 'pulling pod weights')
        const signal = AbortSignal.any([this.abort.signal, AbortSignal.timeout(this.o.pullTimeoutMs)])
        // an LLM pod is one GGUF file; an image pod is a folder, its URI a manifest of files with their sha256
        entry = pod.kind === 'image'
          ? await this.c.cache.pullFolder(pod.uri, { id: pod.id, name: pod.name, signal, maxBytes: this.o.maxPullBytes })
          : await this.c.cache.pull(pod.uri, { sha256: pod.id, name: pod.name, kind: 'llm', signal, maxBytes: this.o.maxPullBytes })
      }
      if (this.abort.signal.aborted) return
      await this.c.budget?.reserve(entry)
      let info: ModelInfo
      let image: ImageModel | undefined
      try {
        if (pod.kind === 'image' && images !== undefined) {
          image = await images().load(entry.path, { id: pod.id, name: pod.name })
          info = image.info
        } else {
          info = await this.c.llm().load(entry.path, { id: pod.id, name: pod.name })
        }
      } catch (e) {
        this.c.budget?.release(pod.id)
        throw e
      }
      if (image !== undefined) {
        if (this.abort.signal.aborted) { await image.dispose(); this.c.budget?.release(pod.id); return }
        this.loaded.set(pod.id, { info, lastUsed: this.o.now(), running: 0, image })
        const ms = Date.now() - t0
        this.record({ pod: pod.id, name: pod.name, event: 'loaded', ms })
        this.c.logger.info({ pod: pod.name, id: pod.id, kind: 'image', ms }, 'pod loaded')
        this.c.onChange?.()
        return
      }
      if (this.o.warmUp && !this.abort.signal.aborted) {
        // a chat turn: the first chat request also sets up the model's chat template (slow once)
        await this.c.llm().generate({ modelId: pod.id, input: [{ role: 'user', content: 'hi' }], sampling: { seed: 0, temperature: 0, topP: 1, topK: 0, maxTokens: 1, stop: [] } }, { signal: this.abort.signal }).catch(() => {})
      }
      if (this.abort.signal.aborted) { await this.c.llm().unload(pod.id); this.c.budget?.release(pod.id); return }
      this.loaded.set(pod.id, { info, lastUsed: this.o.now(), running: 0 })
      const ms = Date.now() - t0
      this.record({ pod: pod.id, name: pod.name, event: 'loaded', ms })
      this.c.logger.info({ pod: pod.name, id: pod.id, ms }, 'pod loaded')
      this.c.onChange?.()
    } catch (e) {
      const reason = (e as Error).message.split('\n')[0]!.slice(0, 300)
      this.failed.set(pod.id, { reason, at: this.o.now() })
      this.record({ pod: pod.id, name: pod.name, event: 'failed', reason })
      this.c.logger.warn({ pod: pod.name, id: pod.id, code: (e as HeuristError).code, reason }, 'cannot host pod')
    }
  }

  private async unload (id: string, why: string): Promise<void> {
    const l = this.loaded.get(id)
    if (l === undefined) return
    this.loaded.delete(id)
    this.c.onChange?.()
    if (l.image !== undefined) await l.image.dispose().catch(() => {})
    else await this.c.llm().unload(id).catch(() => {})
    this.c.budget?.release(id)
    this.record({ pod: id, name: l.info.name, event: 'unloaded', reason: why })
    this.c.logger.info({ pod: l.info.name, id, why }, 'pod unloaded')
  }

  /**
   * The job executor: jobs for a loaded pod run here (and count as use); anything else goes
   * to `base` (the miner's fixed models), or is refused when there is none.
   */
  executor (base: JobExecutor | null): JobExecutor {
    return {
      models: () => [...(base?.models() ?? []), ...this.models()],
      execute: async (job, o) => {
        const l = this.loaded.get(job.modelId)
        if (l === undefined) {
          if (base === null) throw new HeuristError('P2P_UNKNOWN_MODEL', 'model not loaded here')
          return await base.execute(job, o)
        }
        if (job.kind !== l.info.kind) throw new HeuristError('P2P_UNSUPPORTED_KIND', `this pod is ${l.info.kind === 'llm' ? 'a language model' : 'an image model'}`)
        l.running++
        l.lastUsed = this.o.now()
        try {
          if (job.kind === 'image') {
            const g = await l.image!.generate({ modelId: job.modelId, ...job.image }, { signal: o.signal, onProgress: o.onProgress })
            return { kind: 'image', result: { png: g.png, pixelSha256: g.pixelSha256, width: g.width, height: g.height, ms: g.ms, threads: g.threads, optimizationLevel: g.optimizationLevel } }
          }
          const result = await this.c.llm().generate({ modelId: job.modelId, input: job.input, sampling: job.sampling, ...(job.constraint === undefined ? {} : { constraint: job.constraint }), ...(job.logprobs === undefined ? {} : { logprobs: job.logprobs }) }, { signal: o.signal, onToken: o.onToken })
          return { kind: 'llm', result }
        } finally {
          l.running--
          l.lastUsed = this.o.now()
        }
      }
    }
  }
}
