import type { Wallet } from 'ethers'
import { countersign, receiptHash, type ReceiptDomainOptions, type ReceiptMessage, type RunJobResult } from '../p2p/index.js'
import type { CompletedJob } from './types.js'

/**
 * The receipt gossip message for a job this gateway asked for and paid: the miner's receipt
 * and the gateway's countersignature over (receipt hash, the units it billed, as billing.ts
 * measured them). Points are meant to come from these units, never from the miner's own claim.
 */
export function countersignedReceipt (job: CompletedJob, r: RunJobResult, wallet: Wallet, domain: ReceiptDomainOptions): ReceiptMessage {
  const units = job.computeUnits
  return {
    v: 1,
    type: 'receipt',
    signed: r.receipt,
    chainId: Number(domain.chainId),
    verifyingContract: domain.verifyingContract,
    measured: { units: units.toString(), signature: countersign(wallet, receiptHash(r.receipt, domain), units) }
  }
}
