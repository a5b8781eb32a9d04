import { isHeuristError } from '../core/errors.js'
import { MAX_BYTES, PROTOCOL_VERSION, decodeMessage, encodeMessage, requestFrameSchema, type JobRequest } from '../p2p/index.js'
import { ApiError, badRequest } from './openai.js'

/**
 * What a miner would refuse for the request alone, found before any miner is asked: the job
 * frame as it will travel, decoded with the miner's own bound and schema. A request that
 * fails here is answered 413/400 at once and never reaches a miner, so it can never count
 * against one (issue: three 300 KB chats used to open every miner's breaker).
 */
export function jobFrameProblem (job: JobRequest): ApiError | null {
  // a model id the schema accepts stands in for pods named otherwise; the rest is the real frame
  const frame = { v: PROTOCOL_VERSION, type: 'request', jobId: '0x' + '0'.repeat(64), timeoutMs: 3_600_000, ...job, modelId: '0'.repeat(64) }
  try {
    decodeMessage(encodeMessage(frame), requestFrameSchema, MAX_BYTES.request, 'job request')
    return null
  } catch (e) {
    if (isHeuristError(e, 'P2P_MESSAGE_TOO_LARGE')) {
      return new ApiError(413, `The request is too large for a job: miners take at most ${MAX_BYTES.request} bytes of prompt and parameters (${e.message}); shorten the messages.`, 'invalid_request_error', 'request_too_large', 'messages')
    }
    const m = isHeuristError(e) ? e.message : String(e)
    return badRequest(`The request cannot be sent to a miner: ${m.replace(/^job request: /, '')}`, null, 'invalid_value')
  }
}
