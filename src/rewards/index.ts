/**
 * Epochs and rewards (DESIGN.md §4 step 8): the points ledger from gossiped receipts and
 * verdicts, the reward table from `src/economics`, the OpenZeppelin Merkle tree, validators'
 * co-signed roots on `heurist/1/rewards`, and miners' automatic claims.
 *
 *   const epochs = new EpochService({ node, chain, wallet, store, logger, rewardsDir })   // validators
 *   await epochs.start(); await epochs.recordVerdict({ verdict, signature })   // checked: signature, stake
 *   const claimer = new RewardClaimer({ node, chain, store, logger, rewardsDir }, { autoClaim })  // miners
 *   await claimer.start()
 */
export { PointsLedger, MAX_WEIGHT_GIB, POOL_NAMES, receiptEpoch, receiptPoints, relatedParties, capTriples, type PaidTriple, type LedgerEntry, type EpochPoints, type OrganicCheck, type EpochSchedule } from './ledger.js'
export { computeRewardTable, poolAmounts, type RewardTable, type RewardTableInput, type MinerEpoch, type MinerPayout, type PoolTable, type Schedule } from './table.js'
export { tableInput, epochFacts, epochSchedule, everRegistered, minerFacts, payers, chainOrganic, chainPaid, chainTime, paidInEpoch, type PaidWei, slashedSince, slashes, votersOf, MAX_TABLE_MINERS, type EpochChainFacts } from './inputs.js'
export {
  REWARDS_TOPIC, MAX_LEAVES, MAX_PARTS, splitRewardMessage, RewardPartsAssembler, rewardRootMessageSchema, validateRewardMessage, encodeRewardMessage, checkLeaves, onRewardRoots,
  publishRewardRoot, rootDigest, signatureOnly, type RewardRootMessage, type SignedRoot
} from './gossip.js'
export { EpochService, defaultEpochServiceOptions, type EpochServiceOptions, type EpochServiceInit, type EpochRecord, type SignedVerdict } from './epochs.js'
export { RewardClaimer, defaultRewardClaimerOptions, type RewardClaimerOptions, type RewardClaimerInit, type Earning } from './claimer.js'
export { readPointsSnapshot, snapshotPoints, toSnapshot, pointsSnapshotSchema, POINTS_FILE, type PointsSnapshot } from './snapshot.js'
export { estimateReward, type RewardEstimate } from './estimate.js'
export { ledgerEarnings, chainEarnings, reconcileEarnings, chainOrganicCheck, recordClaimFailure, readClaimFailures, writeLedgerReport, readLedgerReport, LEDGER_REPORT_FILE, type LedgerReport, CLAIM_FAILURES_FILE, type EpochEarnings, type LedgerEarnings, type ChainEarnings, type ReceiptLine, type ReceiptStatus, type Gap, type GapCode, type ClaimFailure } from './earnings.js'
