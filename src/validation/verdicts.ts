import { verifyTypedData, getAddress, type Wallet } from 'ethers'
import { z } from 'zod'
import { HeuristError } from '../core/errors.js'
import { VerdictTypes, type Verdict } from '../core/typed-data.js'
import { sortBySigner } from '../chain/index.js'
import { receiptDomain, signedReceiptSchema, type ReceiptDomainOptions, type SignedReceipt } from '../p2p/index.js'

/**
 * Verdicts: a validator's EIP-712 statement on one receipt (`receiptHash` = the receipt's
 * digest under Slashing's domain), gossiped with the receipt itself on the judged miner's shard
 * of `heurist/1/verdicts/<shard>` (verdictTopic in p2p/messages.ts),
 * so any validator can re-check it and any quorum can be turned into slashing evidence.
 * A statistical verdict (the LLM window test) carries its window: the other receipts of the
 * same miner it was decided over, so others re-check exactly the same jobs.
 */

/** Reason codes (uint8 on chain). 0 = passed. */
export const REASON = {
  pass: 0,
  outsideSupport: 1,
  truncated: 2,
  unlikelyText: 3,
  tooLikelyText: 4,
  imageMismatch: 5,
  /** The signed text is not what the signed token ids give (see output-check.ts). */
  inconsistentOutput: 6,
  /** Embedding vectors far (cosine) from the validator's own for the same inputs (embedding-check.ts). */
  embeddingMismatch: 7
} as const
export type ReasonName = keyof typeof REASON

export function reasonName (code: number): ReasonName | 'unknown' {
  return (Object.entries(REASON).find(([, v]) => v === code)?.[0] as ReasonName | undefined) ?? 'unknown'
}

/** A window is at most this many receipts (the LLM check's default window). */
export const MAX_WINDOW = 32
export const MAX_VERDICT_BYTES = 64 * 1024

const hex32 = z.string().regex(/^0x[0-9a-f]{64}$/)
const address = z.string().regex(/^0x[0-9a-fA-F]{40}$/)

export const verdictMessageSchema = z.object({
  v: z.literal(1),
  type: z.literal('verdict'),
  verdict: z.object({ receiptHash: hex32, validator: address, pass: z.boolean(), reason: z.number().int().min(0).max(255) }).strict(),
  signature: z.string().regex(/^0x[0-9a-fA-F]{130}$/),
  /** The receipt judged. */
  signed: signedReceiptSchema,
  /** For window verdicts: the window's receipts, oldest first, the judged one last. */
  window: z.array(signedReceiptSchema).max(MAX_WINDOW).optional(),
  chainId: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  verifyingContract: address
}).strict()
export type VerdictMessage = z.infer<typeof verdictMessageSchema>

export async function signVerdictWith (wallet: Wallet, domain: ReceiptDomainOptions, v: Verdict): Promise<string> {
  return await wallet.signTypedData(receiptDomain(domain), VerdictTypes, v)
}

/** The verdict's signer, or null when the signature does not parse. */
export function verdictSigner (v: Verdict, signature: string, domain: ReceiptDomainOptions): string | null {
  try {
    return verifyTypedData(receiptDomain(domain), VerdictTypes, v, signature)
  } catch {
    return null
  }
}

export async function buildVerdictMessage (wallet: Wallet, domain: ReceiptDomainOptions, signed: SignedReceipt, receiptHash: string, pass: boolean, reason: number, window?: SignedReceipt[]): Promise<VerdictMessage> {
  const verdict: Verdict = { receiptHash, validator: getAddress(wallet.address), pass, reason }
  return {
    v: 1,
    type: 'verdict',
    verdict,
    signature: await signVerdictWith(wallet, domain, verdict),
    signed,
    ...(window === undefined ? {} : { window }),
    chainId: Number(domain.chainId),
    verifyingContract: domain.verifyingContract
  }
}

/**
 * Failing verdicts collected per receipt, weighed by each validator's stake. A receipt has a
 * quorum when its distinct signers hold at least 2/3 of the active validator stake (the rule
 * `NodeRegistry.isQuorum` applies on chain). Verdicts are kept only for receipts that fail.
 */
export class QuorumBook {
  private readonly byReceipt = new Map<string, { signed: SignedReceipt, verdicts: Map<string, { verdict: Verdict, signature: string }> }>()
  /** Receipts remembered at most; the oldest are dropped first (a bound on memory under spam). */
  constructor (private readonly maxReceipts = 10_000) {}

  add (m: VerdictMessage): void {
    if (m.verdict.pass) return
    let e = this.byReceipt.get(m.verdict.receiptHash)
    if (e === undefined) {
      if (this.byReceipt.size >= this.maxReceipts) {
        const oldest = this.byReceipt.keys().next().value
        if (oldest !== undefined) this.byReceipt.delete(oldest)
      }
      e = { signed: m.signed, verdicts: new Map() }
      this.byReceipt.set(m.verdict.receiptHash, e)
    }
    e.verdicts.set(getAddress(m.verdict.validator), { verdict: m.verdict, signature: m.signature })
  }

  signers (receiptHash: string): string[] {
    return [...(this.byReceipt.get(receiptHash)?.verdicts.keys() ?? [])]
  }

  /** Sum of the signers' stake ≥ 2/3 of the total. */
  async hasQuorum (receiptHash: string, stakeOf: (validator: string) => Promise<bigint>, totalStake: () => Promise<bigint>): Promise<boolean> {
    const total = await totalStake()
    if (total === 0n) return false
    let sum = 0n
    for (const v of this.signers(receiptHash)) sum += await stakeOf(v)
    return sum * 3n >= total * 2n
  }

  /** The evidence `Slashing.slash` takes: the receipt and its verdicts sorted by validator address. */
  evidence (receiptHash: string): { signed: SignedReceipt, verdicts: Verdict[], signatures: string[] } {
    const e = this.byReceipt.get(receiptHash)
    if (e === undefined) throw new HeuristError('VALIDATION_NO_VERDICTS', `no failing verdicts on ${receiptHash}`)
    const sorted = sortBySigner([...e.verdicts.values()], s => s.verdict.validator)
    return { signed: e.signed, verdicts: sorted.map(s => s.verdict), signatures: sorted.map(s => s.signature) }
  }
}
