import { availableParallelism, totalmem } from 'node:os'
import type { Logger } from '../core/logger.js'
import type { ModelInfo } from '../inference/types.js'
import { PROTOCOL_VERSION, TOPICS, type Advert, type Hardware } from './messages.js'
import type { HeuristNode } from './node.js'
import { advertOrder } from './reachability.js'
import { modelWeightGib } from '../economics/index.js'

/**
 * Capacity adverts: the miner publishes what it can do on `heurist/1/capacity` when it changes
 * (models, queue depth, slots, price, addresses, a speed moving by a quarter; checked every
 * `checkMs`, at most one a second) and at least every `intervalMs` (the heartbeat that keeps
 * it in routing tables). Each advert lives `ttlMs` (three intervals, so one lost advert does
 * not drop a miner from routing).
 */
export interface AdvertiserOptions {
  /** The heartbeat: longest time between two adverts. Default 5000 ms. */
  intervalMs: number
  /** Default 3 × intervalMs. */
  ttlMs?: number
  /** How often the content is compared with the last advert's. Default 1000 ms (adverts stay at least 1 s apart). */
  checkMs?: number
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

/** Speeds compared on a ×1.25 scale: a change of a quarter is news, jitter is not. */
function speedStep (x: number): number { return x > 0 ? Math.round(Math.log(x) / Math.log(1.25)) : -1 }

/** What makes an advert news to a gateway (the heartbeat carries the rest, e.g. free VRAM). */
export function advertKey (c: AdvertContent, addrs: string[]): string {
  return JSON.stringify([
    c.models.map(m => [m.id, m.contextSize]), c.queueDepth, c.maxJobs, c.price.toString(), c.paid, c.version,
    speedStep(c.tokensPerSecond), speedStep(c.imagesPerSecond), addrs
  ])
}

export class Advertiser {
  private timer: NodeJS.Timeout | null = null
  private seq = 0
  readonly intervalMs: number
  readonly ttlMs: number
  readonly checkMs: number
  private lastKey = ''
  /** Adverts published (by the heartbeat, by a change, on request). */
  readonly published = { heartbeat: 0, change: 0 }

  constructor (private readonly node: HeuristNode, private readonly options: AdvertiserOptions, private readonly logger: Logger) {
    this.intervalMs = options.intervalMs
    // receivers accept a TTL of at most 10 minutes (advertSchema)
    this.ttlMs = Math.min(options.ttlMs ?? options.intervalMs * 3, 10 * 60_000)
    this.checkMs = Math.max(100, Math.min(options.checkMs ?? 1000, options.intervalMs))
  }

  /** One check: an advert when the heartbeat is due, or when the content changed (at most one per checkMs). */
  private readonly check = (): void => {
    const since = Date.now() - this.last
    // (half a check early: a timer firing a little before its time must not skip a heartbeat)
    if (since >= this.intervalMs - this.checkMs / 2) { this.published.heartbeat++; this.tick(); return }
    // receivers reject two adverts of one miner within 500 ms: one a second at most
    if (since < 1000) return
    let key: string
    try { key = advertKey(this.options.describe(), this.node.multiaddrs()) } catch (err) { this.logger.warn({ err }, 'cannot describe capacity'); return }
    if (key !== this.lastKey) { this.published.change++; this.tick() }
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
    this.timer = setInterval(this.check, this.checkMs)
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
    const content = this.options.describe()
    this.lastKey = advertKey(content, this.node.multiaddrs())
    await this.node.publishAdvert(buildAdvert(this.node, content, this.seq, this.ttlMs))
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
