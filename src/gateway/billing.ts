import type { ChatMessage, ImageRequest } from '../inference/types.js'
import { imageComputeUnits, llmComputeUnits, promptUnits } from '../economics/index.js'

/**
 * What a job costs, from what the gateway measured itself (DESIGN.md §11): the request it
 * sent, the output it delivered (tokens it counted; the image's size and steps), the model
 * weight from the advert it checked, and its own clock. Reservation and charge are in the same
 * unit (economics/compute-units), so a charge never exceeds its reservation. The miner's
 * receipt is a claim: it may ask for less than was measured, never more; a receipt that claims
 * more units, or more time than the gateway saw pass, is not paid at all. Pure.
 */
export type BilledJob =
  | { kind: 'llm', input: string | ChatMessage[], maxTokens: number }
  | { kind: 'image', image: Pick<ImageRequest, 'width' | 'height' | 'steps'> }

/** The most units the job can reach: every allowed output token. */
export function maxUnits (job: BilledJob, weight: bigint): bigint {
  return job.kind === 'llm' ? llmComputeUnits(weight, promptUnits(job.input), job.maxTokens) : imageComputeUnits(weight, job.image)
}

/** The reservation, in wei, for running `job` on a miner with this weight and price. */
export function reservationFor (job: BilledJob, weight: bigint, pricePerUnit: bigint): bigint {
  return maxUnits(job, weight) * pricePerUnit
}

/** What the miner's signed receipt claims: units, and its start and end in unix seconds when it has them. */
export interface ReceiptClaim {
  units: bigint
  startedAt?: bigint
  endedAt?: bigint
}

export interface BillInput {
  job: BilledJob
  /** The serving miner's model weight, from its advert (clamped). */
  weight: bigint
  pricePerUnit: bigint
  /** Wei reserved for this request: the cost never exceeds it. */
  reserved: bigint
  /** Output tokens delivered to the client (LLM); ignored for images. */
  deliveredTokens: number
  /** The gateway's clock around the attempt that produced the result, ms since epoch. */
  startedAt: number
  endedAt: number
  /** The receipt's claim; null when the backend has no receipt (local engines). */
  claim: ReceiptClaim | null
}

export interface Bill {
  /** Units the gateway measured (what it will countersign). */
  measuredUnits: bigint
  /** Units paid: the smaller of the measured and the claimed ones; 0 when the claim is refused. */
  units: bigint
  /** Wei charged to the key and added to the miner's voucher. */
  cost: bigint
  /** The attempt's duration on the gateway's clock. */
  ms: number
  /** Output tokens counted (LLM), at most max_tokens; 0 for images. */
  outputTokens: number
  /** Why the receipt's claim was refused (then nothing is paid); null when it was not. */
  overclaim: string | null
}

/** Bills one finished job. */
export function billJob (b: BillInput): Bill {
  const outputTokens = b.job.kind === 'llm' ? Math.max(0, Math.min(Math.floor(b.deliveredTokens), b.job.maxTokens)) : 0
  const measuredUnits = b.job.kind === 'llm' ? llmComputeUnits(b.weight, promptUnits(b.job.input), outputTokens) : imageComputeUnits(b.weight, b.job.image)
  const ms = Math.max(0, b.endedAt - b.startedAt)
  let overclaim: string | null = null
  if (b.claim !== null) {
    const claimedSeconds = b.claim.endedAt !== undefined && b.claim.startedAt !== undefined ? b.claim.endedAt - b.claim.startedAt : 0n
    // receipts carry whole seconds: allow the two roundings and nothing more
    const seenSeconds = BigInt(Math.ceil(ms / 1000)) + 1n
    if (b.claim.units > measuredUnits) overclaim = `the receipt claims ${b.claim.units} compute units; the gateway measured ${measuredUnits}`
    else if (claimedSeconds > seenSeconds) overclaim = `the receipt claims ${claimedSeconds} s of work; the gateway saw ${ms} ms pass`
  }
  const units = overclaim !== null ? 0n : b.claim !== null && b.claim.units < measuredUnits ? b.claim.units : measuredUnits
  const price = units * b.pricePerUnit
  const cost = price > b.reserved ? b.reserved : price
  return { measuredUnits, units, cost: cost < 0n ? 0n : cost, ms, outputTokens, overclaim }
}
