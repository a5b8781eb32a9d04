import { getAddress } from 'ethers'
import type { Logger } from '../core/logger.js'
import { gossipValidatorFn, receiptHash, verdictTopic, verifyReceipt, type HeuristNode } from '../p2p/index.js'
import { validateVerdictGossip, verdictSigner, type VerdictMessage } from '../validation/index.js'
import type { PointsLedger } from '../rewards/index.js'

export interface OwnVerdictsInit {
  node: HeuristNode
  /** The miner's points ledger (its RewardClaimer's). */
  ledger: PointsLedger
  /** The miner's operator address: verdicts on other miners' receipts are not kept. */
  operator: string
  /** The receipt domain of this deployment: verdicts signed for another chain or contract are ignored. */
  domain: { chainId: number, verifyingContract: string }
  /** Active validator stake; a verdict by a key without any is ignored. */
  stakeOf: (validator: string) => Promise<bigint>
  logger: Logger
}

/**
 * A miner listens to its own shard of the verdicts (verdictTopic: a 256th of them) for verdicts
 * on its own receipts and files them in its points ledger, so `heurist earnings` can say which receipts were sampled and who failed them.
 * Gossip checks as the validators' (schema, size, published by the validator that signed it);
 * before filing, the judged receipt must carry this miner's signature and hash to the verdict's
 * receiptHash, the verdict's EIP-712 signature must be the validator's, for this deployment,
 * and the validator must hold stake. Returns the function that stops listening.
 */
export function hearOwnVerdicts (init: OwnVerdictsInit): () => void {
  const { node, ledger, logger } = init
  const me = init.operator.toLowerCase()
  const file = async (m: VerdictMessage): Promise<void> => {
    if (m.signed.receipt.miner.toLowerCase() !== me) return
    if (m.chainId !== init.domain.chainId || m.verifyingContract.toLowerCase() !== init.domain.verifyingContract.toLowerCase()) return
    // only verdicts on receipts this miner really signed, named by their true hash: a staked
    // validator cannot fill the ledger with verdicts on receipts that never were
    if (!verifyReceipt(m.signed, init.domain, init.operator) || receiptHash(m.signed, init.domain).toLowerCase() !== m.verdict.receiptHash.toLowerCase()) return
    const signer = verdictSigner(m.verdict, m.signature, init.domain)
    if (signer === null || getAddress(signer) !== getAddress(m.verdict.validator)) return
    if (await init.stakeOf(signer) === 0n) return
    await ledger.recordVerdict(m.verdict)
    logger.info({ receiptHash: m.verdict.receiptHash, validator: signer, pass: m.verdict.pass }, 'verdict on one of our receipts')
  }
  const ps = node.pubsub
  const topic = verdictTopic(init.operator)
  ps.topicValidators.set(topic, gossipValidatorFn(topic, validateVerdictGossip, (m: VerdictMessage) => {
    file(m).catch(err => { logger.warn({ err: (err as Error).message }, 'cannot file a verdict') })
  }, logger, node.stats))
  ps.subscribe(topic)
  return () => {
    try { ps.unsubscribe(topic) } catch { /* the node may be stopped already */ }
    ps.topicValidators.delete(topic)
  }
}
