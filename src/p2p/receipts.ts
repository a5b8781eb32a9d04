import { createHash } from 'node:crypto'
import { AbiCoder, TypedDataEncoder, keccak256, recoverAddress, verifyTypedData, ZeroAddress, getAddress, type Wallet } from 'ethers'
import { ReceiptTypes, heuristDomain, type Eip712Domain, type Receipt } from '../core/typed-data.js'
import type { ReceiptWire, SignedReceipt } from './messages.js'

/**
 * Receipts: a miner's EIP-712 signed statement that it ran one job. The domain comes from the
 * chain deployment (verifying contract = Slashing); without a chain it is chain id 0 and the
 * zero address, and the miner runs unpaid.
 */
export interface ReceiptDomainOptions {
  chainId: number | bigint
  verifyingContract: string
}

export const unpaidReceiptDomain: ReceiptDomainOptions = { chainId: 0, verifyingContract: ZeroAddress }

export function receiptDomain (d: ReceiptDomainOptions = unpaidReceiptDomain): Eip712Domain {
  return heuristDomain(d.chainId, d.verifyingContract)
}

/** sha256 of bytes or a UTF-8 string, as 0x-hex (a bytes32). */
export function sha256Hex (data: Uint8Array | string): string {
  return '0x' + createHash('sha256').update(data).digest('hex')
}

/** JSON with sorted object keys, so the same value always hashes the same. */
export function canonicalJson (value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => {
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
      return Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0))
    }
    return typeof v === 'bigint' ? v.toString() : v
  })
}

export function hashJson (value: unknown): string {
  return sha256Hex(canonicalJson(value))
}

export function receiptToWire (r: Receipt): ReceiptWire {
  return {
    jobId: r.jobId.toLowerCase(),
    requester: getAddress(r.requester),
    miner: getAddress(r.miner),
    modelId: r.modelId.toLowerCase(),
    pool: r.pool,
    inputHash: r.inputHash.toLowerCase(),
    outputHash: r.outputHash.toLowerCase(),
    paramsHash: r.paramsHash.toLowerCase(),
    computeUnits: r.computeUnits.toString(),
    startedAt: r.startedAt.toString(),
    endedAt: r.endedAt.toString()
  }
}

export function receiptFromWire (w: ReceiptWire): Receipt {
  return { ...w, computeUnits: BigInt(w.computeUnits), startedAt: BigInt(w.startedAt), endedAt: BigInt(w.endedAt) }
}

export async function signReceipt (wallet: Wallet, receipt: Receipt, domain?: ReceiptDomainOptions): Promise<SignedReceipt> {
  const signature = await wallet.signTypedData(receiptDomain(domain), ReceiptTypes, receipt)
  return { receipt: receiptToWire(receipt), signature }
}

/** The address that signed the receipt, or null when the signature does not parse. */
export function receiptSigner (signed: SignedReceipt, domain?: ReceiptDomainOptions): string | null {
  try {
    return verifyTypedData(receiptDomain(domain), ReceiptTypes, receiptFromWire(signed.receipt), signed.signature)
  } catch {
    return null
  }
}

/** True when the receipt is signed by its own `miner` (and, if given, that miner is `expectedMiner`). */
export function verifyReceipt (signed: SignedReceipt, domain?: ReceiptDomainOptions, expectedMiner?: string): boolean {
  const signer = receiptSigner(signed, domain)
  if (signer === null) return false
  if (signer.toLowerCase() !== signed.receipt.miner.toLowerCase()) return false
  return expectedMiner === undefined || signer.toLowerCase() === expectedMiner.toLowerCase()
}

/** The receipt's EIP-712 digest (what verdicts name as `receiptHash`). */
export function receiptHash (signed: SignedReceipt, domain?: ReceiptDomainOptions): string {
  return TypedDataEncoder.hash(receiptDomain(domain), ReceiptTypes, receiptFromWire(signed.receipt))
}

/**
 * What a requester signs to countersign a receipt with the units it measured: the receipt's
 * EIP-712 hash (which binds chain and contract) and the units, under a fixed tag.
 */
export function countersignDigest (receiptHash: string, units: bigint): string {
  return keccak256(AbiCoder.defaultAbiCoder().encode(['string', 'bytes32', 'uint256'], ['heurist.countersign.v1', receiptHash, units]))
}

export function countersign (wallet: Wallet, receiptHash: string, units: bigint): string {
  return wallet.signingKey.sign(countersignDigest(receiptHash, units)).serialized
}

/** Who countersigned `units` for the receipt, or null when the signature does not parse. */
export function countersigner (receiptHash: string, units: bigint, signature: string): string | null {
  try { return recoverAddress(countersignDigest(receiptHash, units), signature) } catch { return null }
}
