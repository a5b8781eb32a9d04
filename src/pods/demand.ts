import type { Message } from '@libp2p/gossipsub'
import { addressFromPeerId } from '../core/identity.js'
import type { Logger } from '../core/logger.js'
import { isHeuristError } from '../core/errors.js'
import { GossipValidationError, TOPICS, gossipValidatorFn, type HeuristNode } from '../p2p/index.js'
import { decodeDemand, type DemandMessage } from '../gateway/index.js'

/**
 * What miners (and `pod list`) hear on `heurist/1/demand`: each gateway's latest demand
 * message, kept for `ttlMs`, summed per pod. Gateways publish every couple of seconds while
 * they have work waiting and once more when it drops to zero.
 */
export interface DemandBoardOptions {
  /** A gateway's demand counts this long after its last message. Default 10 s (5 gateway intervals). */
  ttlMs: number
  /** Messages faster than this from one gateway are a flood: reject. Default 200 ms. */
  minIntervalMs: number
  /** Most gateways tracked (a flood of identities cannot grow memory). Default 1000. */
  maxGateways: number
  /** Allowed clock difference to the gateway. Default 60 s. */
  maxClockSkewMs: number
  now: () => number
}

export const defaultDemandBoardOptions: DemandBoardOptions = { ttlMs: 10_000, minIntervalMs: 200, maxGateways: 1000, maxClockSkewMs: 60_000, now: Date.now }

/** The demand schema's bound on models per message (gateway/demand.ts). */
const MAX_MODELS_PER_MESSAGE = 64

function reject (code: string, message: string): never { throw new GossipValidationError('reject', code, message) }
function ignore (code: string, message: string): never { throw new GossipValidationError('ignore', code, message) }

/** The gossip rule for demand messages: decodes, checks the signer is the named gateway, rate and age. */
export function createDemandValidator (o: DemandBoardOptions, last: Map<string, { ts: number, at: number }>): (msg: Message) => DemandMessage {
  return (msg) => {
    let d: DemandMessage
    try {
      d = decodeDemand(msg.data)
    } catch (e) {
      if (isHeuristError(e)) reject(e.code, e.message)
      throw e
    }
    if (msg.type !== 'signed') reject('P2P_UNSIGNED', 'unsigned demand message')
    const address = addressFromPeerId(msg.from)
    if (address === null) reject('P2P_BAD_KEY', 'publisher key is not secp256k1')
    if (address.toLowerCase() !== d.gateway.toLowerCase()) reject('P2P_OPERATOR_MISMATCH', `demand for ${d.gateway} signed by ${address}`)
    const now = o.now()
    if (d.ts > now + o.maxClockSkewMs) reject('P2P_FUTURE', 'demand timestamp is in the future')
    if (d.ts + o.ttlMs + o.maxClockSkewMs < now) ignore('P2P_STALE', 'demand message too old')
    const prev = last.get(address.toLowerCase())
    if (prev !== undefined) {
      if (d.ts <= prev.ts) ignore('P2P_DUPLICATE', 'demand not newer than the last one')
      if (now - prev.at < o.minIntervalMs) reject('P2P_RATE_LIMITED', `demand from ${address} faster than one per ${o.minIntervalMs} ms`)
    }
    return d
  }
}

export class DemandBoard {
  private readonly o: DemandBoardOptions
  private readonly last = new Map<string, { ts: number, at: number }>()
  private readonly latest = new Map<string, { at: number, models: Map<string, number> }>()
  private readonly lastSeen = new Map<string, number>()
  private started = false

  constructor (private readonly node: HeuristNode, private readonly logger: Logger, init: Partial<DemandBoardOptions> = {}) {
    this.o = { ...defaultDemandBoardOptions, ...init }
  }

  start (): void {
    if (this.started) return
    this.started = true
    const ps = this.node.pubsub
    ps.topicValidators.set(TOPICS.demand, gossipValidatorFn(TOPICS.demand, createDemandValidator(this.o, this.last), (d: DemandMessage) => { this.record(d) }, this.logger, this.node.stats))
    ps.subscribe(TOPICS.demand)
  }

  stop (): void {
    if (!this.started) return
    this.started = false
    try {
      this.node.pubsub.unsubscribe(TOPICS.demand)
      this.node.pubsub.topicValidators.delete(TOPICS.demand)
    } catch { /* node already stopped */ }
  }

  /** Records one gateway's demand (the validator calls it; tests and local gateways may too). */
  record (d: DemandMessage): void {
    const now = this.o.now()
    const key = d.gateway.toLowerCase()
    if (!this.latest.has(key) && this.latest.size >= this.o.maxGateways) {
      const oldest = this.latest.keys().next().value
      if (oldest !== undefined) { this.latest.delete(oldest); this.last.delete(oldest) }
    }
    // delete before set: Map order is then least recently heard first, so eviction spares live gateways
    this.latest.delete(key)
    this.last.set(key, { ts: d.ts, at: now })
    this.latest.set(key, { at: now, models: new Map(d.models.map(m => [m.id, m.pending])) })
    for (const m of d.models) if (m.pending > 0) { this.lastSeen.delete(m.id); this.lastSeen.set(m.id, now) }
    // ids come from gossip: keep the most recent (as many as the tracked gateways can name) so made-up ids cannot grow memory
    for (const id of this.lastSeen.keys()) {
      if (this.lastSeen.size <= this.o.maxGateways * MAX_MODELS_PER_MESSAGE) break
      this.lastSeen.delete(id)
    }
  }

  /** Pending jobs per model id over the gateways heard within the TTL. */
  totals (): Map<string, number> {
    const now = this.o.now()
    const out = new Map<string, number>()
    for (const [k, g] of this.latest) {
      if (now - g.at > this.o.ttlMs) { this.latest.delete(k); continue }
      for (const [id, n] of g.models) out.set(id, (out.get(id) ?? 0) + n)
    }
    return out
  }

  /** When demand for each model was last seen above zero (unix ms, local clock). */
  lastDemand (): Map<string, number> {
    return new Map(this.lastSeen)
  }
}
