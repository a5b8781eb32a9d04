/**
 * EIP-712 signing and digests for the shared types (src/core/typed-data.ts), each under
 * the domain of the contract that checks it: vouchers → Payments, receipts and verdicts →
 * Slashing, reward roots → Emission, registration consents → NodeRegistry. A signature made for another chain id or another
 * contract address recovers to a different signer there and is rejected.
 */
import { TypedDataEncoder, type Signer } from 'ethers'
import { standardRewardTree } from './merkle.js'
import {
  heuristDomain, ReceiptTypes, VerdictTypes, VoucherTypes, RewardRootTypes, RegistrationTypes,
  type Receipt, type Verdict, type Voucher, type RewardRoot, type Registration
} from '../core/typed-data.js'
import type { Deployment } from './deployment.js'

type Where = Pick<Deployment, 'chainId' | 'contracts'>

export async function signVoucher (signer: Signer, where: Where, v: Voucher): Promise<string> {
  return await signer.signTypedData(heuristDomain(where.chainId, where.contracts.Payments), VoucherTypes, v)
}

export function voucherDigest (where: Where, v: Voucher): string {
  return TypedDataEncoder.hash(heuristDomain(where.chainId, where.contracts.Payments), VoucherTypes, v)
}

export async function signReceipt (signer: Signer, where: Where, r: Receipt): Promise<string> {
  return await signer.signTypedData(heuristDomain(where.chainId, where.contracts.Slashing), ReceiptTypes, r)
}

/** The receipt's EIP-712 digest under Slashing's domain: the `receiptHash` verdicts sign. */
export function receiptDigest (where: Where, r: Receipt): string {
  return TypedDataEncoder.hash(heuristDomain(where.chainId, where.contracts.Slashing), ReceiptTypes, r)
}

export async function signVerdict (signer: Signer, where: Where, v: Verdict): Promise<string> {
  return await signer.signTypedData(heuristDomain(where.chainId, where.contracts.Slashing), VerdictTypes, v)
}

export async function signRewardRoot (signer: Signer, where: Where, r: RewardRoot): Promise<string> {
  return await signer.signTypedData(heuristDomain(where.chainId, where.contracts.Emission), RewardRootTypes, r)
}

/** The operator's consent to be registered owned by `r.owner` (NodeRegistry.registerWithConsent). */
export async function signRegistration (signer: Signer, where: Where, r: Registration): Promise<string> {
  return await signer.signTypedData(heuristDomain(where.chainId, where.contracts.NodeRegistry), RegistrationTypes, r)
}

export interface RewardEntry { account: string, amount: bigint }

export interface RewardClaim { account: string, amount: bigint, proof: string[] }

export interface RewardTree { root: string, total: bigint, claims: RewardClaim[] }

/**
 * The epoch's reward tree: OpenZeppelin's StandardMerkleTree over (address, uint256), the leaf
 * format `Emission.claim` checks, built by `standardRewardTree` (same root and proofs, about a
 * hundred times faster: an epoch of 100,000 miners closes in seconds). One entry per account
 * (amounts of repeats are summed).
 */
export function buildRewardTree (entries: RewardEntry[]): RewardTree {
  const sums = new Map<string, bigint>()
  for (const e of entries) sums.set(e.account, (sums.get(e.account) ?? 0n) + e.amount)
  const values = [...sums].map(([account, amount]) => ({ account, amount }))
  if (values.length === 0) return { root: '0x' + '00'.repeat(32), total: 0n, claims: [] }
  const tree = standardRewardTree(values)
  const claims: RewardClaim[] = values.map((v, i) => ({ account: v.account, amount: v.amount, proof: tree.proofs[i]! }))
  return { root: tree.root, total: values.reduce((a, v) => a + v.amount, 0n), claims }
}

/** Sorts validator signatures by signer address (strictly increasing), as the contracts require. */
export function sortBySigner<T> (items: T[], signerOf: (t: T) => string): T[] {
  return [...items].sort((a, b) => {
    const x = BigInt(signerOf(a))
    const y = BigInt(signerOf(b))
    return x < y ? -1 : x > y ? 1 : 0
  })
}
