import { isHeuristError } from '../core/errors.js'

/**
 * Whose fault a failed attempt was, read off the error the backend threw (a HeuristError's
 * code, or the miner's code a mesh error carries in `details.code`):
 * - `busy`: the miner is full and said so at once. Not a failure: no breaker count, the
 *   request waits for room (here or elsewhere).
 * - `request`: the request itself cannot be served (prompt longer than the context, a frame
 *   over the protocol's bound, parameters out of the miner's range). Never a breaker count:
 *   one client must not be able to open every miner's breaker.
 * - `miner`: anything else (an error, a reset, a dead peer, a bad receipt): the breaker counts it.
 */
export type AttemptFault =
  | { kind: 'busy', retryAfterMs: number }
  | { kind: 'request', code: string, message: string }
  | { kind: 'miner' }

/** Miner codes that describe the request, not the miner. */
const REQUEST_CODES: ReadonlySet<string> = new Set([
  'INFERENCE_PROMPT_TOO_LONG',
  'INFERENCE_BAD_SAMPLING',
  'INFERENCE_BAD_CONSTRAINT',
  'P2P_FRAME_TOO_LARGE',
  'P2P_MESSAGE_TOO_LARGE',
  'P2P_SCHEMA'
])

const BUSY_CODES: ReadonlySet<string> = new Set(['P2P_BUSY', 'INFERENCE_BUSY'])

export function classifyFault (e: unknown): AttemptFault {
  if (!isHeuristError(e)) return { kind: 'miner' }
  const inner = typeof e.details?.code === 'string' ? e.details.code : null
  const codes = inner === null ? [e.code] : [e.code, inner]
  if (codes.some(c => BUSY_CODES.has(c))) {
    const hint = e.details?.retryAfterMs
    return { kind: 'busy', retryAfterMs: typeof hint === 'number' && Number.isFinite(hint) ? hint : 0 }
  }
  const req = codes.find(c => REQUEST_CODES.has(c))
  if (req !== undefined) return { kind: 'request', code: req, message: e.message }
  return { kind: 'miner' }
}
