import type { Message } from '@libp2p/gossipsub'
import { getAddress } from 'ethers'
import { z } from 'zod'
import { isHeuristError } from '../core/errors.js'
import { addressFromPeerId } from '../core/identity.js'
import type { Logger } from '../core/logger.js'
import { GossipValidationError, allVerdictTopics, decodeMessage, encodeMessage, gossipValidatorFn, verdictTopic, type HeuristNode, type SignedReceipt } from '../p2p/index.js'
import { transcriptSchema, type ValidationTranscript } from './transcript.js'
import { MAX_VERDICT_BYTES, verdictMessageSchema, type VerdictMessage } from './verdicts.js'
import { createValidator, type Validator, type ValidatorDeps, type ValidatorOptions } from './validator.js'

/**
 * The validator on the mesh: receipts from `heurist/1/receipts` gossiped by their requester
 * (the gateway that asked for the job and keeps its transcript), transcripts fetched from that
 * requester, verdicts published on the judged miner's shard and heard on every shard of
 * `heurist/1/verdicts/<shard>`.
 */

/** The gateway's stored transcript, as `/heurist/transcript/1.0.0` returns it. */
export interface GatewayTranscript {
  kind: 'llm' | 'image' | 'embedding'
  modelId: string
  input: unknown
  output: unknown
}

export interface ValidatorServiceInit extends Omit<ValidatorDeps, 'fetchTranscript' | 'publish'> {
  node: HeuristNode
  /** Fetches a transcript from the gateway that gossiped the receipt (the gateway area's client). */
  fetchFromGateway: (gatewayPeerId: string, jobId: string, signal: AbortSignal) => Promise<GatewayTranscript>
  options?: Partial<ValidatorOptions>
  /** Every verdict this validator publishes: the epochs service counts its own verdicts too (gossip never delivers them back). */
  onVerdict?: (m: VerdictMessage) => void
}

export interface ValidatorService {
  validator: Validator
  stop: () => void
}

const llmInput = z.object({ input: z.unknown(), sampling: z.unknown() }).passthrough()
const embeddingInput = z.object({ input: z.unknown() }).passthrough()
const imageInput = z.object({ prompt: z.unknown(), negativePrompt: z.unknown(), width: z.unknown(), height: z.unknown(), steps: z.unknown(), guidanceScale: z.unknown(), seed: z.unknown(), scheduler: z.unknown() }).passthrough()

/**
 * The gateway's transcript in the validator's shape, under the receipt's job id; null when it
 * does not parse (then nobody can be judged on it).
 */
export function fromGatewayTranscript (jobId: string, t: GatewayTranscript): ValidationTranscript | null {
  let candidate: unknown
  if (t.kind === 'embedding') {
    const i = embeddingInput.safeParse(t.input)
    if (!i.success) return null
    candidate = { v: 1, kind: 'embedding', jobId, modelId: t.modelId, input: i.data.input, output: t.output }
  } else if (t.kind === 'llm') {
    const i = llmInput.safeParse(t.input)
    if (!i.success) return null
    candidate = { v: 1, kind: 'llm', jobId, modelId: t.modelId, input: i.data.input, sampling: i.data.sampling, ...(i.data.constraint === undefined ? {} : { constraint: i.data.constraint }), output: t.output }
  } else {
    const i = imageInput.safeParse(t.input)
    if (!i.success) return null
    const { prompt, negativePrompt, width, height, steps, guidanceScale, seed, scheduler } = i.data
    const out = (t.output ?? {}) as Record<string, unknown>
    candidate = { v: 1, kind: 'image', jobId, modelId: t.modelId, image: { prompt, negativePrompt, width, height, steps, guidanceScale, seed, scheduler }, output: { pngBase64: '', ...out } }
  }
  const parsed = transcriptSchema.safeParse(candidate)
  return parsed.success ? parsed.data : null
}

export function startValidatorService (init: ValidatorServiceInit): ValidatorService {
  const { node, logger } = init
  // job id → the gateway that gossiped its receipt (bounded: oldest forgotten first)
  const gatewayOf = new Map<string, string>()
  const remember = (jobId: string, peer: string): void => {
    if (gatewayOf.size >= 100_000) { const k = gatewayOf.keys().next().value; if (k !== undefined) gatewayOf.delete(k) }
    gatewayOf.set(jobId, peer)
  }
  const validator = createValidator({
    ...init,
    async fetchTranscript (signed: SignedReceipt, signal: AbortSignal) {
      const gw = gatewayOf.get(signed.receipt.jobId)
      if (gw === undefined) return null
      const t = await init.fetchFromGateway(gw, signed.receipt.jobId, AbortSignal.any([signal, AbortSignal.timeout(20_000)]))
      return fromGatewayTranscript(signed.receipt.jobId, t)
    },
    async publish (m: VerdictMessage) {
      await node.publish(verdictTopic(m.signed.receipt.miner), encodeMessage(m))
      init.onVerdict?.(m)
    }
  }, init.options)

  // only the requester speaks for a receipt (the p2p validator rejects anyone else's; checked
  // again here): its transcript is fetched from the requester, never from whoever was first
  const offReceipts = node.onReceipt((m, from) => {
    const publisher = from === '' ? null : addressFromPeerId(from)
    if (publisher === null || publisher.toLowerCase() !== m.signed.receipt.requester.toLowerCase()) return
    remember(m.signed.receipt.jobId, from)
    validator.onReceipt(m)
  })

  const ps = node.pubsub
  // every shard: a validator re-checks and counts verdicts on any miner
  const topics = allVerdictTopics()
  for (const t of topics) {
    ps.topicValidators.set(t, gossipValidatorFn(t, validateVerdictGossip, (m: VerdictMessage) => {
      validator.onVerdict(m).catch(err => { logger.warn({ err: (err as Error).message }, 'verdict handling failed') })
    }, logger, node.stats))
    ps.subscribe(t)
  }

  return {
    validator,
    stop () {
      offReceipts()
      validator.stop()
      for (const t of topics) {
        try { ps.unsubscribe(t) } catch { /* the node may be stopped already */ }
        ps.topicValidators.delete(t)
      }
    }
  }
}

/**
 * The gossip rule of the verdict shards (validators and miners alike): schema and size, on the
 * judged miner's shard, signed by its publisher, and the publisher is the validator that signed
 * the verdict. A verdict on another shard is rejected (VALIDATION_WRONG_SHARD): an honest
 * validator never sends one, and a miner would otherwise take verdicts on others.
 */
export function validateVerdictGossip (msg: Message): VerdictMessage {
  let m: VerdictMessage
  try {
    m = decodeMessage(msg.data, verdictMessageSchema, MAX_VERDICT_BYTES, 'verdict')
  } catch (e) {
    throw new GossipValidationError('reject', isHeuristError(e) ? e.code : 'VALIDATION_BAD_VERDICT', (e as Error).message)
  }
  if (msg.topic !== verdictTopic(m.signed.receipt.miner)) throw new GossipValidationError('reject', 'VALIDATION_WRONG_SHARD', `verdict on ${msg.topic.slice(0, 64)}, its miner's shard is ${verdictTopic(m.signed.receipt.miner)}`)
  if (msg.type !== 'signed') throw new GossipValidationError('reject', 'P2P_UNSIGNED', 'unsigned verdict')
  const publisher = addressFromPeerId(msg.from)
  if (publisher === null || getAddress(publisher) !== getAddress(m.verdict.validator)) throw new GossipValidationError('reject', 'VALIDATION_NOT_SIGNER', 'verdict published by another key than its validator')
  return m
}
