import { z } from 'zod'
import type { Wallet } from 'ethers'
import type { Store, Repository } from '../core/store.js'
import { VoucherTypes, type Voucher, type Eip712Domain } from '../core/typed-data.js'

/**
 * The gateway's cumulative vouchers, one per (miner, pod): each paid job raises the total by
 * price × units, and the new total is signed (EIP-712, verifying contract = Payments) and
 * handed to the miner, which redeems the latest one whenever it likes. The total only grows,
 * and is written to the store before the voucher is handed out, so a restart never signs a
 * smaller total than one the miner already holds.
 *
 * The pod share travels in the voucher: a job whose request named a registered pod is paid on
 * a channel that names the pod's deployer and share (Payments pays the pod only when they
 * match the registry); every other job on a channel with no pod share.
 */
const ZERO_ADDRESS = '0x0000000000000000000000000000000000000000'
const bytes32 = z.string().regex(/^0x[0-9a-fA-F]{64}$/)
const address = z.string().regex(/^0x[0-9a-fA-F]{40}$/)

const voucherSchema = z.object({
  payer: address,
  miner: address,
  podId: bytes32,
  podDeployer: address.default(ZERO_ADDRESS),
  podBps: z.number().int().min(0).max(10_000).default(0),
  pool: z.number().int().min(0).max(255),
  frontend: address,
  cumulativeAmount: z.coerce.bigint().nonnegative(),
  signature: z.string().max(200)
})
export type SignedVoucher = Voucher & { signature: string }

/** The pod share a voucher names: the registered deployer and its basis points. */
export interface PodShare { deployer: string, bps: number }

/** No pod share: the request did not name a registered pod. */
export const NO_POD_SHARE: PodShare = { deployer: ZERO_ADDRESS, bps: 0 }

export interface VoucherSigner {
  wallet: Wallet
  domain: Eip712Domain
}

export class VoucherBook {
  private readonly repo: Repository<SignedVoucher>
  private queue: Promise<unknown> = Promise.resolve()

  /**
   * `signer` null: amounts are kept but not signed (no chain configured); the signature is ''.
   * `payer` is the address whose Payments deposit backs the vouchers; `frontend` gets the
   * frontend's revenue share.
   */
  constructor (store: Store, private readonly payer: string, private readonly frontend: string, private readonly signer: VoucherSigner | null) {
    this.repo = store.bucket('gw-vouchers', voucherSchema)
  }

  /** One key per Payments channel: (miner, pod) plus the pod share when there is one. */
  private key (miner: string, podId: string, pod: PodShare): string {
    const base = `${miner.toLowerCase()}:${podId.toLowerCase()}`
    return pod.deployer === ZERO_ADDRESS ? base : `${base}:${pod.deployer.toLowerCase()}:${pod.bps}`
  }

  async latest (miner: string, podId: string, pod: PodShare = NO_POD_SHARE): Promise<SignedVoucher | undefined> {
    return await this.repo.get(this.key(miner, podId, pod))
  }

  /** Raises the miner's total for the channel by `amount` and returns the new signed voucher. */
  async raise (miner: string, podId: string, pool: number, amount: bigint, pod: PodShare = NO_POD_SHARE): Promise<SignedVoucher> {
    const run = async (): Promise<SignedVoucher> => {
      const k = this.key(miner, podId, pod)
      const prev = await this.repo.get(k)
      const v: Voucher = { payer: this.payer, miner, podId, podDeployer: pod.deployer, podBps: pod.bps, pool, frontend: this.frontend, cumulativeAmount: (prev?.cumulativeAmount ?? 0n) + amount }
      const signature = this.signer === null ? '' : await this.signer.wallet.signTypedData(this.signer.domain as never, VoucherTypes, v)
      const signed = { ...v, signature }
      await this.repo.put(k, signed)
      return signed
    }
    const next = this.queue.then(run, run)
    this.queue = next.catch(() => undefined)
    return await next
  }

  async all (limit = 10_000): Promise<SignedVoucher[]> {
    return (await this.repo.entries({ limit })).map(([, v]) => v)
  }
}
