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
import { POOLS, paidTripleKey } from '../economics/index.js'

const ZERO_ADDRESS = '0x0000000000000000000000000000000000000000'

/**
 * Getting paid: the gateway pushes each new cumulative voucher to its miner over
 * `/heurist/voucher/1.0.0` (one length-prefixed JSON frame). The miner keeps the highest valid
 * voucher per Payments channel (payer, pod, pod share) and redeems in `Payments` when what it
 * is owed passes a threshold, as soon as the chain passes an epoch's end (everything owed, any
 * amount), and once more on shutdown: one transaction for any number of jobs. The epoch-end
 * pass is what keeps points: a receipt earns at most what its payer's redemptions in the
 * epoch's redemption window paid (economics/paid-points), and a voucher still unredeemed when
 * that window closes counts for nothing in the epoch.
 *
 * A voucher is a claim by its payer, and anyone can make up payers: before one is stored it
 * must be signed by its payer under this Payments domain, for this miner, and covered by the
 * payer's deposit as the chain says now. Stored channels are bounded per sending peer and in
 * total; a voucher whose payer's deposit no longer covers it is dropped, not retried.
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
    podDeployer: address,
    podBps: z.number().int().min(0).max(10_000),
    pool: z.number().int().min(0).max(1),
    frontend: address,
    cumulativeAmount: z.string().regex(/^(0|[1-9][0-9]{0,77})$/)
  }).strict(),
  signature: z.string().regex(/^0x[0-9a-fA-F]{130}$/)
}).strict()

const storedSchema = z.object({
  payer: address, miner: address, podId: z.string(), podDeployer: address, podBps: z.number().int(), pool: z.number().int(), frontend: address,
  cumulativeAmount: z.coerce.bigint(), signature: z.string().max(200),
  /** The peer that sent it (for the per-peer bound). */
  from: z.string().max(128).default('')
})
type StoredVoucher = z.infer<typeof storedSchema>

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

/** What the miner needs from the chain to check and redeem vouchers. */
export interface Redeemer {
  redeemable: (v: Voucher) => Promise<bigint>
  redeemVoucher: (v: Voucher, signature: string) => Promise<unknown>
  /** The payer's Payments deposit now. */
  depositOf: (payer: string) => Promise<bigint>
  /** The chain's epoch (Payments.currentEpoch): when it moves on, everything owed is redeemed. Absent: no epoch-end pass. */
  currentEpoch?: () => Promise<bigint>
}

export interface VoucherInboxOptions {
  /** Payments' EIP-712 domain: a voucher signed for another chain or contract is refused. */
  domain: Eip712Domain
  /** Redeem once a voucher owes at least this much (wei). Default 0: redeem at every voucher. */
  thresholdWei: bigint
  /** Most channels one sending peer may open here. Default 64 (a gateway pays a miner on one channel per pod it uses). */
  maxPerPeer: number
  /** Most channels kept in all. Default 4096 (each is one store entry and one check per redemption pass). */
  maxTotal: number
  /**
   * How often the chain's epoch is read; when it has moved on, every channel owed anything is
   * redeemed whatever the threshold, inside the ended epoch's redemption window (30 chain
   * seconds). Default 1 s; 0 = never (then only threshold and shutdown redeem).
   */
  epochPollMs: number
}

export const defaultVoucherInboxOptions: Omit<VoucherInboxOptions, 'domain'> = { thresholdWei: 0n, maxPerPeer: 64, maxTotal: 4096, epochPollMs: 1000 }

/** After an epoch's end, vouchers arriving this long are redeemed at once (half the redemption window). */
const LATE_VOUCHER_MS = 15_000

/** Reverts that mean a stored voucher can never pay: it is dropped instead of retried. */
const HOPELESS = new Set(['CHAIN_INSUFFICIENT_DEPOSIT', 'CHAIN_BAD_SIGNATURE'])

function channelKey (v: Voucher): string {
  return `${v.payer.toLowerCase()}:${v.podId.toLowerCase()}:${v.podDeployer.toLowerCase()}:${v.podBps}`
}

function plain (v: SignedVoucher | StoredVoucher): { voucher: Voucher, signature: string } {
  return { voucher: { payer: v.payer, miner: v.miner, podId: v.podId, podDeployer: v.podDeployer, podBps: v.podBps, pool: v.pool, frontend: v.frontend, cumulativeAmount: v.cumulativeAmount }, signature: v.signature }
}

/**
 * Miner side: accepts vouchers addressed to this miner, signed by their payer under the
 * Payments domain and covered by the payer's deposit; keeps the highest per channel in the
 * store (bounded per peer and in total), and redeems.
 */
export class VoucherInbox {
  private readonly repo: Repository<StoredVoucher>
  private readonly o: VoucherInboxOptions
  private queue: Promise<unknown> = Promise.resolve()
  private started = false
  /** Stored channel → the peer that opened it (loaded at start; the bounds count these). */
  private readonly channels = new Map<string, string>()
  readonly stats = { received: 0, refused: 0, dropped: 0, redeemed: 0n, transactions: 0, epochPasses: 0 }
  private epochTimer: NodeJS.Timeout | null = null
  private epochPass: Promise<void> = Promise.resolve()
  private lastEpoch: bigint | null = null
  /** Until then (ms), a new voucher is redeemed whatever the threshold: just after an epoch's end. */
  private lateUntil = 0

  constructor (private readonly node: HeuristNode, store: Store, private readonly chain: Redeemer | null, private readonly logger: Logger, init: Partial<VoucherInboxOptions> & Pick<VoucherInboxOptions, 'domain'>) {
    this.o = { ...defaultVoucherInboxOptions, ...init }
    this.repo = store.bucket('miner-vouchers', storedSchema)
  }

  async start (): Promise<void> {
    if (this.started) return
    this.started = true
    for (const [k, v] of await this.repo.entries({ limit: this.o.maxTotal })) this.channels.set(k, v.from)
    this.watchEpochs()
    await this.node.libp2p.handle(VOUCHER_PROTOCOL, (stream: Stream, connection: { remotePeer: { toString: () => string } }) => { this.onStream(stream, connection.remotePeer.toString()).catch(err => { this.logger.debug({ err: (err as Error).message }, 'voucher stream failed') }) }, { maxInboundStreams: 8 })
  }

  private async onStream (stream: Stream, from: string): Promise<void> {
    const frames = lp.decode(stream, { maxDataLength: MAX_VOUCHER_BYTES }) as unknown as AsyncIterable<{ subarray: () => Uint8Array }>
    const timer = setTimeout(() => { stream.abort(new Error('voucher stream too slow')) }, 10_000)
    try {
      for await (const f of frames) {
        await this.accept(f.subarray(), from)
        break
      }
    } finally {
      clearTimeout(timer)
      await stream.close().catch(() => {})
    }
  }

  /**
   * Checks and keeps one voucher from peer `from`; redeems when it owes enough. Returns whether
   * it was kept. Refusals are logged with their code; nothing is stored for them.
   */
  async accept (bytes: Uint8Array, from = ''): Promise<boolean> {
    let v: SignedVoucher
    try {
      v = decodeVoucherMessage(bytes)
      const { voucher, signature } = plain(v)
      if (voucher.miner.toLowerCase() !== this.node.address.toLowerCase()) throw new HeuristError('GATEWAY_VOUCHER_NOT_OURS', 'voucher for another miner')
      if (verifyTypedData(this.o.domain as never, VoucherTypes, voucher, signature).toLowerCase() !== voucher.payer.toLowerCase()) throw new HeuristError('GATEWAY_VOUCHER_BAD_SIGNATURE', 'voucher not signed by its payer for this Payments contract')
      await this.covered(voucher)
    } catch (e) {
      this.stats.refused++
      this.logger.info({ code: (e as HeuristError).code, reason: (e as Error).message, from }, 'voucher refused')
      return false
    }
    const key = channelKey(v)
    const kept = await this.serial(async () => {
      const prev = await this.repo.get(key)
      if (prev !== undefined && prev.cumulativeAmount >= v.cumulativeAmount) return false
      if (prev === undefined) this.roomFor(from)
      await this.repo.put(key, { ...v, from: prev?.from ?? from })
      this.channels.set(key, prev?.from ?? from)
      return true
    }).catch((e: unknown) => {
      this.stats.refused++
      this.logger.info({ code: (e as HeuristError).code, reason: (e as Error).message, from }, 'voucher refused')
      return null
    })
    if (kept === null) return false
    this.stats.received++
    if (kept && this.chain !== null) await this.redeem(key, Date.now() < this.lateUntil ? 1n : this.o.thresholdWei).catch(err => { this.logger.warn({ err: (err as Error).message }, 'redeem failed; will retry with the next voucher or at shutdown') })
    return kept
  }

  /** The payer's deposit must cover what this voucher adds over what was redeemed. */
  private async covered (v: Voucher): Promise<void> {
    if (this.chain === null) return
    const [owed, deposit] = await Promise.all([this.chain.redeemable(v), this.chain.depositOf(v.payer)])
    if (deposit === 0n) throw new HeuristError('GATEWAY_VOUCHER_UNFUNDED', `payer ${v.payer} has no deposit in Payments`)
    if (owed > deposit) throw new HeuristError('GATEWAY_VOUCHER_OVER_DEPOSIT', `voucher owes ${owed} wei but payer ${v.payer} holds ${deposit} wei`)
  }

  /** Throws when a new channel from `from` would pass the per-peer or the total bound. */
  private roomFor (from: string): void {
    if (this.channels.size >= this.o.maxTotal) throw new HeuristError('GATEWAY_VOUCHER_LIMIT', `already holding ${this.o.maxTotal} voucher channels`)
    let mine = 0
    for (const p of this.channels.values()) if (p === from) mine++
    if (mine >= this.o.maxPerPeer) throw new HeuristError('GATEWAY_VOUCHER_LIMIT', `peer ${from} already opened ${this.o.maxPerPeer} voucher channels`)
  }

  private async drop (key: string, why: string): Promise<void> {
    await this.repo.del(key)
    this.channels.delete(key)
    this.stats.dropped++
    this.logger.info({ key, reason: why }, 'voucher dropped: it can never pay')
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
      const stored = await this.repo.get(key)
      if (stored === undefined) return 0n
      const { voucher, signature } = plain(stored)
      const owed = await chain.redeemable(voucher)
      if (owed === 0n || owed < threshold) return 0n
      try {
        await chain.redeemVoucher(voucher, signature)
      } catch (e) {
        const code = (e as HeuristError).code
        if (HOPELESS.has(code)) { await this.drop(key, (e as Error).message); return 0n }
        throw e
      }
      this.stats.redeemed += owed
      this.stats.transactions++
      this.logger.info({ payer: voucher.payer, podId: voucher.podId, amount: owed.toString() }, 'voucher redeemed')
      return owed
    })
  }

  /** Everything owed, as the chain sees it now. */
  async owed (): Promise<bigint> {
    if (this.chain === null) return 0n
    let total = 0n
    for (const [, v] of await this.repo.entries({ limit: this.o.maxTotal })) total += await this.chain.redeemable(plain(v).voucher)
    return total
  }

  /**
   * What the held vouchers still owe, per (requester, miner, pool) key as the payment cap counts
   * a redemption (`paidTripleKey`: the voucher's frontend when it names one, else its payer).
   * The running epoch's points estimate adds it: these are redeemed at the epoch's end.
   */
  async owedByTriple (): Promise<Map<string, bigint>> {
    const out = new Map<string, bigint>()
    if (this.chain === null) return out
    for (const [, v] of await this.repo.entries({ limit: this.o.maxTotal })) {
      const { voucher } = plain(v)
      const pool = POOLS[voucher.pool]
      if (pool === undefined) continue
      const owed = await this.chain.redeemable(voucher)
      if (owed === 0n) continue
      const k = paidTripleKey(voucher.frontend.toLowerCase() === ZERO_ADDRESS ? voucher.payer : voucher.frontend, voucher.miner, pool)
      out.set(k, (out.get(k) ?? 0n) + owed)
    }
    return out
  }

  /** Redeems every voucher that still owes anything (on shutdown); returns the amount. */
  async redeemAll (): Promise<bigint> {
    let total = 0n
    for (const [key] of await this.repo.entries({ limit: this.o.maxTotal })) {
      try { total += await this.redeem(key, 1n) } catch (err) { this.logger.warn({ err: (err as Error).message }, 'redeem at shutdown failed') }
    }
    return total
  }

  /** Reads the chain's epoch every `epochPollMs`; when it has moved on, redeems everything owed. */
  private watchEpochs (): void {
    const chain = this.chain
    if (chain?.currentEpoch === undefined || this.o.epochPollMs <= 0) return
    const tick = (): void => {
      this.epochTimer = null
      this.epochPass = (async () => {
        const epoch = await chain.currentEpoch!()
        const ended = this.lastEpoch !== null && epoch > this.lastEpoch
        this.lastEpoch = epoch
        if (!ended || !this.started) return
        this.stats.epochPasses++
        // vouchers for the ended epoch's last jobs may still arrive: redeem those at once too
        this.lateUntil = Date.now() + LATE_VOUCHER_MS
        const paid = await this.redeemAll()
        this.logger.info({ epoch: epoch.toString(), redeemed: paid.toString() }, 'epoch ended: everything owed redeemed')
      })().catch(err => { this.logger.warn({ err: (err as Error).message }, 'epoch-end redemption pass failed; a later poll retries') })
        .finally(() => { if (this.started) { this.epochTimer = setTimeout(tick, this.o.epochPollMs); this.epochTimer.unref() } })
    }
    tick()
  }

  async stop (): Promise<void> {
    if (!this.started) return
    this.started = false
    if (this.epochTimer !== null) clearTimeout(this.epochTimer)
    this.epochTimer = null
    await this.epochPass
    await this.node.libp2p.unhandle(VOUCHER_PROTOCOL).catch(() => {})
    await this.redeemAll()
  }
}
