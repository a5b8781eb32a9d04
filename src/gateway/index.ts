export * from './types.js'
export { rankCandidates, type RouteFields, type RouteOptions } from './routing.js'
export { CircuitBreakers, defaultBreakerOptions, type BreakerOptions, type BreakerState } from './breaker.js'
export { Accounts, hashApiKey, isWellFormedApiKey, API_KEY_PREFIX, type Account, type Reservation } from './accounts.js'
export { VoucherBook, NO_POD_SHARE, type SignedVoucher, type VoucherSigner, type PodShare } from './vouchers.js'
export { Transcripts, defaultTranscriptOptions, type Transcript, type TranscriptOptions } from './transcripts.js'
export { GatewayMetrics } from './metrics.js'
export { ApiError, defaultRequestLimits, type RequestLimits, type OpenAiErrorBody } from './openai.js'
export { createLocalBackend, type LocalBackendOptions, type LocalLlmEngine, type LocalImageEngine } from './local.js'
export { createGateway, defaultGatewayOptions, type Gateway, type GatewayOptions, type GatewayComponents } from './server.js'
export { createMeshBackend, defaultMeshBackendOptions, type MeshBackend, type MeshBackendOptions } from './mesh.js'
export { demandSchema, buildDemand, decodeDemand, MAX_DEMAND_BYTES, type DemandMessage } from './demand.js'
export { startGatewayService, type GatewayService, type GatewayServiceOptions } from './service.js'
export { VoucherInbox, sendVoucher, decodeVoucherMessage, encodeVoucherMessage, VOUCHER_PROTOCOL, MAX_VOUCHER_BYTES, defaultVoucherInboxOptions, type Redeemer, type VoucherInboxOptions } from './payouts.js'
export { serveTranscripts, fetchTranscript, TRANSCRIPT_PROTOCOL, MAX_TRANSCRIPT_BYTES, type TranscriptServerOptions } from './transcript-protocol.js'
export { billJob, maxUnits, reservationFor, type Bill, type BillInput, type BilledJob, type ReceiptClaim } from './billing.js'
export { ObservedSpeeds, defaultObservedSpeedsOptions, type ObservedSpeedsOptions, type ObservedSnapshot } from './observed.js'
export {
  PayByUser, PaymentRequired, defaultPayByUserOptions, decodePaymentHeader, encodePaymentHeader, networkOf,
  PAYMENT_HEADER, PAYMENT_RESPONSE_HEADER, PAYMENT_SCHEME, X402_VERSION, MAX_PAYMENT_HEADER_BYTES,
  type PayByUserOptions, type PayByUserChain, type PayerSession, type SignedAuthorization, type UserReservation, type ChannelTarget
} from './pay-by-user.js'
export { PARAMETERS, checkParameters, parameterTableMarkdown, type ParamSpec, type ParamStatus, type Endpoint } from './parameters.js'
