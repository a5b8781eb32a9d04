/**
 * EIP-712 typed data shared by the miner (signs receipts), the gateway (signs vouchers),
 * validators (sign verdicts and reward roots) and the contracts that check them. One copy of
 * each type: the Solidity TYPEHASH strings must spell exactly these fields in this order.
 * Domain: { name: 'Heurist', version: '1', chainId, verifyingContract } where the verifying
 * contract is the one that checks the signature (Slashing for receipts and verdicts, Payments
 * for vouchers, Emission for reward roots).
 */
import type { TypedDataField } from 'ethers'

export const EIP712_NAME = 'Heurist'
export const EIP712_VERSION = '1'

export interface Eip712Domain {
  name: string
  version: string
  chainId: bigint | number
  verifyingContract: string
}

export function heuristDomain (chainId: bigint | number, verifyingContract: string): Eip712Domain {
  return { name: EIP712_NAME, version: EIP712_VERSION, chainId, verifyingContract }
}

/** Pools: 0 = LLM ("Llama points"), 1 = image ("Waifu points"). */
export const POOL = { llm: 0, image: 1 } as const

/** A miner's signed statement that it ran one job. Hashes are sha256 or keccak256, 32 bytes. */
export const ReceiptTypes: Record<string, TypedDataField[]> = {
  Receipt: [
    { name: 'jobId', type: 'bytes32' },
    { name: 'requester', type: 'address' },
    { name: 'miner', type: 'address' },
    { name: 'modelId', type: 'bytes32' },
    { name: 'pool', type: 'uint8' },
    { name: 'inputHash', type: 'bytes32' },
    { name: 'outputHash', type: 'bytes32' },
    { name: 'paramsHash', type: 'bytes32' },
    { name: 'computeUnits', type: 'uint256' },
    { name: 'startedAt', type: 'uint64' },
    { name: 'endedAt', type: 'uint64' }
  ]
}

export interface Receipt {
  jobId: string
  requester: string
  miner: string
  modelId: string
  pool: number
  inputHash: string
  outputHash: string
  paramsHash: string
  computeUnits: bigint
  startedAt: bigint
  endedAt: bigint
}

/**
 * A cumulative payment promise payer → miner for one channel: each job raises
 * `cumulativeAmount`; the miner redeems the latest one whenever it likes (one transaction for
 * any number of jobs). Payments keeps the amount already redeemed per channel (payer, miner,
 * podId, podDeployer, podBps) and pays the difference. `podId` is the model the jobs ran;
 * `podDeployer` and `podBps` name the pod share, and are set only when the request named a
 * registered pod (zero otherwise): Payments pays the pod only when both match PodRegistry.
 */
export const VoucherTypes: Record<string, TypedDataField[]> = {
  Voucher: [
    { name: 'payer', type: 'address' },
    { name: 'miner', type: 'address' },
    { name: 'podId', type: 'bytes32' },
    { name: 'podDeployer', type: 'address' },
    { name: 'podBps', type: 'uint16' },
    { name: 'pool', type: 'uint8' },
    { name: 'frontend', type: 'address' },
    { name: 'cumulativeAmount', type: 'uint256' }
  ]
}

export interface Voucher {
  payer: string
  miner: string
  podId: string
  podDeployer: string
  podBps: number
  pool: number
  frontend: string
  cumulativeAmount: bigint
}

/**
 * Pay-by-User: a user's (or agent's) signed bound for one frontend (gateway) to spend from
 * the user's own Payments deposit (verifying contract = Payments). Everything the frontend
 * settles under (payer, frontend, session) stays within `maxAmount` of the signature it
 * submits, and only until `expiry` (unix seconds). The user raises the bound by signing the
 * same session again with a higher `maxAmount` (cumulative); a new session starts from zero.
 */
export const PaymentAuthorizationTypes: Record<string, TypedDataField[]> = {
  PaymentAuthorization: [
    { name: 'payer', type: 'address' },
    { name: 'frontend', type: 'address' },
    { name: 'session', type: 'bytes32' },
    { name: 'maxAmount', type: 'uint256' },
    { name: 'expiry', type: 'uint256' }
  ]
}

export interface PaymentAuthorization {
  payer: string
  frontend: string
  session: string
  maxAmount: bigint
  expiry: bigint
}

/** One miner's cumulative amount on one channel of a Pay-by-User session (Payments.Allocation). */
export interface Allocation {
  miner: string
  podId: string
  podDeployer: string
  podBps: number
  pool: number
  cumulativeAmount: bigint
}

/** A validator's verdict on one receipt; `receiptHash` is the receipt's EIP-712 digest. */
export const VerdictTypes: Record<string, TypedDataField[]> = {
  Verdict: [
    { name: 'receiptHash', type: 'bytes32' },
    { name: 'validator', type: 'address' },
    { name: 'pass', type: 'bool' },
    { name: 'reason', type: 'uint8' }
  ]
}

export interface Verdict {
  receiptHash: string
  validator: string
  pass: boolean
  reason: number
}

/** An epoch's reward Merkle root, co-signed by validators before it is posted. */
export const RewardRootTypes: Record<string, TypedDataField[]> = {
  RewardRoot: [
    { name: 'epoch', type: 'uint256' },
    { name: 'root', type: 'bytes32' },
    { name: 'total', type: 'uint256' }
  ]
}

export interface RewardRoot {
  epoch: bigint
  root: string
  total: bigint
}

/**
 * An operator's consent to be registered in NodeRegistry owned by `owner` (verifying contract
 * = NodeRegistry). The owner submits it with the collateral; `nonce` is the operator's count of
 * consents used, so one signature registers once.
 */
export const RegistrationTypes: Record<string, TypedDataField[]> = {
  Registration: [
    { name: 'operator', type: 'address' },
    { name: 'owner', type: 'address' },
    { name: 'nonce', type: 'uint256' },
    { name: 'deadline', type: 'uint256' }
  ]
}

export interface Registration {
  operator: string
  owner: string
  nonce: bigint
  deadline: bigint
}
