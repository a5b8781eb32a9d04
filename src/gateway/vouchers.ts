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
 */
const bytes32 = z.string().regex(/^0x[0-9a-fA-F]{64}$/)
const address = z.string().regex(/^0x[0-9a-fA-F]{40}$/)

const voucherSchema = z.object({
  payer: address,
  miner: address,
  podId: bytes32,
  pool: z.number().int().min(0).max(255),
  frontend: address,
  cumulativeAmount: z.coerce.bigint().nonnegative(),
  signature: z.string().max(200)
})
export type SignedVoucher = Voucher & { signature: string }

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

  private key (miner: string, podId: string): string {
    return `${miner.toLowerCase()}:${podId.toLowerCase()}`
  }

  async latest (miner: string, podId: string): Promise<SignedVoucher | undefined> {
    return await this.repo.get(this.key(miner, podId))
  }

  /** Raises the miner's total for the pod by `amount` and returns the new signed voucher. */
  async raise (miner: string, podId: string, pool: number, amount: bigint): Promise<SignedVoucher> {
    const run = async (): Promise<SignedVoucher> => {
      const k = this.key(miner, podId)
      const prev = await this.repo.get(k)
      const v: Voucher = { payer: this.payer, miner, podId, pool, frontend: this.frontend, cumulativeAmount: (prev?.cumulativeAmount ?? 0n) + amount }
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
