import { HeuristError } from '../core/errors.js'
import { readGguf } from './gguf.js'
import { summarizeGguf, type CachedModel } from './cache.js'
import { formatGiB, imageJobBytes, imageJobScale, kvBytesPerToken, planPlacement, type DeviceBudget, type ModelDemand, type Placement, type Refusal } from './budget.js'

/**
 * The edge around the pure planner (budget.ts): a model's demand read from its files, and the
 * miner's running budget (fixed models at start, pods as they come and go) that reserves and
 * releases memory per model.
 */

export interface DemandSettings {
  /** LLM context tokens per sequence; 0 = the model's training context, capped at 4096 (as the engine does). */
  contextSize: number
  /** Jobs a model runs at once (mine.maxJobs). */
  parallel: number
  /** Largest image side planned for (inference.imageMaxSide); bigger jobs are refused. */
  imageMaxSide: number
  /** Devices each kind may use. */
  llmDevices: string[]
  imageDevices: string[]
}

/** A cached model's demand: GGUF header for the KV cache; the folder's bytes for an image model. */
export async function demandOf (m: Pick<CachedModel, 'id' | 'name' | 'kind' | 'path' | 'sizeBytes'>, s: DemandSettings): Promise<ModelDemand> {
  if (m.kind === 'image') {
    const jobScale = imageJobScale(m.sizeBytes)
    return { id: m.id, name: m.name, kind: 'image', weightsBytes: m.sizeBytes, kvBytesPerToken: 0, contextSize: 0, parallel: s.parallel, jobBytes: Math.ceil(imageJobBytes(s.imageMaxSide, s.imageMaxSide) * jobScale), jobScale, devices: s.imageDevices }
  }
  const g = summarizeGguf(await readGguf(m.path))
  const train = g.contextLength > 0 ? g.contextLength : 4096
  const contextSize = s.contextSize > 0 ? s.contextSize : Math.min(train, 4096)
  return { id: m.id, name: m.name, kind: 'llm', weightsBytes: g.sizeBytes, kvBytesPerToken: kvBytesPerToken(g.layers, g.embeddingLength, g.heads, g.headsKv), contextSize, parallel: s.parallel, jobBytes: 0, devices: s.llmDevices }
}

/**
 * A miner's memory, shared by its fixed models and its pods: each model reserves its need on a
 * device before it loads and releases it when unloaded. Everything it decides goes through
 * `planPlacement` against what is left.
 */
export class MemoryBudget {
  private readonly left = new Map<string, number>()
  private readonly held = new Map<string, Placement & { demand: ModelDemand }>()

  constructor (readonly devices: readonly DeviceBudget[]) {
    for (const d of devices) this.left.set(d.device, Math.max(0, Math.floor(d.freeBytes)))
  }

  /** Reserves a model's need on the device with the most room, or says why it does not fit. */
  reserve (demand: ModelDemand): { placed: Placement } | { refused: Refusal } {
    const had = this.held.get(demand.id)
    if (had !== undefined) return { placed: had }
    const plan = planPlacement([demand], this.devices.map(d => ({ device: d.device, freeBytes: this.left.get(d.device) ?? 0 })))
    const placed = plan.placed[0]
    if (placed === undefined) return { refused: plan.refused[0]! }
    this.left.set(placed.device, (this.left.get(placed.device) ?? 0) - placed.needBytes)
    this.held.set(demand.id, { ...placed, demand })
    return { placed }
  }

  /** Like `reserve`, throwing `INFERENCE_OVER_BUDGET` with the reason when it does not fit. */
  require (demand: ModelDemand): Placement {
    const r = this.reserve(demand)
    if ('refused' in r) throw new HeuristError('INFERENCE_OVER_BUDGET', r.refused.reason, { details: { model: demand.id, needBytes: r.refused.needBytes } })
    return r.placed
  }

  release (id: string): void {
    const h = this.held.get(id)
    if (h === undefined) return
    this.held.delete(id)
    this.left.set(h.device, (this.left.get(h.device) ?? 0) + h.needBytes)
  }

  placement (id: string): (Placement & { demand: ModelDemand }) | undefined { return this.held.get(id) }

  /** Bytes left per device. */
  remaining (): Record<string, number> { return Object.fromEntries(this.left) }

  /** Models placed per device. */
  byDevice (): Record<string, string[]> {
    const out: Record<string, string[]> = {}
    for (const d of this.devices) out[d.device] = []
    for (const h of this.held.values()) (out[h.device] ??= []).push(h.id)
    return out
  }
}

/**
 * Whether a job fits what its model was budgeted for, before it starts: an image job larger
 * than the planned side would take more working memory than was reserved. Returns the reason
 * to refuse, or null.
 */
export function jobOverBudget (job: { kind: 'llm' | 'embedding' } | { kind: 'image', image: { width: number, height: number, guidanceScale: number } }, demand: ModelDemand | undefined): string | null {
  if (job.kind !== 'image' || demand === undefined || demand.kind !== 'image') return null
  const need = Math.ceil(imageJobBytes(job.image.width, job.image.height, job.image.guidanceScale > 1) * (demand.jobScale ?? 1))
  if (need <= demand.jobBytes) return null
  return `a ${job.image.width}×${job.image.height} image needs ${formatGiB(need)} of working memory, over the ${formatGiB(demand.jobBytes)} this miner budgeted per job for ${demand.name} (inference.imageMaxSide)`
}
