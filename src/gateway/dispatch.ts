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
 *
 * A miner the gateway has not yet seen answer is a claim, not a fact: while others are left to
 * try it gets a short first-output timeout, and once per request a hedge, that is, if it has produced nothing
 * after `hedgeAfterMs`, the best other candidate (a proven one first) starts beside it and
 * whichever produces output first serves the job; the other is aborted. Miners that advertise
 * speed they do not have cost a request at most `hedgeAfterMs`, never a failure.
 *
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
  /** Miners not yet seen to answer: a shorter first-output timeout and one hedged attempt per request. Absent: neither. */
  untried?: UntriedPolicy
  /** Each attempt that failed through the miner (error, timeout, or an untried miner beaten by its hedge). */
  onFailure?: (c: Candidate, why: 'error' | 'timeout' | 'outrun') => void
}

export interface UntriedPolicy {
  is: (c: Candidate) => boolean
  /** First-output timeout for an untried miner. */
  firstOutputTimeoutMs: number
  /** How long an untried miner may stay silent before the hedge starts. */
  hedgeAfterMs: number
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

type Why = 'timeout' | 'deadline' | 'client' | 'outrun' | null

interface Runner<R> {
  c: Candidate
  ac: AbortController
  startedAt: number
  why: Why
  progressed: boolean
  done: Promise<{ ok: true, value: R } | { ok: false, error: unknown }>
  cleanup: () => void
}

export interface DispatchResult<R> {
  value: R
  candidate: Candidate
  attempts: number
  /** When the attempt that served the job started (gateway clock, ms since epoch). */
  startedAt: number
}

/** The old way, a fixed list: candidates in order, skipping open breakers, none waited for. */
export function listSource (ranked: Candidate[], breakers: CircuitBreakers, metrics: GatewayMetrics | null): CandidateSource {
  const queue = [...ranked]
  return {
    next: async () => {
      while (queue.length > 0) {
        const c = queue.shift()!
        if (breakers.allow(c.peerId)) return c
        metrics?.attempts.inc({ miner: c.peerId, outcome: 'skipped' })
      }
      return null
    },
    now: (prefer) => {
      const allowed = queue.filter(x => breakers.state(x.peerId) === 'closed')
      const h = allowed.find(prefer) ?? allowed[0]
      if (h === undefined || !breakers.allow(h.peerId)) return null
      queue.splice(queue.indexOf(h), 1)
      return h
    },
    others: (c) => queue.some(y => y !== c && breakers.state(y.peerId) !== 'open'),
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

export async function dispatch<R> (ranked: Candidate[] | CandidateSource, attempt: (c: Candidate, ctx: AttemptContext) => Promise<R>, o: DispatchOptions): Promise<DispatchResult<R>> {
  const source = Array.isArray(ranked) ? listSource(ranked, o.breakers, o.metrics) : ranked
  let attempts = 0
  let lastError: unknown = null
  let timedOut = false
  let hedged = false
  let requestFault: Extract<AttemptFault, { kind: 'request' }> | null = null

  const start = (c: Candidate, firstMs: number, remaining: number, onFirst: (r: Runner<R>) => void): Runner<R> => {
    const ac = new AbortController()
    const r: Runner<R> = { c, ac, startedAt: Date.now(), why: null, progressed: false, done: null as never, cleanup: () => {} }
    const onClient = (): void => { r.why ??= 'client'; ac.abort(new ClientGone('the client disconnected')) }
    o.signal.addEventListener('abort', onClient, { once: true })
    const deadlineTimer = setTimeout(() => { r.why ??= 'deadline'; ac.abort(new Error('request deadline passed')) }, remaining)
    const armFirst = (): NodeJS.Timeout => setTimeout(() => { r.why ??= 'timeout'; ac.abort(new Error(`no output within ${firstMs} ms`)) }, Math.min(firstMs, Math.max(0, o.deadline - Date.now())))
    let firstTimer: NodeJS.Timeout | null = armFirst()
    const progress = (): void => {
      if (firstTimer !== null) { clearTimeout(firstTimer); firstTimer = null }
      if (!r.progressed && !ac.signal.aborted) { r.progressed = true; onFirst(r) }
    }
    // a job queued on the miner (behind another gateway's) owes no output until it starts
    const waiting = (queued: boolean): void => {
      if (r.progressed || ac.signal.aborted) return
      if (firstTimer !== null) clearTimeout(firstTimer)
      firstTimer = queued ? null : armFirst()
    }
    r.cleanup = () => {
      clearTimeout(deadlineTimer)
      if (firstTimer !== null) clearTimeout(firstTimer)
      o.signal.removeEventListener('abort', onClient)
      if (!ac.signal.aborted) ac.abort(new Error('attempt finished'))
    }
    let p: Promise<R>
    try { p = attempt(c, { signal: ac.signal, progress, waiting }) } catch (e) { p = Promise.reject(e) }
    r.done = raceAbort(p, ac.signal).then(value => ({ ok: true as const, value }), (error: unknown) => ({ ok: false as const, error }))
    return r
  }

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
    const untried = o.untried?.is(c) === true
    // the short wait is for an untried miner with someone to fall back on; the last one left
    // gets the full first-token timeout (an honest new miner on a slow first job is not cut off)
    const firstMs = (x: Candidate): number => o.untried?.is(x) === true && source.others(x) ? Math.min(o.untried.firstOutputTimeoutMs, o.firstTokenTimeoutMs) : o.firstTokenTimeoutMs
    attempts++
    const runners: Array<Runner<R>> = []
    // the first runner to produce output serves the job; any other is aborted at once, so
    // its output never reaches the client
    const onFirst = (winner: Runner<R>): void => {
      for (const x of runners) if (x !== winner && !x.ac.signal.aborted) { x.why ??= 'outrun'; x.ac.abort(new Error('another miner answered first')) }
    }
    runners.push(start(c, firstMs(c), remaining, onFirst))
    let hedgeTimer: NodeJS.Timeout | undefined
    const settled = await new Promise<{ r: Runner<R>, value: R } | null>(resolve => {
      let pending = 0
      let finished = false
      const watch = (r: Runner<R>): void => {
        pending++
        void r.done.then(res => {
          pending--
          if (finished) return
          if (res.ok) { finished = true; resolve({ r, value: res.value }); return }
          lastError = res.error
          if (pending === 0) { finished = true; resolve(null) }
        })
      }
      watch(runners[0]!)
      if (!untried || hedged || o.untried === undefined) return
      const policy = o.untried
      hedgeTimer = setTimeout(() => {
        if (finished || runners[0]!.progressed || o.signal.aborted) return
        const left = o.deadline - Date.now()
        if (left <= 0) return
        // a miner with room now (a proven one first); the hedge never waits in the queue
        const h = source.now(x => !policy.is(x))
        if (h === null) return
        hedged = true
        attempts++
        o.logger.debug({ untried: c.peerId, hedge: h.peerId }, 'untried miner silent: hedging')
        const hr = start(h, firstMs(h), left, onFirst)
        runners.push(hr)
        watch(hr)
      }, Math.min(policy.hedgeAfterMs, remaining))
    })
    clearTimeout(hedgeTimer)
    if (settled !== null) {
      for (const r of runners) if (r !== settled.r && !r.ac.signal.aborted) { r.why ??= 'outrun'; r.ac.abort(new Error('another miner answered first')) }
    }
    await Promise.all(runners.map(async r => await r.done))
    for (const r of runners) r.cleanup()
    // account every runner: the winner's success, the others' failures
    let clientGone = false
    let committedError: unknown = null
    let confirmedFault: Extract<AttemptFault, { kind: 'request' }> | null = null
    for (const r of runners) {
      if (settled?.r === r) continue
      const res = await r.done
      const error = res.ok ? new Error('outrun') : res.error
      if (r.why === 'client' || o.signal.aborted) {
        o.metrics?.attempts.inc({ miner: r.c.peerId, outcome: 'aborted' })
        source.giveBack(r.c)
        o.breakers.release(r.c.peerId)
        clientGone = true
        continue
      }
      if (r.why === 'outrun') {
        o.metrics?.attempts.inc({ miner: r.c.peerId, outcome: 'outrun' })
        // an untried miner that stayed silent while a proven one answered has shown it is not
        // what it claims; beaten by another untried one, it only started later: no evidence
        const winner = settled?.r ?? runners.find(x => x.progressed)
        if (o.untried?.is(r.c) === true && !r.progressed && winner !== undefined && o.untried.is(winner.c) === false) o.onFailure?.(r.c, 'outrun')
        source.giveBack(r.c)
        o.breakers.release(r.c.peerId)
        continue
      }
      const fault: AttemptFault = r.why === null ? classifyFault(error) : { kind: 'miner' }
      source.done(r.c, fault)
      if (fault.kind === 'busy' && !r.progressed) {
        // full, and it said so at once: no failure, the request waits for room again
        o.metrics?.attempts.inc({ miner: r.c.peerId, outcome: 'busy' })
        o.breakers.release(r.c.peerId)
        attempts--
        continue
      }
      if (fault.kind === 'request' && !r.progressed) {
        o.metrics?.attempts.inc({ miner: r.c.peerId, outcome: 'request_error' })
        o.breakers.release(r.c.peerId)
        o.logger.info({ miner: r.c.peerId, code: fault.code }, 'the request cannot be served as asked')
        // a second miner saying the same confirms it; one alone might be lying to dodge the job
        if (requestFault !== null) confirmedFault = fault
        requestFault = fault
        continue
      }
      const outcome = r.why !== null ? 'timeout' : 'error'
      o.metrics?.attempts.inc({ miner: r.c.peerId, outcome })
      o.breakers.failure(r.c.peerId)
      o.onFailure?.(r.c, r.why === null ? 'error' : 'timeout')
      o.logger.warn({ miner: r.c.peerId, outcome, err: (error as Error).message }, 'miner attempt failed')
      if (r.why === 'deadline' || r.why === 'timeout') timedOut = true
      if (settled === null && r.progressed && o.committed()) committedError = error
    }
    if (settled !== null) {
      source.done(settled.r.c, null)
      o.breakers.success(settled.r.c.peerId)
      o.metrics?.attempts.inc({ miner: settled.r.c.peerId, outcome: 'ok' })
      return { value: settled.value, candidate: settled.r.c, attempts, startedAt: settled.r.startedAt }
    }
    if (clientGone) throw new ClientGone('the client disconnected')
    if (confirmedFault !== null) throw requestError(confirmedFault)
    if (committedError !== null || o.committed()) {
      const e = committedError ?? lastError
      throw new CommittedFailure(`the miner failed mid-stream: ${(e as Error)?.message ?? String(e)}`, { cause: e })
    }
    if (runners.some(r => r.why === 'deadline')) break
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
  if (signal.aborted) { p.catch(() => undefined); throw signal.reason }
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
