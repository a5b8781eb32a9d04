import type { Candidate } from './types.js'
import type { CircuitBreakers } from './breaker.js'
import type { GatewayMetrics } from './metrics.js'
import type { AttemptFault } from './faults.js'
import { ApiError } from './openai.js'

/**
 * The gateway's side of backpressure. Each miner may hold `slots × perSlot` of this gateway's
 * jobs at once (its advertised parallel jobs, plus one waiting behind each so a slot never
 * idles for a round trip); a miner that answers `busy` gets nothing more until its hint has
 * passed or one of our jobs on it ends. A request that finds no miner with room waits in its
 * model's queue, served round robin across API keys (one key cannot starve the others), until
 * a miner has room or its deadline passes. Only a full queue refuses: 429 with Retry-After —
 * full by its bounds, or because the work ahead would outlast the new request's deadline (so a
 * request is refused at once rather than timed out in the queue).
 */
export interface QueueOptions {
  /** Requests waiting per model; one more is answered 429. Default 1024. */
  maxQueued: number
  /** Requests one API key may have waiting per model. Default 512: one key cannot fill the queue alone. */
  maxQueuedPerKey: number
  /** Jobs kept in flight on a miner per advertised slot (maxJobs). Default 2: one running, one next in line. */
  perSlot: number
  /** Slots assumed for a miner whose advert gives none. Default 1. */
  defaultSlots: number
  /** A busy miner rests this long when its reply gives no hint; hints are held to 20 ms … 5 s. Default 250 ms. */
  busyBackoffMs: number
  /** While requests wait: how often miners are looked at again (new adverts, cooled breakers, busy hints). Default 100 ms. */
  pollMs: number
  now: () => number
}

export const defaultQueueOptions: QueueOptions = {
  maxQueued: 1024,
  maxQueuedPerKey: 512,
  perSlot: 2,
  defaultSlots: 1,
  busyBackoffMs: 250,
  pollMs: 100,
  now: Date.now
}

/** One request's way to its miners: each `next` waits for one with room; `done` hands the slot back. */
export interface CandidateSource {
  /** The next miner to try, once one has room; null when none is left or the deadline passed or the client left. */
  next: () => Promise<Candidate | null>
  /** A miner with room right now, `prefer`red ones first, or null; never waits (a hedge beside a running attempt). */
  now: (prefer: (c: Candidate) => boolean) => Candidate | null
  /** Whether a miner other than `c` is left to try (so an untried `c` may get a shorter first-output timeout). */
  others: (c: Candidate) => boolean
  /** The attempt on `c` ended: null = served; otherwise whose fault (see faults.ts). */
  done: (c: Candidate, fault: AttemptFault | null) => void
  /** `c` was not used after all (the client left, the deadline passed): its slot goes back, nothing learned. */
  giveBack: (c: Candidate) => void
}

export interface SourceInit {
  modelId: string
  /** API key hash (the fairness key). */
  key: string
  /** Miners for the model, best first; called again at each pick (adverts change). */
  rank: () => Candidate[]
  breakers: CircuitBreakers
  deadline: number
  signal: AbortSignal
}

interface MinerState { inFlight: number, blockedUntil: number }

type Pick = Candidate | 'wait' | 'none'

interface Waiter {
  key: string
  enqueuedAt: number
  pick: () => Pick
  grant: (c: Candidate | null) => void
}

interface ModelQueue {
  /** Waiters per key, keys in round-robin order. */
  byKey: Map<string, Waiter[]>
  order: string[]
  turn: number
  size: number
}

export class RequestQueue {
  private readonly o: QueueOptions
  private readonly miners = new Map<string, MinerState>()
  private readonly models = new Map<string, ModelQueue>()
  /** Moving average of a served job's time on a miner per model, ms (for Retry-After). */
  private readonly jobMs = new Map<string, number>()
  private timer: NodeJS.Timeout | null = null

  constructor (private readonly metrics: GatewayMetrics | null, init: Partial<QueueOptions> = {}) {
    this.o = { ...defaultQueueOptions, ...init }
  }

  /** Requests waiting for `modelId` (all models when omitted). */
  depth (modelId?: string): number {
    if (modelId !== undefined) return this.models.get(modelId)?.size ?? 0
    let n = 0
    for (const q of this.models.values()) n += q.size
    return n
  }

  /** This gateway's jobs in flight on a miner. */
  inFlight (peerId: string): number { return this.miners.get(peerId)?.inFlight ?? 0 }

  limit (c: Candidate): number {
    const slots = c.slots !== undefined && c.slots > 0 ? c.slots : this.o.defaultSlots
    return Math.max(1, Math.ceil(slots * this.o.perSlot))
  }

  private state (peerId: string): MinerState {
    let s = this.miners.get(peerId)
    if (s === undefined) { s = { inFlight: 0, blockedUntil: 0 }; this.miners.set(peerId, s) }
    return s
  }

  private hasRoom (c: Candidate, now: number): boolean {
    const s = this.miners.get(c.peerId)
    return s === undefined || (s.inFlight < this.limit(c) && s.blockedUntil <= now)
  }

  private modelQueue (modelId: string): ModelQueue {
    let q = this.models.get(modelId)
    if (q === undefined) { q = { byKey: new Map(), order: [], turn: 0, size: 0 }; this.models.set(modelId, q) }
    return q
  }

  /** A request's source of miners; see CandidateSource. */
  source (r: SourceInit): CandidateSource {
    const tried = new Set<string>()
    const started = new Map<string, number>()
    let waited = false
    let requeue = false
    const pick = (): Pick => {
      const now = this.o.now()
      let alive = false
      for (const c of r.rank()) {
        if (tried.has(c.peerId)) continue
        const state = r.breakers.state(c.peerId)
        if (state === 'open') continue
        alive = true
        if (!this.hasRoom(c, now)) continue
        // allow() takes the half-open trial; a miner whose trial is out is passed over
        if (!r.breakers.allow(c.peerId)) continue
        return c
      }
      return alive ? 'wait' : 'none'
    }
    const take = (c: Candidate): Candidate => {
      const st = this.state(c.peerId)
      st.inFlight++
      this.metrics?.minerInFlight.set({ miner: c.peerId }, st.inFlight)
      started.set(c.peerId, this.o.now())
      return c
    }
    return {
      now: (prefer) => {
        const at = this.o.now()
        const open = r.rank().filter(c => !tried.has(c.peerId) && !started.has(c.peerId) && r.breakers.state(c.peerId) === 'closed' && this.hasRoom(c, at))
        const h = open.find(prefer) ?? open[0]
        if (h === undefined || !r.breakers.allow(h.peerId)) return null
        return take(h)
      },
      others: (c) => r.rank().some(x => x.peerId !== c.peerId && !tried.has(x.peerId) && r.breakers.state(x.peerId) !== 'open'),
      next: async () => {
        if (r.signal.aborted || this.o.now() >= r.deadline) return null
        const q = this.modelQueue(r.modelId)
        // first come first served: a new request goes behind those waiting; one that was
        // already served a turn (its miner was busy) may take a free miner at once
        if (q.size === 0 || requeue) {
          const p = pick()
          if (p === 'none') return null
          if (p !== 'wait') { if (!waited) this.metrics?.queueWait.observe(0); waited = true; return take(p) }
        }
        const c = await this.wait(q, r, pick, take, requeue)
        waited = true
        return c
      },
      done: (c, fault) => {
        const s = this.state(c.peerId)
        s.inFlight = Math.max(0, s.inFlight - 1)
        this.metrics?.minerInFlight.set({ miner: c.peerId }, s.inFlight)
        const now = this.o.now()
        const t0 = started.get(c.peerId)
        started.delete(c.peerId)
        if (fault === null) {
          const avg = this.jobMs.get(r.modelId)
          if (t0 !== undefined) this.jobMs.set(r.modelId, avg === undefined ? now - t0 : 0.9 * avg + 0.1 * (now - t0))
          // a job of ours ended: whatever made the miner busy has one job fewer
          s.blockedUntil = 0
        } else if (fault.kind === 'busy') {
          const hint = fault.retryAfterMs > 0 ? fault.retryAfterMs : this.o.busyBackoffMs
          s.blockedUntil = now + Math.min(5000, Math.max(20, hint))
          requeue = true
          this.metrics?.busy.inc({ miner: c.peerId })
        } else {
          // this request does not go back to a miner that failed it or refused it as malformed
          tried.add(c.peerId)
          requeue = true
          if (fault.kind === 'miner') s.blockedUntil = 0
        }
        if (s.inFlight === 0 && s.blockedUntil <= now) this.miners.delete(c.peerId)
        this.pumpAll()
      },
      giveBack: (c) => {
        const s = this.state(c.peerId)
        s.inFlight = Math.max(0, s.inFlight - 1)
        this.metrics?.minerInFlight.set({ miner: c.peerId }, s.inFlight)
        started.delete(c.peerId)
        if (s.inFlight === 0 && s.blockedUntil <= this.o.now()) this.miners.delete(c.peerId)
        this.pumpAll()
      }
    }
  }

  /** Queues the request until `pick` finds it a miner; `take` counts the grant at once (before other grants in the same pump). */
  private async wait (q: ModelQueue, r: SourceInit, pick: () => Pick, take: (c: Candidate) => Candidate, front: boolean): Promise<Candidate | null> {
    if (!front && q.size >= this.o.maxQueued) throw this.full(q, r.modelId, `The queue for this model is full (${q.size} requests waiting); retry after the Retry-After interval.`)
    const mine = q.byKey.get(r.key)
    if (!front && mine !== undefined && mine.length >= this.o.maxQueuedPerKey) throw this.full(q, r.modelId, `This API key has ${mine.length} requests waiting for this model, the most one key may; retry after the Retry-After interval.`)
    // a queue that would outlast this request's deadline is full for it: 429 now, not 504 later
    const expected = this.expectedWaitMs(q, r)
    if (!front && expected !== null && expected > 0.8 * (r.deadline - this.o.now())) throw this.full(q, r.modelId, `The queue for this model would not reach this request before its deadline (about ${Math.ceil(expected / 1000)} s of work waiting); retry after the Retry-After interval.`, expected)
    return await new Promise<Candidate | null>(resolve => {
      let timer: NodeJS.Timeout | undefined
      const w: Waiter = {
        key: r.key,
        enqueuedAt: this.o.now(),
        pick,
        grant: (c) => {
          if (c !== null) take(c)
          clearTimeout(timer)
          r.signal.removeEventListener('abort', onAbort)
          this.metrics?.queueWait.observe((this.o.now() - w.enqueuedAt) / 1000)
          resolve(c)
        }
      }
      const leave = (): void => { if (this.remove(q, r.modelId, w)) w.grant(null) }
      const onAbort = (): void => { leave() }
      timer = setTimeout(leave, Math.max(0, r.deadline - this.o.now()))
      r.signal.addEventListener('abort', onAbort, { once: true })
      this.add(q, r.modelId, w, front)
      this.pump(q, r.modelId)
    })
  }

  /**
   * How long the queue ahead takes to drain: its requests at the pace jobs of this model have
   * been taking, over the room the miners give this gateway, plus the jobs running now. Null
   * before any job was timed. Admission keeps a fifth of the deadline as margin (paces vary).
   */
  private expectedWaitMs (q: ModelQueue, r: SourceInit): number | null {
    const per = this.jobMs.get(r.modelId)
    if (per === undefined) return null
    let room = 0
    for (const c of r.rank()) if (r.breakers.state(c.peerId) !== 'open') room += this.limit(c)
    // the jobs running now are ahead too: one more job's time covers them
    return (q.size + 1) * per / Math.max(1, room) + per
  }

  private full (q: ModelQueue, modelId: string, message: string, expectedMs?: number): ApiError {
    this.metrics?.queueRejected.inc({ model: modelId })
    // the queue ahead drained by the miners at the pace jobs have been taking
    let slots = 0
    for (const s of this.miners.values()) slots += Math.max(1, s.inFlight)
    const ms = expectedMs ?? (q.size + 1) * (this.jobMs.get(modelId) ?? 1000) / Math.max(1, slots)
    const seconds = Math.min(60, Math.max(1, Math.ceil(ms / 1000)))
    return new ApiError(429, message, 'requests', 'rate_limit_exceeded', null, { 'retry-after': String(seconds), 'retry-after-ms': String(Math.max(1000, Math.min(60_000, Math.round(ms)))) })
  }

  private add (q: ModelQueue, modelId: string, w: Waiter, front: boolean): void {
    let list = q.byKey.get(w.key)
    if (list === undefined) { list = []; q.byKey.set(w.key, list); q.order.push(w.key) }
    if (front) list.unshift(w)
    else list.push(w)
    q.size++
    this.metrics?.queueDepth.set({ model: modelId }, q.size)
    if (this.timer === null) {
      this.timer = setInterval(() => { this.pumpAll() }, this.o.pollMs)
      this.timer.unref()
    }
  }

  private remove (q: ModelQueue, modelId: string, w: Waiter): boolean {
    const list = q.byKey.get(w.key)
    const i = list?.indexOf(w) ?? -1
    if (list === undefined || i < 0) return false
    list.splice(i, 1)
    q.size--
    if (list.length === 0) {
      q.byKey.delete(w.key)
      const k = q.order.indexOf(w.key)
      q.order.splice(k, 1)
      if (k < q.turn) q.turn--
      if (q.turn >= q.order.length) q.turn = 0
    }
    this.metrics?.queueDepth.set({ model: modelId }, q.size)
    if (this.timer !== null && this.depth() === 0) { clearInterval(this.timer); this.timer = null }
    return true
  }

  /** Grants miners with room to waiting requests, one key at a time in turn. */
  private pump (q: ModelQueue, modelId: string): void {
    for (let guard = 0; q.size > 0 && guard < 100_000; guard++) {
      let granted = false
      for (let i = 0; i < q.order.length; i++) {
        const idx = (q.turn + i) % q.order.length
        const key = q.order[idx]!
        const w = q.byKey.get(key)![0]!
        const p = w.pick()
        if (p === 'wait') continue
        // the next turn goes to the key after this one
        q.turn = idx + 1
        this.remove(q, modelId, w)
        w.grant(p === 'none' ? null : p)
        granted = true
        break
      }
      if (!granted) return
    }
  }

  private pumpAll (): void {
    for (const [modelId, q] of this.models) if (q.size > 0) this.pump(q, modelId)
  }

  /** Stops the poll timer; waiting requests are left to their deadlines. */
  stop (): void {
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
  }
}
