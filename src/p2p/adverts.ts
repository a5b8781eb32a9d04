import { availableParallelism, totalmem } from 'node:os'
import type { Logger } from '../core/logger.js'
import type { ModelInfo } from '../inference/types.js'
import { PROTOCOL_VERSION, TOPICS, type Advert, type Hardware } from './messages.js'
import type { HeuristNode } from './node.js'
import { advertOrder } from './reachability.js'
import { modelWeightGib } from '../economics/index.js'

/**
 * Capacity adverts: every `intervalMs` the miner publishes what it can do on
 * `heurist/1/capacity`. Each advert lives `ttlMs` (three intervals, so one lost advert does
 * not drop a miner from routing).
 */
export interface AdvertiserOptions {
  /** Default 5000 ms. */
  intervalMs: number
  /** Default 3 × intervalMs. */
  ttlMs?: number
  /** What the advert says; called for each advert so queue depth and speed are current. */
  describe: () => AdvertContent
}

export interface AdvertContent {
  hardware: Hardware
  models: ModelInfo[]
  queueDepth: number
  maxJobs: number
  tokensPerSecond: number
  imagesPerSecond: number
  /** Wei per compute unit (economics/compute-units). */
  price: bigint
  version: string
  paid: boolean
  /**
   * Per-GPU capacity (several GPUs under one identity): each GPU's budget left and the models
   * placed on it. When given, it replaces `hardware.gpus`.
   */
  gpus?: GpuCapacity[]
}

export interface GpuCapacity { index: number, name: string, vramTotal: number, vramFree: number, budgetFree: number, modelIds: string[] }

/** The advert's GPU list from per-GPU capacity: placed models as indices into the advert's models (bounded as the schema is). */
export function advertGpus (gpus: readonly GpuCapacity[], advertised: ReadonlyArray<{ id: string }>): Hardware['gpus'] {
  const at = new Map(advertised.map((m, i) => [m.id, i]))
  return gpus.slice(0, 16).map(g => ({
    name: g.name.slice(0, 128),
    vramTotal: Math.max(0, Math.floor(g.vramTotal)),
    vramFree: Math.max(0, Math.floor(g.vramFree)),
    index: Math.min(255, Math.max(0, g.index)),
    budgetFree: Math.max(0, Math.min(Math.floor(g.vramTotal), Math.floor(g.budgetFree))),
    models: [...new Set(g.modelIds.map(id => at.get(id)).filter((i): i is number => i !== undefined))].slice(0, 32)
  }))
}

/** Hardware from the OS, for when no GPU probe is available (CPU-only machines, tests). */
export function basicHardware (): Hardware {
  return { gpus: [], cpuCores: availableParallelism(), ramBytes: totalmem() }
}

export function buildAdvert (node: HeuristNode, c: AdvertContent, seq: number, ttlMs: number): Advert {
  const models = c.models.slice(0, 32)
  return {
    v: PROTOCOL_VERSION,
    type: 'capacity',
    operator: node.address,
    seq,
    ts: Date.now(),
    ttlMs,
    hardware: c.gpus === undefined || c.gpus.length === 0 ? c.hardware : { ...c.hardware, gpus: advertGpus(c.gpus, models) },
    models: models.map(m => ({ id: m.id, name: m.name.slice(0, 128), kind: m.kind, contextSize: m.contextSize, weightGib: Number(modelWeightGib(m.memoryBytes)) })),
    queueDepth: c.queueDepth,
    maxJobs: c.maxJobs,
    tokensPerSecond: Math.min(1e7, Math.max(0, c.tokensPerSecond)),
    imagesPerSecond: Math.min(1e5, Math.max(0, c.imagesPerSecond)),
    price: c.price.toString(),
    version: c.version.slice(0, 32),
    // public first, then relayed (a miner behind NAT), then private: dialers try them in turn
    addrs: advertOrder(node.multiaddrs()).slice(0, 16),
    paid: c.paid
  }
}

export class Advertiser {
  private timer: NodeJS.Timeout | null = null
  private seq = 0
  readonly intervalMs: number
  readonly ttlMs: number

  constructor (private readonly node: HeuristNode, private readonly options: AdvertiserOptions, private readonly logger: Logger) {
    this.intervalMs = options.intervalMs
    this.ttlMs = options.ttlMs ?? options.intervalMs * 3
  }

  private last = 0
  private readonly onSubscription = (evt: CustomEvent<{ subscriptions: Array<{ topic: string, subscribe: boolean }> }>): void => {
    // a peer that just joined hears us at once instead of after up to one interval;
    // never faster than one advert a second (validators reject floods)
    if (evt.detail.subscriptions.some(s => s.subscribe && s.topic === TOPICS.capacity) && Date.now() - this.last > 1000) this.tick()
  }

  private readonly tick = (): void => { this.advertise().catch(err => { this.logger.warn({ err }, 'cannot publish capacity advert') }) }

  start (): void {
    if (this.timer !== null) return
    this.tick()
    // skip a tick that would follow a subscription-triggered advert too closely (validators rate-limit)
    this.timer = setInterval(() => { if (Date.now() - this.last >= this.intervalMs / 2) this.tick() }, this.intervalMs)
    this.node.pubsub.addEventListener('subscription-change', this.onSubscription as never)
  }

  private soon: NodeJS.Timeout | null = null

  /**
   * For a change peers should hear at once (a model loaded or unloaded): publishes an advert
   * now, or as soon as receivers accept one (they reject two from one miner within 500 ms).
   */
  advertiseSoon (minGapMs = 600): void {
    if (this.soon !== null) return
    this.soon = setTimeout(() => { this.soon = null; this.tick() }, Math.max(0, this.last + minGapMs - Date.now()))
  }

  /** Publishes one advert now. */
  async advertise (): Promise<void> {
    this.last = Date.now()
    // seq from the clock, so a restarted miner's adverts are newer than its old ones
    this.seq = Math.max(this.seq + 1, Date.now())
    await this.node.publishAdvert(buildAdvert(this.node, this.options.describe(), this.seq, this.ttlMs))
  }

  stop (): void {
    if (this.soon !== null) clearTimeout(this.soon)
    this.soon = null
    if (this.timer !== null) {
      clearInterval(this.timer)
      try { this.node.pubsub.removeEventListener('subscription-change', this.onSubscription as never) } catch { /* node already stopped */ }
    }
    this.timer = null
  }
}
