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

export const REWARDS_TOPIC = TOPICS.rewards
/** Leaves per message: ~90 bytes each, well under gossipsub's 1 MiB message bound. */
export const MAX_LEAVES = 8000
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
  leaves: z.array(z.tuple([address, uint])).max(MAX_LEAVES)
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
  const sum = m.leaves.reduce((s, [, a]) => s + BigInt(a), 0n)
  if (sum !== BigInt(m.total)) reject('REWARDS_BAD_TOTAL', 'leaves do not sum to the signed total')
  return { message: m, signer: getAddress(signer) }
}

export function encodeRewardMessage (m: RewardRootMessage): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(m))
}

/** The tree the leaves build, or null when it does not have the message's root. */
export function checkLeaves (m: RewardRootMessage): RewardTree | null {
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
    node.pubsub.topicValidators.set(REWARDS_TOPIC, gossipValidatorFn(REWARDS_TOPIC, validate, (s: SignedRoot) => {
      for (const l of listeners) l(s)
    }, logger, node.stats))
    node.pubsub.subscribe(REWARDS_TOPIC)
  }
  set.add(listener)
  const listeners = set
  return () => { listeners.delete(listener) }
}

export async function publishRewardRoot (node: HeuristNode, m: RewardRootMessage): Promise<void> {
  await node.publish(REWARDS_TOPIC, encodeRewardMessage(m))
}
