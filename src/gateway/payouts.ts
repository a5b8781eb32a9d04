import { z } from 'zod'
import * as lp from 'it-length-prefixed'
import { verifyTypedData } from 'ethers'
import { peerIdFromString } from '@libp2p/peer-id'
import type { Stream } from '@libp2p/interface'
import type { HeuristNode } from '../p2p/index.js'
import type { Logger } from '../core/logger.js'
import type { Store, Repository } from '../core/store.js'
import { HeuristError } from '../core/errors.js'
import { VoucherTypes, type Voucher, type Eip712Domain } from '../core/typed-data.js'
import type { SignedVoucher } from './vouchers.js'

/**
 * Getting paid: the gateway pushes each new cumulative voucher to its miner over
 * `/heurist/voucher/1.0.0` (one length-prefixed JSON frame). The miner keeps the highest valid
 * voucher per (payer, pod) and redeems in `Payments` when what it is owed passes a threshold,
 * and once more on shutdown: one transaction for any number of jobs.
 */
export const VOUCHER_PROTOCOL = '/heurist/voucher/1.0.0'
export const MAX_VOUCHER_BYTES = 2048

const address = z.string().regex(/^0x[0-9a-fA-F]{40}$/)
const voucherMessageSchema = z.object({
  v: z.literal(1),
  type: z.literal('voucher'),
  voucher: z.object({
    payer: address,
    miner: address,
    podId: z.string().regex(/^0x[0-9a-f]{64}$/),
    pool: z.number().int().min(0).max(1),
    frontend: address,
    cumulativeAmount: z.string().regex(/^(0|[1-9][0-9]{0,77})$/)
  }).strict(),
  signature: z.string().regex(/^0x[0-9a-fA-F]{130}$/)
}).strict()

const storedSchema = z.object({
  payer: address, miner: address, podId: z.string(), pool: z.number().int(), frontend: address,
  cumulativeAmount: z.coerce.bigint(), signature: z.string().max(200)
})

/** Total decoder of a voucher frame: a SignedVoucher or a GATEWAY_* error. */
export function decodeVoucherMessage (bytes: Uint8Array): SignedVoucher {
  if (bytes.length > MAX_VOUCHER_BYTES) throw new HeuristError('GATEWAY_VOUCHER_TOO_LARGE', `voucher frame over ${MAX_VOUCHER_BYTES} bytes`)
  let json: unknown
  try { json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes)) } catch { throw new HeuristError('GATEWAY_VOUCHER_MALFORMED', 'voucher frame is not UTF-8 JSON') }
  const r = voucherMessageSchema.safeParse(json)
  if (!r.success) throw new HeuristError('GATEWAY_VOUCHER_MALFORMED', `bad voucher frame: ${r.error.issues[0]?.message ?? ''}`)
  return { ...r.data.voucher, cumulativeAmount: BigInt(r.data.voucher.cumulativeAmount), signature: r.data.signature }
}

export function encodeVoucherMessage (v: SignedVoucher): Uint8Array {
  const { signature, ...voucher } = v
  return new TextEncoder().encode(JSON.stringify({ v: 1, type: 'voucher', voucher: { ...voucher, cumulativeAmount: voucher.cumulativeAmount.toString() }, signature }))
}

/** Gateway side: hands a voucher to the miner that earned it. */
export async function sendVoucher (node: HeuristNode, minerPeerId: string, v: SignedVoucher, options: { signal?: AbortSignal } = {}): Promise<void> {
  const stream: Stream = await node.libp2p.dialProtocol(peerIdFromString(minerPeerId), VOUCHER_PROTOCOL, { signal: options.signal ?? AbortSignal.timeout(10_000) })
  try {
    if (!stream.send(lp.encode.single(encodeVoucherMessage(v)))) await stream.onDrain()
    await stream.close()
  } catch (e) {
    stream.abort(e as Error)
    throw e
  }
}

/** What the miner needs from the chain to redeem. */
export interface Redeemer {
  redeemable: (v: Voucher) => Promise<bigint>
  redeemVoucher: (v: Voucher, signature: string) => Promise<unknown>
}

export interface VoucherInboxOptions {
  /** Payments' EIP-712 domain: a voucher signed for another chain or contract is refused. */
  domain: Eip712Domain
  /** Redeem once a voucher owes at least this much (wei). Default 0: redeem at every voucher. */
  thresholdWei: bigint
}

/**
 * Miner side: accepts vouchers addressed to this miner and signed by their payer under the
 * Payments domain, keeps the highest per (payer, pod) in the store, and redeems.
 */
export class VoucherInbox {
  private readonly repo: Repository<SignedVoucher>
  private readonly o: VoucherInboxOptions
  private queue: Promise<unknown> = Promise.resolve()
  private started = false
  readonly stats = { received: 0, refused: 0, redeemed: 0n, transactions: 0 }

  constructor (private readonly node: HeuristNode, store: Store, private readonly chain: Redeemer | null, private readonly logger: Logger, init: Partial<VoucherInboxOptions> & Pick<VoucherInboxOptions, 'domain'>) {
    this.o = { thresholdWei: 0n, ...init }
    this.repo = store.bucket('miner-vouchers', storedSchema)
  }

  async start (): Promise<void> {
    if (this.started) return
    this.started = true
    await this.node.libp2p.handle(VOUCHER_PROTOCOL, (stream: Stream) => { this.onStream(stream).catch(err => { this.logger.debug({ err: (err as Error).message }, 'voucher stream failed') }) }, { maxInboundStreams: 8 })
  }

  private async onStream (stream: Stream): Promise<void> {
    const frames = lp.decode(stream, { maxDataLength: MAX_VOUCHER_BYTES }) as unknown as AsyncIterable<{ subarray: () => Uint8Array }>
    const timer = setTimeout(() => { stream.abort(new Error('voucher stream too slow')) }, 10_000)
    try {
      for await (const f of frames) {
        await this.accept(f.subarray())
        break
      }
    } finally {
      clearTimeout(timer)
      await stream.close().catch(() => {})
    }
  }

  /** Checks and keeps one voucher; redeems when it owes enough. Returns whether it was kept. */
  async accept (bytes: Uint8Array): Promise<boolean> {
    let v: SignedVoucher
    try {
      v = decodeVoucherMessage(bytes)
      const { signature, ...voucher } = v
      if (voucher.miner.toLowerCase() !== this.node.address.toLowerCase()) throw new HeuristError('GATEWAY_VOUCHER_NOT_OURS', 'voucher for another miner')
      if (verifyTypedData(this.o.domain as never, VoucherTypes, voucher, signature).toLowerCase() !== voucher.payer.toLowerCase()) throw new HeuristError('GATEWAY_VOUCHER_BAD_SIGNATURE', 'voucher not signed by its payer for this Payments contract')
    } catch (e) {
      this.stats.refused++
      this.logger.info({ code: (e as HeuristError).code }, 'voucher refused')
      return false
    }
    const key = `${v.payer.toLowerCase()}:${v.podId}`
    const kept = await this.serial(async () => {
      const prev = await this.repo.get(key)
      if (prev !== undefined && prev.cumulativeAmount >= v.cumulativeAmount) return false
      await this.repo.put(key, v)
      return true
    })
    this.stats.received++
    if (kept && this.chain !== null) await this.redeem(key, this.o.thresholdWei).catch(err => { this.logger.warn({ err: (err as Error).message }, 'redeem failed; will retry with the next voucher or at shutdown') })
    return kept
  }

  private async serial<T> (fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn)
    this.queue = next.catch(() => undefined)
    return await next
  }

  private async redeem (key: string, threshold: bigint): Promise<bigint> {
    const chain = this.chain
    if (chain === null) return 0n
    return await this.serial(async () => {
      const v = await this.repo.get(key)
      if (v === undefined) return 0n
      const { signature, ...voucher } = v
      const owed = await chain.redeemable(voucher)
      if (owed === 0n || owed < threshold) return 0n
      await chain.redeemVoucher(voucher, signature)
      this.stats.redeemed += owed
      this.stats.transactions++
      this.logger.info({ payer: v.payer, podId: v.podId, amount: owed.toString() }, 'voucher redeemed')
      return owed
    })
  }

  /** Everything owed, as the chain sees it now. */
  async owed (): Promise<bigint> {
    if (this.chain === null) return 0n
    let total = 0n
    for (const [, v] of await this.repo.entries()) { const { signature: _s, ...voucher } = v; total += await this.chain.redeemable(voucher) }
    return total
  }

  /** Redeems every voucher that still owes anything (on shutdown); returns the amount. */
  async redeemAll (): Promise<bigint> {
    let total = 0n
    for (const [key] of await this.repo.entries()) {
      try { total += await this.redeem(key, 1n) } catch (err) { this.logger.warn({ err: (err as Error).message }, 'redeem at shutdown failed') }
    }
    return total
  }

  async stop (): Promise<void> {
    if (!this.started) return
    this.started = false
    await this.node.libp2p.unhandle(VOUCHER_PROTOCOL).catch(() => {})
    await this.redeemAll()
  }
}
