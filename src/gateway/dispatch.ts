import type { Logger } from '../core/logger.js'
import type { Candidate } from './types.js'
import type { CircuitBreakers } from './breaker.js'
import type { GatewayMetrics } from './metrics.js'
import { ApiError } from './openai.js'

/**
 * Runs one job on the best miner that answers: candidates are tried in routing order,
 * skipping those whose breaker is open. A miner that errors, dies, or sends nothing before
 * the first-token timeout is abandoned (its job aborted) and the next one is tried, as long
 * as the request's deadline allows and nothing has reached the client yet. Once the client
 * has bytes, a failure is final: the caller reports it in the stream, never restarts silently.
 */
export interface DispatchOptions {
  /** Wall-clock time (ms since epoch) by which the request must be done. */
  deadline: number
  /** An attempt that produces nothing for this long is abandoned for the next miner. */
  firstTokenTimeoutMs: number
  /** The client's signal: aborted when it disconnects. */
  signal: AbortSignal
  breakers: CircuitBreakers
  metrics: GatewayMetrics | null
  logger: Logger
  /** True once bytes of this job's output have reached the client. */
  committed: () => boolean
}

export interface AttemptContext {
  signal: AbortSignal
  /** Call when the miner produced something (a token, a progress step): the first-token timer stops. */
  progress: () => void
}

/** Thrown when a failure happens after output reached the client; carries the cause. */
export class CommittedFailure extends Error {
  override readonly name = 'CommittedFailure'
}

export class ClientGone extends Error {
  override readonly name = 'ClientGone'
}

export async function dispatch<R> (ranked: Candidate[], attempt: (c: Candidate, ctx: AttemptContext) => Promise<R>, o: DispatchOptions): Promise<{ value: R, candidate: Candidate, attempts: number }> {
  let attempts = 0
  let lastError: unknown = null
  let timedOut = false
  for (const c of ranked) {
    if (o.signal.aborted) throw new ClientGone('the client disconnected')
    const remaining = o.deadline - Date.now()
    if (remaining <= 0) break
    if (!o.breakers.allow(c.peerId)) {
      o.metrics?.attempts.inc({ miner: c.peerId, outcome: 'skipped' })
      continue
    }
    attempts++
    const ac = new AbortController()
    let why: 'timeout' | 'deadline' | 'client' | null = null
    const onClient = (): void => { why ??= 'client'; ac.abort(new ClientGone('the client disconnected')) }
    o.signal.addEventListener('abort', onClient, { once: true })
    const deadlineTimer = setTimeout(() => { why ??= 'deadline'; ac.abort(new Error('request deadline passed')) }, remaining)
    let firstTimer: NodeJS.Timeout | null = setTimeout(() => { why ??= 'timeout'; ac.abort(new Error(`no output within ${o.firstTokenTimeoutMs} ms`)) }, Math.min(o.firstTokenTimeoutMs, remaining))
    const progress = (): void => { if (firstTimer !== null) { clearTimeout(firstTimer); firstTimer = null } }
    try {
      const value = await raceAbort(attempt(c, { signal: ac.signal, progress }), ac.signal)
      o.breakers.success(c.peerId)
      o.metrics?.attempts.inc({ miner: c.peerId, outcome: 'ok' })
      return { value, candidate: c, attempts }
    } catch (e) {
      lastError = e
      const outcome = why === 'client' ? 'aborted' : why !== null ? 'timeout' : 'error'
      o.metrics?.attempts.inc({ miner: c.peerId, outcome })
      if (why === 'client' || o.signal.aborted) throw new ClientGone('the client disconnected')
      o.breakers.failure(c.peerId)
      o.logger.warn({ miner: c.peerId, outcome, err: (e as Error).message }, 'miner attempt failed')
      if (o.committed()) throw new CommittedFailure(`the miner failed mid-stream: ${(e as Error).message}`, { cause: e })
      if (why === 'deadline') { timedOut = true; break }
      if (why === 'timeout') timedOut = true
    } finally {
      clearTimeout(deadlineTimer)
      if (firstTimer !== null) clearTimeout(firstTimer)
      o.signal.removeEventListener('abort', onClient)
      if (!ac.signal.aborted) ac.abort(new Error('attempt finished'))
    }
  }
  if (attempts === 0 && !timedOut && Date.now() < o.deadline) {
    throw new ApiError(503, 'No miner is available for this model right now; try again shortly.', 'server_error', 'no_miner_available')
  }
  if (timedOut || Date.now() >= o.deadline) {
    throw new ApiError(504, `No miner answered within the request's deadline (${attempts} tried).`, 'server_error', 'timeout')
  }
  throw new ApiError(502, `Every miner tried failed (${attempts}); last error: ${(lastError as Error)?.message ?? String(lastError)}`, 'server_error', 'miner_failed')
}

/** Settles as soon as `signal` aborts, even if the attempt ignores its signal. */
async function raceAbort<R> (p: Promise<R>, signal: AbortSignal): Promise<R> {
  if (signal.aborted) throw signal.reason
  let onAbort: (() => void) | undefined
  const aborted = new Promise<never>((_resolve, reject) => {
    onAbort = () => { reject(signal.reason) }
    signal.addEventListener('abort', onAbort, { once: true })
  })
  try {
    return await Promise.race([p, aborted])
  } finally {
    signal.removeEventListener('abort', onAbort!)
    p.catch(() => undefined)
  }
}
