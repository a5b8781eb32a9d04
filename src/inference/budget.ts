/**
 * Memory budgets: which models fit on which device, decided before anything loads.
 *
 * Pure functions only. The miner measures free RAM and VRAM at start (runtime.ts), describes
 * each model's need (weights, the KV cache its context and parallelism take, the working memory
 * its concurrent jobs take), and `planPlacement` puts each model on a device whose budget holds
 * it, or refuses it with a reason a person can act on. The plan then decides what loads, what
 * is advertised, and which jobs are refused before they start.
 */

const GiB = 1024 ** 3

/** What one model needs, in the terms the planner adds up. */
export interface ModelDemand {
  id: string
  name: string
  kind: 'llm' | 'image'
  /** Bytes of the weights on disk (GGUF file, or every file of an ONNX folder incl. external data). */
  weightsBytes: number
  /** LLM: KV-cache bytes per token per sequence (2 · layers · kv width · 2 bytes, f16); image: 0. */
  kvBytesPerToken: number
  /** LLM: context tokens per sequence; image: 0. */
  contextSize: number
  /** Jobs the model runs at once (LLM sequences, concurrent image jobs); at least 1. */
  parallel: number
  /** Working memory one running job takes beyond the weights (image: activations at the planned size). */
  jobBytes: number
  /** Image: `jobBytes` over `imageJobBytes` at the planned side (the model's width relative to SD 1.5); absent = 1. */
  jobScale?: number
  /** Devices the model may run on (`cpu`, `gpu0`, …); empty = any. */
  devices?: string[]
}

/** One device's memory for models: free bytes measured at start, less what is kept back. */
export interface DeviceBudget {
  /** `cpu` for RAM, `gpu0`, `gpu1`, … for each GPU's VRAM. */
  device: string
  freeBytes: number
}

export interface Placement { id: string, name: string, device: string, needBytes: number }
export interface Refusal { id: string, name: string, needBytes: number, reason: string }

export interface PlacementPlan {
  placed: Placement[]
  refused: Refusal[]
  /** Bytes left on each device after the placed models. */
  left: Record<string, number>
}

/** Allocator and runtime overhead on top of what the tensors take (llama.cpp's compute buffers, onnxruntime's arenas). */
export const OVERHEAD_FRACTION = 0.1

/** Bytes a model needs with its context and parallelism: (weights + KV · context · parallel + job · parallel) · 1.1. */
export function modelNeedBytes (d: ModelDemand): number {
  const parallel = Math.max(1, Math.floor(d.parallel))
  const kv = Math.max(0, d.kvBytesPerToken) * Math.max(0, d.contextSize) * parallel
  return Math.ceil((Math.max(0, d.weightsBytes) + kv + Math.max(0, d.jobBytes) * parallel) * (1 + OVERHEAD_FRACTION))
}

export function formatGiB (bytes: number): string {
  if (bytes > 0 && bytes < GiB / 100) return `${(bytes / 1024 ** 2).toFixed(2)} MiB`
  return `${(bytes / GiB).toFixed(2)} GiB`
}

/** The parts of a need, for a refusal a person can act on. */
function needParts (d: ModelDemand): string {
  const parts = [`weights ${formatGiB(d.weightsBytes)}`]
  if (d.kvBytesPerToken > 0 && d.contextSize > 0) parts.push(`KV cache ${formatGiB(d.kvBytesPerToken * d.contextSize * Math.max(1, d.parallel))} for ${d.contextSize} tokens × ${Math.max(1, d.parallel)} sequences`)
  if (d.jobBytes > 0) parts.push(`${formatGiB(d.jobBytes * Math.max(1, d.parallel))} working memory for ${Math.max(1, d.parallel)} jobs`)
  return `${parts.join(' + ')} + ${Math.round(OVERHEAD_FRACTION * 100)} %`
}

/**
 * Places models on devices, in the order given (the operator's order is the priority): each
 * goes to the allowed device with the most room left that holds it (so models spread over
 * GPUs), and one that fits nowhere is refused, saying what it needs and the most room there is.
 */
export function planPlacement (models: readonly ModelDemand[], devices: readonly DeviceBudget[]): PlacementPlan {
  const left: Record<string, number> = {}
  for (const d of devices) left[d.device] = Math.max(0, Math.floor(d.freeBytes))
  const placed: Placement[] = []
  const refused: Refusal[] = []
  for (const m of models) {
    const need = modelNeedBytes(m)
    const allowed = devices.filter(d => m.devices === undefined || m.devices.length === 0 || m.devices.includes(d.device))
    if (allowed.length === 0) {
      refused.push({ id: m.id, name: m.name, needBytes: need, reason: `${m.name} may run on ${(m.devices ?? []).join(', ')}, and this miner has none of them (has ${devices.map(d => d.device).join(', ') || 'no devices'})` })
      continue
    }
    let best: string | null = null
    for (const d of allowed) {
      const room = left[d.device] ?? 0
      if (room >= need && (best === null || room > (left[best] ?? 0))) best = d.device
    }
    if (best === null) {
      const roomiest = allowed.reduce((a, b) => ((left[b.device] ?? 0) > (left[a.device] ?? 0) ? b : a))
      const room = left[roomiest.device] ?? 0
      refused.push({ id: m.id, name: m.name, needBytes: need, reason: `${m.name} needs ${formatGiB(need)} (${needParts(m)}); the most room left is ${formatGiB(room)} on ${roomiest.device} (of ${formatGiB(roomiest.freeBytes)} free at start)` })
      continue
    }
    left[best] = (left[best] ?? 0) - need
    placed.push({ id: m.id, name: m.name, device: best, needBytes: need })
  }
  return { placed, refused, left }
}

/** Memory kept back from a device's free bytes for the OS, the runtime and other programs. */
export function usableBytes (freeBytes: number, reserveBytes: number): number {
  return Math.max(0, Math.floor(freeBytes) - Math.max(0, reserveBytes))
}

/**
 * Working memory of one image job, estimated for an SD 1.5-shaped UNet run in fp32 by
 * onnxruntime (which materializes attention): the self-attention scores of the largest block,
 * 8 heads × (latent pixels)² × 4 bytes, plus 64 activations of 320 channels per latent pixel,
 * times the batch (2 with guidance). 512×512 with guidance: 1.6 GiB; 1024×1024: 18.5 GiB; 64×64: 10 MiB.
 */
export function imageJobBytes (width: number, height: number, guided = true): number {
  const latent = Math.ceil(width / 8) * Math.ceil(height / 8)
  const batch = guided ? 2 : 1
  return batch * (8 * latent * latent * 4 + 64 * 320 * latent * 4)
}

/** KV-cache bytes per token per sequence of a GGUF (f16 K and V for every layer). */
export function kvBytesPerToken (layers: number, embedding: number, heads: number, headsKv: number): number {
  const kvWidth = heads > 0 ? embedding / heads * (headsKv > 0 ? headsKv : heads) : embedding
  return 2 * layers * kvWidth * 2
}

/** SD 1.5's ONNX export in fp16 (text encoder, UNet, VAE decoder): the size `imageJobBytes` is estimated for. */
export const SD15_FP16_BYTES = 2.1e9

/**
 * How an image model's working memory compares with SD 1.5's, from its weights: a smaller
 * export (fewer channels, or half precision) needs proportionally less, never more than SD 1.5
 * times its size ratio; between 1e-6 and 4 (an SDXL-sized fp32 export).
 */
export function imageJobScale (weightsBytes: number): number {
  return Math.min(4, Math.max(1e-6, weightsBytes / SD15_FP16_BYTES))
}
