import { z } from 'zod'
import { verifyTypedData } from 'ethers'
import type { Logger } from '../core/logger.js'
import type { Store, Repository } from '../core/store.js'
import { PaymentAuthorizationTypes, type PaymentAuthorization, type Allocation, type Eip712Domain } from '../core/typed-data.js'
import { ApiError } from './openai.js'
import type { PodShare } from './vouchers.js'

/**
 * Pay-by-User (whitepaper §2.3.2, x402-shaped): a caller without an API key pays from its own
 * Payments deposit. A request without payment gets HTTP 402 with the payment requirements
 * (quote, payee, chain, Payments, the EIP-712 domain and type); the client retries with an
 * `X-PAYMENT` header carrying its signed PaymentAuthorization: a cumulative bound for this
 * gateway and session, until an expiry. The gateway checks it and the deposit, serves, and
 * books what each served job cost (the measured cost, never above the job's reservation; a
 * failed job books nothing) on the (miner, pod share, pool) channel that served it. It then
 * settles the session on chain (`Payments.settleAuthorized`): the user's deposit pays miners,
 * pod deployers, this frontend and the protocol fee directly; the gateway never holds it.
 *
 * Who bears what (DESIGN.md §11):
 * - the user's exposure is what it signed: the contract keeps the session's total ≤ the
 *   submitted maxAmount, refuses after expiry and any sender but the named frontend; the
 *   signature is bound to this chain id and Payments address by its domain;
 * - the gateway accepted the job, so the gateway bears the risk that the user's deposit is gone
 *   at settlement. It bounds that risk: a withdrawal being requested is not counted as
 *   deposit; an authorization must expire within the withdraw delay (so a withdrawal requested
 *   after a job cannot complete before the session is settled); it settles when a session owes
 *   `settleThresholdWei`, `settleMarginSeconds` before expiry, and at each epoch's end. A settlement that the chain
 *   refuses for good is paid to the miners from the gateway's own deposit (`onUnsettled`,
 *   its ordinary vouchers), so a miner is never left unpaid for a job the gateway accepted.
 */
export const PAYMENT_HEADER = 'x-payment'
export const PAYMENT_RESPONSE_HEADER = 'x-payment-response'
export const PAYMENT_SCHEME = 'heurist-deposit'
export const X402_VERSION = 1
/** Largest X-PAYMENT header accepted (base64 JSON of one authorization and a signature). */
export const MAX_PAYMENT_HEADER_BYTES = 2048

const address = z.string().regex(/^0x[0-9a-fA-F]{40}$/)
const bytes32 = z.string().regex(/^0x[0-9a-fA-F]{64}$/)
const uint = z.string().regex(/^(0|[1-9][0-9]{0,77})$/)

const paymentHeaderSchema = z.object({
  x402Version: z.literal(X402_VERSION),
  scheme: z.literal(PAYMENT_SCHEME),
  network: z.string().max(64),
  payload: z.object({
    authorization: z.object({ payer: address, frontend: address, session: bytes32, maxAmount: uint, expiry: uint }).strict(),
    signature: z.string().regex(/^0x[0-9a-fA-F]{130}$/)
  }).strict()
}).strict()

export interface SignedAuthorization { authorization: PaymentAuthorization, signature: string }

/** The `network` field: CAIP-2 for an EVM chain. */
export function networkOf (chainId: bigint | number): string {
  return `eip155:${String(chainId)}`
}

/** The X-PAYMENT header's value for a signed authorization: base64 of the x402 payment payload. */
export function encodePaymentHeader (chainId: bigint | number, a: SignedAuthorization): string {
  const authorization = { ...a.authorization, maxAmount: a.authorization.maxAmount.toString(), expiry: a.authorization.expiry.toString() }
  return Buffer.from(JSON.stringify({ x402Version: X402_VERSION, scheme: PAYMENT_SCHEME, network: networkOf(chainId), payload: { authorization, signature: a.signature } })).toString('base64')
}

/** Total decoder of an X-PAYMENT header: the signed authorization, or a 402 naming what is wrong. */
export function decodePaymentHeader (value: string): SignedAuthorization & { network: string } {
  if (value.length > MAX_PAYMENT_HEADER_BYTES) throw paymentError('payment_malformed', `the ${PAYMENT_HEADER} header is over ${MAX_PAYMENT_HEADER_BYTES} bytes`)
  let json: unknown
  try { json = JSON.parse(Buffer.from(value, 'base64').toString('utf8')) } catch { throw paymentError('payment_malformed', `the ${PAYMENT_HEADER} header is not base64 JSON`) }
  const r = paymentHeaderSchema.safeParse(json)
  if (!r.success) throw paymentError('payment_malformed', `bad ${PAYMENT_HEADER} header: ${r.error.issues[0]?.path.join('.') ?? ''} ${r.error.issues[0]?.message ?? ''}`)
  const a = r.data.payload.authorization
  return { network: r.data.network, authorization: { ...a, maxAmount: BigInt(a.maxAmount), expiry: BigInt(a.expiry) }, signature: r.data.payload.signature }
}

function paymentError (code: string, message: string): ApiError {
  return new ApiError(402, message, 'payment_required', code)
}

/** What the 402 says about the caller's session so far, when it sent one. */
export interface SessionState { session: string, spent: bigint, maxAmount: bigint, expiry: bigint }

export interface Requirements {
  /** This request's worst case in wei: the most it can be charged. */
  quote: bigint
  resource: string
  session: SessionState | null
}

/** An x402 "402 Payment Required" answer: the OpenAI-shaped error plus the machine-readable requirements. */
export class PaymentRequired extends ApiError {
  constructor (message: string, code: string, readonly requirements: Record<string, unknown>) {
    super(402, message, 'payment_required', code)
  }

  override body (): ReturnType<ApiError['body']> & { x402Version: number, accepts: unknown[] } {
    return { ...super.body(), x402Version: X402_VERSION, accepts: [this.requirements] }
  }
}

const channelSchema = z.object({
  miner: address,
  podId: bytes32,
  podDeployer: address,
  podBps: z.number().int().min(0).max(10_000),
  pool: z.number().int().min(0).max(1),
  cumulativeAmount: z.coerce.bigint().nonnegative(),
  /** What of it is settled on chain (or paid by the gateway's own vouchers). */
  settled: z.coerce.bigint().nonnegative()
})
type Channel = z.infer<typeof channelSchema>

const sessionSchema = z.object({
  payer: address,
  session: bytes32,
  maxAmount: z.coerce.bigint().nonnegative(),
  expiry: z.coerce.bigint().nonnegative(),
  signature: z.string().max(200),
  /** Booked so far (the sum of the channels' cumulative amounts). */
  spent: z.coerce.bigint().nonnegative(),
  channels: z.array(channelSchema).max(64)
})
export type PayerSession = z.infer<typeof sessionSchema>

/** What the gateway needs from the chain for Pay-by-User. */
export interface PayByUserChain {
  depositOf: (payer: string) => Promise<bigint>
  withdrawalOf: (payer: string) => Promise<{ amount: bigint, at: bigint }>
  settleAuthorized: (a: PaymentAuthorization, signature: string, allocations: Allocation[]) => Promise<unknown>
  /** The chain's epoch (Payments.currentEpoch): when it moves on, every session owing anything is settled. Absent: no epoch-end settlement. */
  currentEpoch?: () => Promise<bigint>
}

export interface PayByUserOptions {
  /** Payments' EIP-712 domain (chain id, address): a signature for another chain or contract is refused. */
  domain: Eip712Domain
  /** This gateway's address: the frontend an authorization must name (and the 402's payTo). */
  frontend: string
  /** The HEU token (the 402's `asset`). */
  asset: string
  /** Payments' withdraw delay: an authorization may not expire later than this from now. */
  withdrawDelaySeconds: bigint
  /**
   * An authorization is not used for new jobs this close to its expiry, and its session is
   * settled by then. Default 120 s: a settlement transaction's time with room to spare.
   */
  settleMarginSeconds: number
  /** A session is settled once it owes this much (wei). Default 10^17 (0.1 HEU): few transactions, little at risk. */
  settleThresholdWei: bigint
  /** How often sessions are checked for settlement. Default 5 s. */
  settleIntervalMs: number
  /** Channels (miner × pod share × pool) per session; a session with this many takes no new miner. Default 32 (Payments allows 64). */
  maxChannelsPerSession: number
  /** Sessions read per settlement pass and per payer. Default 10,000. */
  maxSessions: number
  /** Clock in unix seconds. Default the wall clock. */
  now: () => number
}

export const defaultPayByUserOptions: Omit<PayByUserOptions, 'domain' | 'frontend' | 'asset' | 'withdrawDelaySeconds'> = {
  settleMarginSeconds: 120,
  settleThresholdWei: 10n ** 17n,
  settleIntervalMs: 5_000,
  maxChannelsPerSession: 32,
  maxSessions: 10_000,
  now: () => Math.floor(Date.now() / 1000)
}

/** Where a served job is booked: the serving miner and the request's pod share. */
export interface ChannelTarget { miner: string, podId: string, pool: number, pod: PodShare }

/** Wei held for one job under a session; `commit` books the real cost (at most `amount`), `release` books nothing. */
export interface UserReservation {
  amount: bigint
  payer: string
  session: string
  commit: (cost: bigint, target: ChannelTarget) => Promise<{ charged: bigint, spent: bigint, maxAmount: bigint }>
  release: () => void
}

function sessionKey (payer: string, session: string): string {
  return `${payer.toLowerCase()}:${session.toLowerCase()}`
}

/** Refusals for which a settlement can never succeed: the gateway pays the miners itself. */
const HOPELESS = new Set(['CHAIN_INSUFFICIENT_DEPOSIT', 'CHAIN_AUTHORIZATION_EXPIRED', 'CHAIN_BAD_SIGNATURE', 'CHAIN_OVER_AUTHORIZED', 'CHAIN_NOT_FRONTEND'])

export class PayByUser {
  readonly o: PayByUserOptions
  private readonly repo: Repository<PayerSession>
  /** Wei reserved by jobs in flight, per session key and per payer. */
  private readonly heldBySession = new Map<string, bigint>()
  private readonly heldByPayer = new Map<string, bigint>()
  private readonly queues = new Map<string, Promise<unknown>>()
  private readonly settling = new Set<string>()
  private timer: NodeJS.Timeout | null = null
  private lastEpoch: bigint | null = null
  readonly stats = { settlements: 0, settled: 0n, fallback: 0n, epochPasses: 0 }

  constructor (store: Store, private readonly chain: PayByUserChain, private readonly logger: Logger, init: Partial<PayByUserOptions> & Pick<PayByUserOptions, 'domain' | 'frontend' | 'asset' | 'withdrawDelaySeconds'>,
    /** Pays a channel's amount that the chain refused to settle from the gateway's own deposit (its vouchers). */
    private readonly onUnsettled: (c: ChannelTarget, amount: bigint) => Promise<void>) {
    this.o = { ...defaultPayByUserOptions, ...init }
    this.repo = store.bucket('gw-payer-sessions', sessionSchema)
  }

  start (): void {
    if (this.timer !== null) return
    this.timer = setInterval(() => { this.settleDue().catch(err => { this.logger.warn({ err: (err as Error).message }, 'pay-by-user settlement pass failed') }) }, this.o.settleIntervalMs)
    this.timer.unref()
  }

  /** Stops the timer and settles every session that owes anything. */
  async stop (): Promise<void> {
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
    await this.settleAll()
  }

  private async serial<T> (key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.queues.get(key) ?? Promise.resolve()
    const next = prev.then(fn, fn)
    this.queues.set(key, next.catch(() => undefined))
    try { return await next } finally {
      if (this.queues.get(key) === next) this.queues.delete(key)
    }
  }

  /** The machine-readable requirements (x402 `accepts` entry) for a request. */
  requirements (r: Requirements): Record<string, unknown> {
    const need = (r.session?.spent ?? 0n) + r.quote
    return {
      scheme: PAYMENT_SCHEME,
      network: networkOf(this.o.domain.chainId),
      maxAmountRequired: r.quote.toString(),
      resource: r.resource,
      description: 'Heurist inference paid from your Payments deposit: sign a PaymentAuthorization (EIP-712) whose maxAmount covers what this session spent plus this quote, and send it base64-encoded in the X-PAYMENT header.',
      mimeType: 'application/json',
      payTo: this.o.frontend,
      maxTimeoutSeconds: Number(this.o.withdrawDelaySeconds),
      asset: this.o.asset,
      extra: {
        payments: this.o.domain.verifyingContract,
        chainId: Number(this.o.domain.chainId),
        domain: { ...this.o.domain, chainId: Number(this.o.domain.chainId) },
        primaryType: 'PaymentAuthorization',
        types: PaymentAuthorizationTypes,
        header: 'X-PAYMENT',
        session: r.session === null ? null : { session: r.session.session, spent: r.session.spent.toString(), maxAmount: r.session.maxAmount.toString(), expiry: Number(r.session.expiry) },
        minMaxAmount: need.toString(),
        expiryAtMost: this.o.now() + Number(this.o.withdrawDelaySeconds),
        settleMarginSeconds: this.o.settleMarginSeconds
      }
    }
  }

  private required (message: string, code: string, r: Requirements): PaymentRequired {
    return new PaymentRequired(message, code, this.requirements(r))
  }

  /**
   * The checks that need no body and no chain: well formed, for this gateway, signed by its
   * payer under this chain's Payments domain, not expiring too soon or too late. Throws a 402.
   */
  verify (header: string): SignedAuthorization {
    const p = decodePaymentHeader(header)
    const a = p.authorization
    if (p.network !== networkOf(this.o.domain.chainId)) throw paymentError('payment_wrong_network', `the payment is for network ${p.network}; this gateway settles on ${networkOf(this.o.domain.chainId)}`)
    if (a.frontend.toLowerCase() !== this.o.frontend.toLowerCase()) throw paymentError('payment_wrong_frontend', `the authorization names frontend ${a.frontend}; this gateway is ${this.o.frontend}`)
    let signer: string
    try { signer = verifyTypedData(this.o.domain as never, PaymentAuthorizationTypes, a, p.signature) } catch { signer = '' }
    if (signer.toLowerCase() !== a.payer.toLowerCase()) throw paymentError('payment_bad_signature', `the authorization is not signed by its payer for chain ${String(this.o.domain.chainId)} and Payments ${this.o.domain.verifyingContract}`)
    const now = BigInt(this.o.now())
    if (a.expiry <= now + BigInt(this.o.settleMarginSeconds)) throw paymentError('payment_expired', `the authorization expires at ${a.expiry} (unix s); this gateway needs at least ${this.o.settleMarginSeconds} s left to settle`)
    if (a.expiry > now + this.o.withdrawDelaySeconds) throw paymentError('payment_expiry_too_far', `the authorization expires at ${a.expiry}; it may run at most Payments' withdraw delay (${this.o.withdrawDelaySeconds} s) from now`)
    return { authorization: a, signature: p.signature }
  }

  /** The caller's session as this gateway booked it (for the 402's `session`). */
  async state (payer: string, session: string): Promise<SessionState | null> {
    const s = await this.repo.get(sessionKey(payer, session))
    return s === undefined ? null : { session: s.session, spent: s.spent, maxAmount: s.maxAmount, expiry: s.expiry }
  }

  /**
   * Reserves as much of `max` (the dearest affordable miner's worst case) as the session's
   * bound and the payer's deposit allow, at least `min`; a 402 with the requirements when even
   * `min` does not fit. `payment` null: no X-PAYMENT header (a 402 with the quote).
   */
  async reserve (payment: SignedAuthorization | null, max: bigint, min: bigint, resource: string): Promise<UserReservation> {
    if (payment === null) throw this.required('This gateway takes no API key from you: pay from your Payments deposit by signing the PaymentAuthorization described in `accepts` and retrying with the X-PAYMENT header.', 'payment_required', { quote: max, resource, session: null })
    const a = payment.authorization
    const key = sessionKey(a.payer, a.session)
    const payerKey = a.payer.toLowerCase()
    return await this.serial(payerKey, async () => {
      let s = await this.repo.get(key)
      if (s === undefined) {
        // nothing is stored until a job is charged: a session costs storage only with paid work
        s = { payer: a.payer, session: a.session, maxAmount: a.maxAmount, expiry: a.expiry, signature: payment.signature, spent: 0n, channels: [] }
      } else if (a.maxAmount > s.maxAmount) {
        // the same session signed again with a higher bound: the highest one is what settles
        s = { ...s, maxAmount: a.maxAmount, expiry: a.expiry, signature: payment.signature }
      }
      const state = { session: s.session, spent: s.spent, maxAmount: s.maxAmount, expiry: s.expiry }
      if (BigInt(this.o.now()) + BigInt(this.o.settleMarginSeconds) >= s.expiry) throw this.required(`This session's authorization expires at ${s.expiry}; sign a new session.`, 'payment_expired', { quote: max, resource, session: state })
      if (s.channels.length >= this.o.maxChannelsPerSession) throw this.required('This session has paid as many miners as one settlement takes; sign a new session.', 'payment_session_full', { quote: max, resource, session: state })
      const held = this.heldBySession.get(key) ?? 0n
      const free = s.maxAmount - s.spent - held
      if (free < min || free <= 0n) throw this.required(`The authorization's maxAmount (${s.maxAmount} wei) does not cover this request: the session spent ${s.spent} wei${held > 0n ? ` and holds ${held} wei for jobs in flight` : ''}, and this request may cost up to ${max} wei.`, 'payment_over_authorization', { quote: max, resource, session: state })
      const [deposit, withdrawal] = await Promise.all([this.chain.depositOf(a.payer), this.chain.withdrawalOf(a.payer)])
      // what a withdrawal request will take, and what this gateway already owes from it, is not there
      const owed = await this.unsettledOf(a.payer)
      const payerHeld = this.heldByPayer.get(payerKey) ?? 0n
      const available = deposit - withdrawal.amount - owed - payerHeld
      if (available < min || available <= 0n) throw this.required(`Your Payments deposit does not cover this request: ${deposit} wei deposited${withdrawal.amount > 0n ? `, ${withdrawal.amount} wei of it being withdrawn` : ''}, ${owed + payerHeld} wei owed or held here; this request may cost up to ${max} wei.`, 'payment_insufficient_deposit', { quote: max, resource, session: state })
      let amount = max
      if (free < amount) amount = free
      if (available < amount) amount = available
      this.heldBySession.set(key, held + amount)
      this.heldByPayer.set(payerKey, payerHeld + amount)
      const stored = s
      let done = false
      const unhold = (): void => {
        if (done) return
        done = true
        dec(this.heldBySession, key, amount)
        dec(this.heldByPayer, payerKey, amount)
      }
      return {
        amount,
        payer: a.payer,
        session: a.session,
        release: unhold,
        commit: async (cost, target) => await this.serial(payerKey, async () => {
          if (done) throw new Error('reservation already settled')
          unhold()
          const cur = await this.repo.get(key) ?? stored
          // a bound raised meanwhile by another request of the same session is kept
          const base = cur.maxAmount >= stored.maxAmount ? cur : { ...cur, maxAmount: stored.maxAmount, expiry: stored.expiry, signature: stored.signature }
          const charged = cost <= 0n ? 0n : cost > amount ? amount : cost
          if (charged === 0n) return { charged, spent: base.spent, maxAmount: base.maxAmount }
          const channels = [...base.channels]
          const i = channels.findIndex(c => c.miner.toLowerCase() === target.miner.toLowerCase() && c.podId.toLowerCase() === target.podId.toLowerCase() && c.podDeployer.toLowerCase() === target.pod.deployer.toLowerCase() && c.podBps === target.pod.bps && c.pool === target.pool)
          if (i >= 0) channels[i] = { ...channels[i]!, cumulativeAmount: channels[i]!.cumulativeAmount + charged }
          else channels.push({ miner: target.miner, podId: target.podId, podDeployer: target.pod.deployer, podBps: target.pod.bps, pool: target.pool, cumulativeAmount: charged, settled: 0n })
          const next = { ...base, spent: base.spent + charged, channels }
          await this.repo.put(key, next)
          return { charged, spent: next.spent, maxAmount: next.maxAmount }
        })
      }
    })
  }

  /** What the payer's sessions here owe and are not settled yet. */
  private async unsettledOf (payer: string): Promise<bigint> {
    const prefix = payer.toLowerCase() + ':'
    let total = 0n
    for (const [, s] of await this.repo.entries({ gte: prefix, lt: prefix + '\xff', limit: this.o.maxSessions })) total += unsettled(s)
    return total
  }

  async sessions (limit = this.o.maxSessions): Promise<PayerSession[]> {
    return (await this.repo.entries({ limit })).map(([, s]) => s)
  }

  /**
   * Settles the sessions that owe the threshold or are near expiry, and every session that owes
   * anything once the chain's epoch has moved on (a miner's points for the ended epoch count only
   * the settlements inside its redemption window: economics/paid-points); forgets expired ones
   * that owe nothing.
   */
  async settleDue (): Promise<void> {
    const now = BigInt(this.o.now())
    const soon = now + BigInt(this.o.settleMarginSeconds)
    const epoch = this.chain.currentEpoch === undefined ? null : await this.chain.currentEpoch().catch(() => null)
    const ended = epoch !== null && this.lastEpoch !== null && epoch > this.lastEpoch
    if (epoch !== null) this.lastEpoch = epoch
    if (ended) this.stats.epochPasses++
    for (const s of await this.sessions()) {
      const owe = unsettled(s)
      if (owe > 0n && (ended || owe >= this.o.settleThresholdWei || s.expiry <= soon)) await this.settle(s.payer, s.session)
      // an expired authorization is refused before its session is read: nothing needs it any more
      else if (owe === 0n && s.expiry < now) {
        const key = sessionKey(s.payer, s.session)
        await this.serial(s.payer.toLowerCase(), async () => {
          // under the payer's lock: no job of it in flight, and still nothing owed
          const cur = await this.repo.get(key)
          if (cur !== undefined && unsettled(cur) === 0n && !this.heldBySession.has(key)) await this.repo.del(key)
        })
      }
    }
  }

  async settleAll (): Promise<bigint> {
    let total = 0n
    for (const s of await this.sessions()) if (unsettled(s) > 0n) total += await this.settle(s.payer, s.session)
    return total
  }

  /**
   * Settles one session on chain: one transaction for every job booked on it. A refusal that
   * can never succeed hands the unsettled amounts to the gateway's own vouchers. Returns what
   * was settled (on chain or by fallback).
   */
  async settle (payer: string, session: string): Promise<bigint> {
    const key = sessionKey(payer, session)
    if (this.settling.has(key)) return 0n
    this.settling.add(key)
    try {
      const s = await this.repo.get(key)
      if (s === undefined || unsettled(s) === 0n) return 0n
      const authorization: PaymentAuthorization = { payer: s.payer, frontend: this.o.frontend, session: s.session, maxAmount: s.maxAmount, expiry: s.expiry }
      const allocations: Allocation[] = s.channels.map(c => ({ miner: c.miner, podId: c.podId, podDeployer: c.podDeployer, podBps: c.podBps, pool: c.pool, cumulativeAmount: c.cumulativeAmount }))
      const owe = unsettled(s)
      let fallback = false
      try {
        await this.chain.settleAuthorized(authorization, s.signature, allocations)
      } catch (e) {
        const code = (e as { code?: string }).code ?? ''
        if (!HOPELESS.has(code)) { this.logger.warn({ payer, session, err: (e as Error).message }, 'pay-by-user settlement failed; will retry'); return 0n }
        this.logger.warn({ payer, session, code, err: (e as Error).message }, 'the chain refuses the user\'s settlement: the gateway pays the miners from its own deposit')
        fallback = true
        for (const c of s.channels) {
          const amount = c.cumulativeAmount - c.settled
          if (amount > 0n) await this.onUnsettled({ miner: c.miner, podId: c.podId, pool: c.pool, pod: { deployer: c.podDeployer, bps: c.podBps } }, amount)
        }
      }
      // mark what this snapshot covered; jobs booked meanwhile stay unsettled for the next pass
      await this.serial(payer.toLowerCase(), async () => {
        const cur = await this.repo.get(key)
        if (cur === undefined) return
        const done = new Map(s.channels.map(c => [channelId(c), c.cumulativeAmount]))
        await this.repo.put(key, { ...cur, channels: cur.channels.map(c => { const d = done.get(channelId(c)); return d === undefined || d <= c.settled ? c : { ...c, settled: d } }) })
      })
      this.stats.settlements++
      if (fallback) this.stats.fallback += owe
      else this.stats.settled += owe
      return owe
    } finally {
      this.settling.delete(key)
    }
  }
}

function channelId (c: Pick<Channel, 'miner' | 'podId' | 'podDeployer' | 'podBps' | 'pool'>): string {
  return `${c.miner.toLowerCase()}:${c.podId.toLowerCase()}:${c.podDeployer.toLowerCase()}:${c.podBps}:${c.pool}`
}

function unsettled (s: PayerSession): bigint {
  return s.channels.reduce((t, c) => t + c.cumulativeAmount - c.settled, 0n)
}

function dec (m: Map<string, bigint>, k: string, by: bigint): void {
  const left = (m.get(k) ?? 0n) - by
  if (left > 0n) m.set(k, left)
  else m.delete(k)
}
