// Public surface of the mesh: other areas import only from here.
export { HeuristNode, createHeuristNode, defaultHeuristNodeOptions, type HeuristNodeOptions, type HeuristNodeInit } from './node.js'
export { PeerTable, defaultPeerTableOptions, type MinerEntry, type PeerHistory, type PeerTableOptions } from './peer-table.js'
export { Advertiser, advertGpus, advertKey, basicHardware, buildAdvert, type AdvertiserOptions, type AdvertContent, type GpuCapacity } from './adverts.js'
export {
  JobServer, runJob, checkReceipt, RECEIPT_CLOCK_SKEW_S, defaultJobServerOptions, inputHashOf, outputHashOf, paramsHashOf,
  type JobExecutor, type JobOutput, type JobRequest, type JobServerOptions, type JobServerStats, type ExecuteOptions, type RunJobOptions, type RunJobResult,
  vectorToBase64, vectorFromBase64, poolOf, type EmbeddingResult
} from './job.js'
export {
  GossipStats, GossipValidationError, createAdvertValidator, createReceiptValidator, gossipValidatorFn, topicScoreParams,
  type GossipAction, type AdvertValidatorOptions, type ReceiptValidatorOptions
} from './gossip.js'
export {
  JOB_PROTOCOL, MAX_BYTES, PROTOCOL_VERSION, TOPICS, VERDICT_SHARDS, allVerdictTopics, decodeMessage, encodeMessage, isVerdictTopic, verdictShard, verdictTopic,
  advertSchema, receiptMessageSchema, requestFrameSchema, responseFrameSchema, signedReceiptSchema,
  type Advert, type Hardware, type ReceiptMessage, type ReceiptWire, type RequestFrame, type ResponseFrame, type SignedReceipt
} from './messages.js'
export {
  canonicalJson, hashJson, receiptDomain, receiptFromWire, receiptHash, receiptSigner, receiptToWire, sha256Hex, signReceipt,
  unpaidReceiptDomain, verifyReceipt, countersign, countersigner, countersignDigest, type ReceiptDomainOptions
} from './receipts.js'
export {
  Reachability, RelayGuard, advertOrder, checkRelayAddrs, defaultReachabilityOptions, defaultRelayLimits, hasPublicListenAddr, isPrivateIp, isRelayed,
  openStreamPreferDirect, reachabilityOptions,
  type ReachabilityInit, type ReachabilityOptions, type ReachabilityReport, type ReachabilityStatus, type RelayGuardStats, type RelayLimits
} from './reachability.js'
export { probeReachability, type ReachabilityProbeOptions, type ReachabilityProbeResult } from './probe.js'
export { depositAdmission, budgetAdmission, allAdmissions, jobCostBound, type AdmitJob, type AdmissionRefusal, type DepositAdmissionOptions } from './admission.js'
