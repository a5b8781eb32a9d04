// Public surface of src/validation (DESIGN.md §7): checks, cheats, verdicts, the validator.
export {
  scoreLlmJob, scorePosition, scoreCompact, windowTest, freedmanThreshold, endThreshold, endPValue, endPValueTest, logGammaTail, defaultLlmCheckOptions,
  type LlmCheckOptions, type LlmJob, type LlmJobScore, type PositionScore, type TeacherForcingModel, type TokenDistribution, type WindowVerdict, type EndPValueVerdict
} from './llm-check.js'
export { scoreImageJob, decodePng, imageRerun, type ImageJobScore, type ImageRerun, type RerunModel } from './image-check.js'
export {
  transcriptSchema, llmTranscriptSchema, imageTranscriptSchema, decodeTranscript, transcriptOf, transcriptMismatch, jobRequestOf, MAX_TRANSCRIPT_BYTES,
  type ValidationTranscript, type LlmTranscript, type ImageTranscript
} from './transcript.js'
export { CHEAT_MODES, LLM_CHEATS, IMAGE_CHEATS, cheatQuant, parseCheatMode, assertCheatAllowed, cheatingExecutor, type CheatMode, type CheatEngines } from './cheats.js'
export {
  REASON, reasonName, MAX_WINDOW, MAX_VERDICT_BYTES, verdictMessageSchema, signVerdictWith, verdictSigner, buildVerdictMessage, QuorumBook,
  type VerdictMessage, type ReasonName
} from './verdicts.js'
export { Validator, createValidator, defaultValidatorOptions, type ValidatorOptions, type ValidatorDeps, type ValidatorStats, type Judgement, type SlashEvidence } from './validator.js'
export { chainStakeViews, chainSlasher, type StakeViews } from './chain.js'
export { startValidatorService, fromGatewayTranscript, validateVerdictGossip, type ValidatorService, type ValidatorServiceInit, type GatewayTranscript } from './service.js'
export { scoreEmbeddings, cosine, EMBEDDING_COSINE_THRESHOLD, type EmbeddingScore } from './embedding-check.js'
