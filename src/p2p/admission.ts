import type { ModelInfo } from '../inference/types.js'
import { imageComputeUnits, llmComputeUnits, modelWeightGib, promptUnits } from '../economics/index.js'
import type { RequestFrame } from './messages.js'

/**
 * Which requesters a miner serves. A job is work the miner is paid for only through its
 * requester's Payments deposit (the gateway signs vouchers against it), so a requester whose
 * deposit cannot cover the job at this miner's price is refused before any work starts, with
 * a typed `rejected` frame. `mine.serveUnpaid` turns the check off for local use.
 */
export interface AdmissionRefusal {
  /**
   * P2P_NO_DEPOSIT: the deposit does not cover the job; P2P_DEPOSIT_UNKNOWN: the chain could not
   * be read; INFERENCE_OVER_BUDGET: the job needs more memory than its model was budgeted.
   */
  code: 'P2P_NO_DEPOSIT' | 'P2P_DEPOSIT_UNKNOWN' | 'INFERENCE_OVER_BUDGET'
  reason: string
}

/** The job server's hook: a refusal, or the function the server calls when the admitted job ends. */
export type AdmitJob = (requester: string, job: RequestFrame, model: ModelInfo) => Promise<AdmissionRefusal | (() => void)>

export interface DepositAdmissionOptions {
  /** The requester's Payments deposit in wei (a chain read; chain/eligibility.ts's depositReader caches it). */
  depositOf: (address: string) => Promise<bigint>
  /** This miner's price per compute unit, in wei (what it advertises). */
  pricePerUnit: () => bigint
}

/** The most a job can cost at `pricePerUnit`: its compute units with every allowed output token. */
export function jobCostBound (job: RequestFrame, model: ModelInfo, pricePerUnit: bigint): bigint {
  const weight = modelWeightGib(model.memoryBytes)
  const units = job.kind === 'llm' ? llmComputeUnits(weight, promptUnits(job.input), job.sampling.maxTokens) : job.kind === 'embedding' ? llmComputeUnits(weight, promptUnits(job.input.join('\n')), 0) : imageComputeUnits(weight, job.image)
  return units * pricePerUnit
}

/**
 * Admits a requester whose deposit is above zero and covers this job's cost bound plus the
 * bounds of its jobs already running here: concurrent jobs cannot together outrun the deposit.
 */
export function depositAdmission (o: DepositAdmissionOptions): AdmitJob {
  // cost bounds of admitted jobs not yet ended, per requester (bounded by the server's slots)
  const held = new Map<string, bigint>()
  return async (requester, job, model) => {
    let deposit: bigint
    try {
      deposit = await o.depositOf(requester)
    } catch (e) {
      return { code: 'P2P_DEPOSIT_UNKNOWN', reason: `cannot read the requester's Payments deposit: ${(e as Error).message.slice(0, 200)}` }
    }
    const key = requester.toLowerCase()
    const need = jobCostBound(job, model, o.pricePerUnit())
    const running = held.get(key) ?? 0n
    if (deposit === 0n || deposit < running + need) {
      return { code: 'P2P_NO_DEPOSIT', reason: `the requester's Payments deposit (${deposit} wei) does not cover this job (up to ${need} wei${running > 0n ? `, beside ${running} wei of its jobs running here` : ''})` }
    }
    held.set(key, running + need)
    let released = false
    return () => {
      if (released) return
      released = true
      const left = (held.get(key) ?? 0n) - need
      if (left > 0n) held.set(key, left)
      else held.delete(key)
    }
  }
}

/**
 * Refuses, before it starts, a job that needs more memory than its model was budgeted
 * (inference/memory.ts's `jobOverBudget`): `reasonFor` returns why, or null to admit.
 */
export function budgetAdmission (reasonFor: (job: RequestFrame, model: ModelInfo) => string | null): AdmitJob {
  return async (_requester, job, model) => {
    const reason = reasonFor(job, model)
    if (reason === null) return () => {}
    return { code: 'INFERENCE_OVER_BUDGET', reason }
  }
}

/** Several admission checks in order: the first refusal wins, and what earlier checks admitted is released. */
export function allAdmissions (...admits: AdmitJob[]): AdmitJob {
  return async (requester, job, model) => {
    const releases: Array<() => void> = []
    for (const admit of admits) {
      const r = await admit(requester, job, model)
      if (typeof r !== 'function') {
        for (const release of releases) release()
        return r
      }
      releases.push(r)
    }
    return () => { for (const release of releases) release() }
  }
}
