import type { Logger } from '../core/logger.js'
import type { Candidate } from './types.js'
import type { CircuitBreakers } from './breaker.js'
import type { GatewayMetrics } from './metrics.js'
import { ApiError } from './openai.js'
import { classifyFault, type AttemptFault } from './faults.js'
import type { CandidateSource } from './queue.js'

/**
 * Runs one job on the best miner that answers: candidates are tried in routing order,
 * skipping those whose breaker is open. A miner that errors, dies, or sends nothing before
 * the first-token timeout is abandoned (its job aborted) and the next one is tried, as long
 * as the request's deadline allows and nothing has reached the client yet. Once the client
 * has bytes, a failure is final: the caller reports it in the stream, never restarts silently.
 * With a CandidateSource (the gateway's queue) each next miner is one with room, waited for;
 * a miner's busy reply is no failure (no breaker count): the request waits for room again.
 * A failure the request caused (prompt over the context, frame over the bound) is no miner's
 * fault either: it is confirmed by a second miner when there is one, then answered 400/413.
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
  /** Call when the miner queued the job (true; the first-token timer pauses) or started it (false; it restarts). */
  waiting: (queued: boolean) => void
}

/** Thrown when a failure happens after output reached the client; carries the cause. */
export class CommittedFailure extends Error {
  override readonly name = 'CommittedFailure'
}

export class ClientGone extends Error {
  override readonly name = 'ClientGone'
}

/** The old way, a fixed list: candidates in order, skipping open breakers, none waited for. */
export function listSource (ranked: Candidate[], breakers: CircuitBreakers, metrics: GatewayMetrics | null): CandidateSource {
  let i = 0
  return {
    next: async () => {
      while (i < ranked.length) {
        const c = ranked[i++]!
        if (breakers.allow(c.peerId)) return c
        metrics?.attempts.inc({ miner: c.peerId, outcome: 'skipped' })
      }
      return null
    },
    done: () => {},
    giveBack: () => {}
  }
}

/** The client's answer to a failure the request caused. */
function requestError (f: Extract<AttemptFault, { kind: 'request' }>): ApiError {
  const detail = f.message.replace(/^miner (failed|rejected) the job: /, '').slice(0, 500)
  if (f.code === 'INFERENCE_PROMPT_TOO_LONG') return new ApiError(400, `This model's context cannot hold the prompt: ${detail}`, 'invalid_request_error', 'context_length_exceeded', 'messages')
  if (f.code === 'P2P_FRAME_TOO_LARGE' || f.code === 'P2P_MESSAGE_TOO_LARGE') return new ApiError(413, `The request is larger than a job may be: ${detail}`, 'invalid_request_error', 'request_too_large')
  return new ApiError(400, `The miners cannot run this request: ${detail}`, 'invalid_request_error', 'invalid_value')
}

export async function dispatch<R> (ranked: Candidate[] | CandidateSource, attempt: (c: Candidate, ctx: AttemptContext) => Promise<R>, o: DispatchOptions): Promise<{ value: R, candidate: Candidate, attempts: number }> {
  const source = Array.isArray(ranked) ? listSource(ranked, o.breakers, o.metrics) : ranked
  let attempts = 0
  let lastError: unknown = null
  let timedOut = false
  let requestFault: Extract<AttemptFault, { kind: 'request' }> | null = null
  for (;;) {
    if (o.signal.aborted) throw new ClientGone('the client disconnected')
    if (o.deadline - Date.now() <= 0) break
    const c = await source.next()
    if (c === null) { if (o.signal.aborted) throw new ClientGone('the client disconnected'); break }
    const remaining = o.deadline - Date.now()
    if (o.signal.aborted || remaining <= 0) {
      source.giveBack(c)
      o.breakers.release(c.peerId)
      if (o.signal.aborted) throw new ClientGone('the client disconnected')
      break
    }
    attempts++
    const ac = new AbortController()
    let why: 'timeout' | 'deadline' | 'client' | null = null
    const onClient = (): void => { why ??= 'client'; ac.abort(new ClientGone('the client disconnected')) }
    o.signal.addEventListener('abort', onClient, { once: true })
    const deadlineTimer = setTimeout(() => { why ??= 'deadline'; ac.abort(new Error('request deadline passed')) }, remaining)
    const armFirst = (): NodeJS.Timeout => setTimeout(() => { why ??= 'timeout'; ac.abort(new Error(`no output within ${o.firstTokenTimeoutMs} ms`)) }, Math.min(o.firstTokenTimeoutMs, Math.max(0, o.deadline - Date.now())))
    let firstTimer: NodeJS.Timeout | null = armFirst()
    let produced = false
    const progress = (): void => { produced = true; if (firstTimer !== null) { clearTimeout(firstTimer); firstTimer = null } }
    // a job queued on the miner (behind another gateway's) owes no output until it starts
    const waiting = (queued: boolean): void => {
      if (produced) return
      if (firstTimer !== null) clearTimeout(firstTimer)
      firstTimer = queued ? null : armFirst()
    }
    let fault: AttemptFault | null = null
    let gone = false
    try {
      const value = await raceAbort(attempt(c, { signal: ac.signal, progress, waiting }), ac.signal)
      o.breakers.success(c.peerId)
      o.metrics?.attempts.inc({ miner: c.peerId, outcome: 'ok' })
      return { value, candidate: c, attempts }
    } catch (e) {
      lastError = e
      fault = why === null ? classifyFault(e) : { kind: 'miner' }
      if (why === 'client' || o.signal.aborted) {
        gone = true
        o.metrics?.attempts.inc({ miner: c.peerId, outcome: 'aborted' })
        o.breakers.release(c.peerId)
        throw new ClientGone('the client disconnected')
      }
      if (fault.kind === 'busy' && !o.committed()) {
        // full, and it said so at once: no failure, the request waits for room again
        o.metrics?.attempts.inc({ miner: c.peerId, outcome: 'busy' })
        attempts--
        o.breakers.release(c.peerId)
        continue
      }
      if (fault.kind === 'request' && !o.committed()) {
        o.metrics?.attempts.inc({ miner: c.peerId, outcome: 'request_error' })
        o.breakers.release(c.peerId)
        o.logger.info({ miner: c.peerId, code: fault.code }, 'the request cannot be served as asked')
        // a second miner saying the same confirms it; one alone might be lying to dodge the job
        if (requestFault !== null) throw requestError(fault)
        requestFault = fault
        continue
      }
      const outcome = why !== null ? 'timeout' : 'error'
      o.metrics?.attempts.inc({ miner: c.peerId, outcome })
      o.breakers.failure(c.peerId)
      o.logger.warn({ miner: c.peerId, outcome, err: (e as Error).message }, 'miner attempt failed')
      if (o.committed()) throw new CommittedFailure(`the miner failed mid-stream: ${(e as Error).message}`, { cause: e })
      if (why === 'deadline') { timedOut = true; break }
      if (why === 'timeout') timedOut = true
    } finally {
      if (gone) source.giveBack(c)
      else source.done(c, fault)
      clearTimeout(deadlineTimer)
      if (firstTimer !== null) clearTimeout(firstTimer)
      o.signal.removeEventListener('abort', onClient)
      if (!ac.signal.aborted) ac.abort(new Error('attempt finished'))
    }
  }
  if (requestFault !== null) throw requestError(requestFault)
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
