/**
 * `heurist/1/rewards`: a validator's signature of an epoch's reward root, with the root's
 * leaves so every miner can rebuild the tree, check it against the root on chain and take
 * its own proof. The gossip validator checks schema, size, that the signature is the
 * publisher's own and that the leaves sum to the signed total; the slower tree rebuild runs
 * once per (epoch, root) outside gossip, in `checkLeaves`.
 */
import { z } from 'zod'
import { TypedDataEncoder, recoverAddress, getAddress } from 'ethers'
import type { Message } from '@libp2p/gossipsub'
import { heuristDomain, RewardRootTypes } from '../core/typed-data.js'
import { addressFromPeerId } from '../core/identity.js'
import type { Logger } from '../core/logger.js'
import { TOPICS, GossipValidationError, gossipValidatorFn, type HeuristNode } from '../p2p/index.js'
import { buildRewardTree, type Deployment, type RewardTree } from '../chain/index.js'
import { HeuristError } from '../core/errors.js'

export const REWARDS_TOPIC = TOPICS.rewards
/** Leaves per message: ~90 bytes each, well under gossipsub's 1 MiB message bound. */
export const MAX_LEAVES = 8000
/** A root's leaves travel in at most this many messages (512,000 leaves). */
export const MAX_PARTS = 64
export const MAX_REWARD_MESSAGE_BYTES = 1000 * 1024

const address = z.string().regex(/^0x[0-9a-fA-F]{40}$/)
const uint = z.string().regex(/^\d{1,78}$/)

export const rewardRootMessageSchema = z.object({
  v: z.literal(1),
  type: z.literal('reward-root'),
  chainId: z.number().int().positive(),
  emission: address,
  epoch: uint,
  root: z.string().regex(/^0x[0-9a-fA-F]{64}$/),
  total: uint,
  signature: z.string().regex(/^0x[0-9a-fA-F]{130}$/),
  leaves: z.array(z.tuple([address, uint])).max(MAX_LEAVES),
  /** A root with more leaves than one message holds: this message's index and the count (absent = 0 of 1). */
  part: z.number().int().min(0).max(MAX_PARTS - 1).optional(),
  parts: z.number().int().min(2).max(MAX_PARTS).optional(),
  /**
   * A republished signature without its leaves (they went out with the first publication and
   * with the posted root): counts only for a root whose leaves the receiver already checked.
   * Saves every validator resending all leaves every few seconds (6.9 MB at 100,000 miners).
   */
  sigOnly: z.literal(true).optional()
}).strict()
export type RewardRootMessage = z.infer<typeof rewardRootMessageSchema>

export interface SignedRoot { message: RewardRootMessage, signer: string }

function reject (code: string, message: string): never { throw new GossipValidationError('reject', code, message) }
function ignore (code: string, message: string): never { throw new GossipValidationError('ignore', code, message) }

export function rootDigest (where: Pick<Deployment, 'chainId' | 'contracts'>, epoch: bigint, root: string, total: bigint): string {
  return TypedDataEncoder.hash(heuristDomain(where.chainId, where.contracts.Emission), RewardRootTypes, { epoch, root, total })
}

/** Decodes and checks a message for `deployment`; throws GossipValidationError. */
export function validateRewardMessage (deployment: Deployment, data: Uint8Array, publisher: string | null): SignedRoot {
  if (data.byteLength > MAX_REWARD_MESSAGE_BYTES) reject('REWARDS_TOO_LARGE', `reward message over ${MAX_REWARD_MESSAGE_BYTES} bytes`)
  let raw: unknown
  try { raw = JSON.parse(new TextDecoder().decode(data)) } catch { reject('REWARDS_MALFORMED', 'reward message is not JSON') }
  const r = rewardRootMessageSchema.safeParse(raw)
  if (!r.success) reject('REWARDS_MALFORMED', `reward message: ${r.error.issues[0]?.message ?? 'invalid'}`)
  const m = r.data
  if (m.chainId !== deployment.chainId || m.emission.toLowerCase() !== deployment.contracts.Emission.toLowerCase()) ignore('REWARDS_OTHER_CHAIN', 'reward root for another deployment')
  let signer: string
  try { signer = recoverAddress(rootDigest(deployment, BigInt(m.epoch), m.root, BigInt(m.total)), m.signature) } catch { reject('REWARDS_BAD_SIGNATURE', 'unreadable signature') }
  if (publisher === null || signer.toLowerCase() !== publisher.toLowerCase()) reject('REWARDS_BAD_SIGNATURE', 'reward root not signed by its publisher')
  if ((m.part === undefined) !== (m.parts === undefined) || (m.part ?? 0) >= (m.parts ?? 1)) reject('REWARDS_MALFORMED', 'reward message part out of range')
  if (m.sigOnly === true) {
    if (m.leaves.length > 0 || m.parts !== undefined) reject('REWARDS_MALFORMED', 'a signature-only reward message carries no leaves')
    return { message: m, signer: getAddress(signer) }
  }
  // one part of many: the sum is checked once the parts are put together
  if (m.parts === undefined && !leavesSumTo(m.leaves, m.total)) reject('REWARDS_BAD_TOTAL', 'leaves do not sum to the signed total')
  return { message: m, signer: getAddress(signer) }
}

function leavesSumTo (leaves: RewardRootMessage['leaves'], total: string): boolean {
  return leaves.reduce((s, [, a]) => s + BigInt(a), 0n) === BigInt(total)
}

/** The same signature without the leaves (a republish: see `sigOnly`). */
export function signatureOnly (m: RewardRootMessage): RewardRootMessage {
  const { part: _p, parts: _n, leaves: _l, ...base } = m
  return { ...base, leaves: [], sigOnly: true }
}

/** A root message split into parts of at most `perMessage` leaves (one part when they fit). */
export function splitRewardMessage (m: RewardRootMessage, perMessage = MAX_LEAVES): RewardRootMessage[] {
  const { part: _p, parts: _n, ...base } = m
  const size = Math.max(1, Math.min(perMessage, MAX_LEAVES))
  if (m.leaves.length <= size) return [{ ...base }]
  const parts = Math.ceil(m.leaves.length / size)
  if (parts > MAX_PARTS) throw new HeuristError('REWARDS_TOO_MANY_LEAVES', `${m.leaves.length} leaves need ${parts} messages; at most ${MAX_PARTS}`)
  return Array.from({ length: parts }, (_, i) => ({ ...base, leaves: m.leaves.slice(i * size, (i + 1) * size), part: i, parts }))
}

/**
 * Puts split root messages back together, per signer and root; bounded (the oldest unfinished
 * root is dropped first). Returns the whole message once every part is in, else null.
 */
export class RewardPartsAssembler {
  private readonly open = new Map<string, Array<RewardRootMessage['leaves'] | undefined>>()
  constructor (private readonly maxOpen = 64) {}

  add (s: SignedRoot): SignedRoot | null {
    const m = s.message
    if (m.parts === undefined || m.part === undefined) return s
    const key = `${s.signer.toLowerCase()}:${m.epoch}:${m.root.toLowerCase()}:${m.total}:${m.parts}`
    let got = this.open.get(key)
    if (got === undefined) {
      if (this.open.size >= this.maxOpen) { const oldest = this.open.keys().next().value; if (oldest !== undefined) this.open.delete(oldest) }
      got = new Array<RewardRootMessage['leaves'] | undefined>(m.parts).fill(undefined)
      this.open.set(key, got)
    }
    got[m.part] = m.leaves
    if (got.some(p => p === undefined)) return null
    this.open.delete(key)
    const { part: _p, parts: _n, ...base } = m
    const whole = { ...base, leaves: got.flatMap(p => p!) }
    return leavesSumTo(whole.leaves, whole.total) ? { message: whole, signer: s.signer } : null
  }
}

export function encodeRewardMessage (m: RewardRootMessage): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(m))
}

/** The tree the leaves build, or null when it does not have the message's root. */
export function checkLeaves (m: RewardRootMessage): RewardTree | null {
  if (m.sigOnly === true) return null
  const tree = buildRewardTree(m.leaves.map(([account, amount]) => ({ account: getAddress(account), amount: BigInt(amount) })))
  return tree.root.toLowerCase() === m.root.toLowerCase() && tree.total === BigInt(m.total) ? tree : null
}

type Listener = (s: SignedRoot) => void
const hubs = new WeakMap<HeuristNode, Set<Listener>>()

/**
 * Subscribes `node` to the rewards topic (once per node) and calls `listener` for every
 * accepted message. Returns the unsubscribe function for this listener.
 */
export function onRewardRoots (node: HeuristNode, deployment: Deployment, logger: Logger, listener: Listener): () => void {
  let set = hubs.get(node)
  if (set === undefined) {
    const listeners = new Set<Listener>()
    set = listeners
    hubs.set(node, listeners)
    const validate = (msg: Message): SignedRoot => {
      if (msg.type !== 'signed') reject('P2P_UNSIGNED', 'unsigned gossip message')
      return validateRewardMessage(deployment, msg.data, addressFromPeerId(msg.from))
    }
    const parts = new RewardPartsAssembler()
    node.pubsub.topicValidators.set(REWARDS_TOPIC, gossipValidatorFn(REWARDS_TOPIC, validate, (s: SignedRoot) => {
      // listeners see whole roots: a split one once all its parts arrived
      const whole = parts.add(s)
      if (whole !== null) for (const l of listeners) l(whole)
    }, logger, node.stats))
    node.pubsub.subscribe(REWARDS_TOPIC)
  }
  set.add(listener)
  const listeners = set
  return () => { listeners.delete(listener) }
}

/** Publishes a root with its leaves, in as many messages as they need (`perMessage` leaves each). Returns the message count. */
export async function publishRewardRoot (node: HeuristNode, m: RewardRootMessage, perMessage = MAX_LEAVES): Promise<number> {
  const msgs = splitRewardMessage(m, perMessage)
  for (const part of msgs) await node.publish(REWARDS_TOPIC, encodeRewardMessage(part))
  return msgs.length
}
