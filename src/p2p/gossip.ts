import { TopicValidatorResult, type Message, type TopicValidatorFn } from '@libp2p/gossipsub'
import type { PeerId } from '@libp2p/interface'
import { HeuristError, isHeuristError } from '../core/errors.js'
import { addressFromPeerId } from '../core/identity.js'
import type { Logger } from '../core/logger.js'
import {
  MAX_BYTES, TOPICS, advertSchema, allVerdictTopics, decodeMessage, receiptMessageSchema,
  type Advert, type ReceiptMessage
} from './messages.js'
import { countersigner, receiptHash, verifyReceipt } from './receipts.js'
import { BoundedMap } from './bounded-map.js'

/**
 * Gossip validation, Lodestar-style: each rule is a plain, fast function (schema, size,
 * signature, duplicate, rate) that throws a GossipValidationError carrying the action and a
 * code. One adapter, `gossipValidatorFn`, turns that into Accept / Ignore / Reject for
 * gossipsub and is the only place that logs and counts outcomes (by code, never by message).
 * Reject feeds gossipsub's peer score (invalid message deliveries, see `topicScoreParams`).
 */

export type GossipAction = 'ignore' | 'reject'

export class GossipValidationError extends HeuristError {
  override readonly name = 'GossipValidationError'
  constructor (readonly action: GossipAction, code: string, message: string) {
    super(code, message)
  }
}

function reject (code: string, message: string): never { throw new GossipValidationError('reject', code, message) }
function ignore (code: string, message: string): never { throw new GossipValidationError('ignore', code, message) }

/** A decode error from a peer is the publisher's fault: reject. */
function decodeOrReject<T> (fn: () => T): T {
  try {
    return fn()
  } catch (e) {
    if (isHeuristError(e)) reject(e.code, e.message)
    throw e
  }
}

/** The operator address behind a signed gossip message; unsigned messages are rejected. */
function originAddress (msg: Message): { from: PeerId, address: string } {
  if (msg.type !== 'signed') reject('P2P_UNSIGNED', 'unsigned gossip message')
  const address = addressFromPeerId(msg.from)
  if (address === null) reject('P2P_BAD_KEY', 'publisher key is not secp256k1: no operator address')
  return { from: msg.from, address }
}

export interface AdvertValidatorOptions {
  /** Fewer ms than this between two adverts of one operator is a flood: reject. Default 500 (adverts come every few seconds). */
  minIntervalMs: number
  /** Allowed clock difference to the publisher. Default 30 s. */
  maxClockSkewMs: number
  now: () => number
}

export const defaultAdvertValidatorOptions: AdvertValidatorOptions = { minIntervalMs: 500, maxClockSkewMs: 30_000, now: Date.now }

/** Validates capacity adverts; keeps per-operator state for duplicate and rate checks. */
export function createAdvertValidator (init: Partial<AdvertValidatorOptions> = {}): (msg: Message) => Advert {
  const o = { ...defaultAdvertValidatorOptions, ...init }
  const last = new BoundedMap<{ seq: number, ts: number }>(10_000)
  return (msg) => {
    const advert = decodeOrReject(() => decodeMessage(msg.data, advertSchema, MAX_BYTES.advert, 'capacity advert'))
    const { address } = originAddress(msg)
    if (address.toLowerCase() !== advert.operator.toLowerCase()) reject('P2P_OPERATOR_MISMATCH', `advert for ${advert.operator} signed by ${address}`)
    // per-GPU capacity must describe this advert: placed models among its models, a budget within the GPU
    for (const g of advert.hardware.gpus) {
      if ((g.models ?? []).some(i => i >= advert.models.length)) reject('P2P_BAD_ADVERT', `a GPU lists a model index past the advert's ${advert.models.length} models`)
      if (new Set(g.models ?? []).size !== (g.models ?? []).length) reject('P2P_BAD_ADVERT', 'a GPU lists a model twice')
      if (g.budgetFree !== undefined && g.budgetFree > g.vramTotal) reject('P2P_BAD_ADVERT', `a GPU's free budget (${g.budgetFree}) is over its memory (${g.vramTotal})`)
    }
    const now = o.now()
    if (advert.ts > now + o.maxClockSkewMs) reject('P2P_FUTURE', 'advert timestamp is in the future')
    if (advert.ts + advert.ttlMs + o.maxClockSkewMs < now) ignore('P2P_STALE', 'advert expired')
    const key = address.toLowerCase()
    const prev = last.get(key)
    if (prev !== undefined) {
      if (advert.seq <= prev.seq) ignore('P2P_DUPLICATE', 'advert seq not newer than the last one')
      // The rate is judged on the publisher's own signed timestamps, not on arrival times:
      // gossip paths of different lengths bunch honest adverts together on arrival. A liar
      // cannot run ahead of its clock by more than maxClockSkewMs (P2P_FUTURE above).
      if (advert.ts - prev.ts < o.minIntervalMs) reject('P2P_RATE_LIMITED', `adverts from ${address} faster than one per ${o.minIntervalMs} ms`)
    }
    last.set(key, { seq: advert.seq, ts: advert.ts })
    return advert
  }
}

export interface ReceiptValidatorOptions {
  /** Receipts per second allowed per publisher (token bucket refill). Default 50. */
  ratePerSecond: number
  /** Bucket size. Default 200. */
  burst: number
  now: () => number
}

export const defaultReceiptValidatorOptions: ReceiptValidatorOptions = { ratePerSecond: 50, burst: 200, now: Date.now }

/**
 * Validates gossiped receipts: schema, the miner's EIP-712 signature, the publisher (only the
 * receipt's requester may gossip it: a miner publishing its own receipt first would otherwise
 * take the job id's place, and validators would ask it, not the requester, for the
 * transcript), duplicates, rate.
 */
export function createReceiptValidator (init: Partial<ReceiptValidatorOptions> = {}): (msg: Message) => ReceiptMessage {
  const o = { ...defaultReceiptValidatorOptions, ...init }
  const seen = new BoundedMap<true>(50_000)
  const buckets = new BoundedMap<{ tokens: number, at: number }>(10_000)
  return (msg) => {
    const m = decodeOrReject(() => decodeMessage(msg.data, receiptMessageSchema, MAX_BYTES.receipt, 'receipt'))
    const { address } = originAddress(msg)
    const now = o.now()
    const b = buckets.get(address) ?? { tokens: o.burst, at: now }
    b.tokens = Math.min(o.burst, b.tokens + (now - b.at) * o.ratePerSecond / 1000)
    b.at = now
    if (b.tokens < 1) { buckets.set(address, b); reject('P2P_RATE_LIMITED', `receipts from ${address} over ${o.ratePerSecond}/s`) }
    b.tokens -= 1
    buckets.set(address, b)
    if (!verifyReceipt(m.signed, { chainId: m.chainId, verifyingContract: m.verifyingContract })) reject('P2P_BAD_SIGNATURE', 'receipt not signed by its miner')
    if (address.toLowerCase() !== m.signed.receipt.requester.toLowerCase()) reject('P2P_NOT_REQUESTER', `receipt for requester ${m.signed.receipt.requester} gossiped by ${address}`)
    if (m.measured !== undefined) {
      const rh = receiptHash(m.signed, { chainId: m.chainId, verifyingContract: m.verifyingContract })
      const by = countersigner(rh, BigInt(m.measured.units), m.measured.signature)
      if (by === null || by.toLowerCase() !== address.toLowerCase()) reject('P2P_BAD_COUNTERSIGNATURE', 'measured units not countersigned by the requester')
    }
    const id = m.signed.receipt.jobId + m.signed.receipt.miner
    if (seen.has(id)) ignore('P2P_DUPLICATE', 'receipt already seen')
    seen.set(id, true)
    return m
  }
}

/** Outcome counters, labelled by topic, result and code. */
export class GossipStats {
  readonly counts = new Map<string, number>()
  inc (topic: string, result: string, code: string): void {
    const k = `${topic} ${result} ${code}`
    this.counts.set(k, (this.counts.get(k) ?? 0) + 1)
  }

  get (topic: string, result: string, code?: string): number {
    let n = 0
    for (const [k, v] of this.counts) {
      const [t, r, c] = k.split(' ')
      if (t === topic && r === result && (code === undefined || c === code)) n += v
    }
    return n
  }

  toJSON (): Record<string, number> { return Object.fromEntries(this.counts) }
}

/**
 * The one adapter: runs `validate`, hands an accepted value to `onAccept`, maps a
 * GossipValidationError to Ignore / Reject, logs and counts. Any other exception is a bug in
 * a validator: it is ignored (not the peer's fault) and logged at error level.
 */
export function gossipValidatorFn<T> (topic: string, validate: (msg: Message) => T, onAccept: (value: T, msg: Message) => void, logger: Logger, stats: GossipStats): TopicValidatorFn {
  return (peer, msg) => {
    try {
      const value = validate(msg)
      stats.inc(topic, 'accept', 'OK')
      onAccept(value, msg)
      return TopicValidatorResult.Accept
    } catch (e) {
      if (e instanceof GossipValidationError) {
        stats.inc(topic, e.action, e.code)
        logger.debug({ topic, peer: peer.toString(), action: e.action, code: e.code }, 'gossip message %s', e.action === 'reject' ? 'rejected' : 'ignored')
        return e.action === 'reject' ? TopicValidatorResult.Reject : TopicValidatorResult.Ignore
      }
      stats.inc(topic, 'ignore', 'P2P_VALIDATOR_BUG')
      logger.error({ topic, peer: peer.toString(), err: e }, 'gossip validator threw an unexpected error')
      return TopicValidatorResult.Ignore
    }
  }
}

/**
 * Per-topic score parameters. Only invalid deliveries (Reject) and a small reward for first
 * deliveries count: mesh delivery-rate penalties are off because adverts are low-rate
 * traffic and an honest quiet peer must not be penalized. Five rejected messages in a few
 * seconds (25 × −5 ... squared counter) take a peer below the graylist threshold of −80.
 */
export function topicScoreParams (): Record<string, Record<string, number>> {
  const common = {
    topicWeight: 1,
    timeInMeshWeight: 0.01,
    timeInMeshQuantum: 1000,
    timeInMeshCap: 300,
    firstMessageDeliveriesWeight: 0.5,
    firstMessageDeliveriesDecay: 0.9,
    firstMessageDeliveriesCap: 10,
    meshMessageDeliveriesWeight: 0,
    meshMessageDeliveriesDecay: 0.5,
    meshMessageDeliveriesCap: 100,
    meshMessageDeliveriesThreshold: 1,
    meshMessageDeliveriesWindow: 10,
    meshMessageDeliveriesActivation: 5000,
    meshFailurePenaltyWeight: 0,
    meshFailurePenaltyDecay: 0.5,
    invalidMessageDeliveriesWeight: -5,
    // per decay interval (1 s): the penalty halves in about 7 s, so a peer that stops lying recovers
    invalidMessageDeliveriesDecay: 0.9
  }
  // Verdict shards: only the penalty. A validator is in all 256 meshes; positive terms summed
  // over them would lift any validator above acceptPXThreshold. A verdict on the wrong shard or
  // not published by its validator is rejected and costs the forwarding peer here.
  const penaltyOnly = { ...common, timeInMeshWeight: 0, firstMessageDeliveriesWeight: 0 }
  return { [TOPICS.capacity]: common, [TOPICS.receipts]: common, ...Object.fromEntries(allVerdictTopics().map(t => [t, penaltyOnly])) }
}
