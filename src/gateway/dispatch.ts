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
 *
 * A miner the gateway has not yet seen answer is a claim, not a fact: while others are left to
 * try it gets a short first-output timeout, and once per request a hedge, that is, if it has produced nothing
 * after `hedgeAfterMs`, the best other candidate (a proven one first) starts beside it and
 * whichever produces output first serves the job; the other is aborted. Miners that advertise
 * speed they do not have cost a request at most `hedgeAfterMs`, never a failure.
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

export async function dispatch<R> (ranked: Candidate[], attempt: (c: Candidate, ctx: AttemptContext) => Promise<R>, o: DispatchOptions): Promise<DispatchResult<R>> {
  let attempts = 0
  let lastError: unknown = null
  let timedOut = false
  let hedged = false
  const queue = [...ranked]

  const start = (c: Candidate, firstMs: number, remaining: number, onFirst: (r: Runner<R>) => void): Runner<R> => {
    const ac = new AbortController()
    const r: Runner<R> = { c, ac, startedAt: Date.now(), why: null, progressed: false, done: null as never, cleanup: () => {} }
    const onClient = (): void => { r.why ??= 'client'; ac.abort(new ClientGone('the client disconnected')) }
    o.signal.addEventListener('abort', onClient, { once: true })
    const deadlineTimer = setTimeout(() => { r.why ??= 'deadline'; ac.abort(new Error('request deadline passed')) }, remaining)
    let firstTimer: NodeJS.Timeout | null = setTimeout(() => { r.why ??= 'timeout'; ac.abort(new Error(`no output within ${firstMs} ms`)) }, Math.min(firstMs, remaining))
    const progress = (): void => {
      if (firstTimer !== null) { clearTimeout(firstTimer); firstTimer = null }
      if (!r.progressed && !ac.signal.aborted) { r.progressed = true; onFirst(r) }
    }
    r.cleanup = () => {
      clearTimeout(deadlineTimer)
      if (firstTimer !== null) clearTimeout(firstTimer)
      o.signal.removeEventListener('abort', onClient)
      if (!ac.signal.aborted) ac.abort(new Error('attempt finished'))
    }
    let p: Promise<R>
    try { p = attempt(c, { signal: ac.signal, progress }) } catch (e) { p = Promise.reject(e) }
    r.done = raceAbort(p, ac.signal).then(value => ({ ok: true as const, value }), (error: unknown) => ({ ok: false as const, error }))
    return r
  }

  while (queue.length > 0) {
    const c = queue.shift()!
    if (o.signal.aborted) throw new ClientGone('the client disconnected')
    const remaining = o.deadline - Date.now()
    if (remaining <= 0) break
    if (!o.breakers.allow(c.peerId)) {
      o.metrics?.attempts.inc({ miner: c.peerId, outcome: 'skipped' })
      continue
    }
    const untried = o.untried?.is(c) === true
    // the short wait is for an untried miner with someone to fall back on; the last one left
    // gets the full first-token timeout (an honest new miner on a slow first job is not cut off)
    const firstMs = (x: Candidate): number => o.untried?.is(x) === true && queue.some(y => y !== x && o.breakers.state(y.peerId) !== 'open') ? Math.min(o.untried.firstOutputTimeoutMs, o.firstTokenTimeoutMs) : o.firstTokenTimeoutMs
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
        const allowed = queue.filter(x => o.breakers.state(x.peerId) === 'closed')
        const h = allowed.find(x => !policy.is(x)) ?? allowed[0]
        const left = o.deadline - Date.now()
        if (h === undefined || left <= 0 || !o.breakers.allow(h.peerId)) return
        queue.splice(queue.indexOf(h), 1)
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
    for (const r of runners) {
      if (settled?.r === r) continue
      const res = await r.done
      const error = res.ok ? new Error('outrun') : res.error
      const outcome = r.why === 'client' ? 'aborted' : r.why === 'outrun' ? 'outrun' : r.why !== null ? 'timeout' : 'error'
      o.metrics?.attempts.inc({ miner: r.c.peerId, outcome })
      if (r.why === 'client' || o.signal.aborted) { clientGone = true; continue }
      if (r.why === 'outrun') {
        // an untried miner that stayed silent while a proven one answered has shown it is not
        // what it claims; beaten by another untried one, it only started later: no evidence
        const winner = settled?.r ?? runners.find(x => x.progressed)
        if (o.untried?.is(r.c) === true && !r.progressed && winner !== undefined && o.untried.is(winner.c) === false) o.onFailure?.(r.c, 'outrun')
        o.breakers.release(r.c.peerId)
        continue
      }
      o.breakers.failure(r.c.peerId)
      o.onFailure?.(r.c, r.why === null ? 'error' : 'timeout')
      o.logger.warn({ miner: r.c.peerId, outcome, err: (error as Error).message }, 'miner attempt failed')
      if (r.why === 'deadline' || r.why === 'timeout') timedOut = true
      if (settled === null && r.progressed && o.committed()) committedError = error
    }
    if (settled !== null) {
      o.breakers.success(settled.r.c.peerId)
      o.metrics?.attempts.inc({ miner: settled.r.c.peerId, outcome: 'ok' })
      return { value: settled.value, candidate: settled.r.c, attempts, startedAt: settled.r.startedAt }
    }
    if (clientGone) throw new ClientGone('the client disconnected')
    if (committedError !== null || o.committed()) {
      const e = committedError ?? lastError
      throw new CommittedFailure(`the miner failed mid-stream: ${(e as Error)?.message ?? String(e)}`, { cause: e })
    }
    if (runners.some(r => r.why === 'deadline')) break
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
