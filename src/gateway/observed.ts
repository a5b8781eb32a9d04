import type { ModelKind } from '../inference/types.js'
import { BoundedMap } from '../p2p/bounded-map.js'
import type { Candidate } from './types.js'

/**
 * What the gateway saw each miner do, per kind of job: speed (output tokens or images per
 * second on the gateway's clock, first-output time included) and time to first output, as
 * moving averages, with the count of attempts that failed since the last success. Routing
 * ranks by these; a miner's advertised speed is only a prior for one never seen, capped at the
 * best speed actually observed among the candidates, so claiming 10^7 tokens/s buys nothing.
 */
export interface ObservedSpeedsOptions {
  /** Miners remembered (any key can advertise; memory must not grow). Default 4096. */
  maxMiners: number
  /** Weight of the newest observation in the moving averages. Default 0.3. */
  alpha: number
}

export const defaultObservedSpeedsOptions: ObservedSpeedsOptions = { maxMiners: 4096, alpha: 0.3 }

interface Record {
  /** Output per second; 0 until a success. */
  speed: number
  ttftMs: number
  successes: number
  /** Failures since the last success. */
  failures: number
}

export interface ObservedSnapshot { speed: number, ttftMs: number, successes: number, failures: number }

export class ObservedSpeeds {
  private readonly o: ObservedSpeedsOptions
  private readonly book: BoundedMap<Record>

  constructor (init: Partial<ObservedSpeedsOptions> = {}) {
    this.o = { ...defaultObservedSpeedsOptions, ...init }
    this.book = new BoundedMap(this.o.maxMiners)
  }

  private key (peerId: string, kind: ModelKind): string { return `${kind}:${peerId}` }

  /** A job the miner served: `output` tokens (or 1 image) in `ms`, first output after `ttftMs`. */
  success (peerId: string, kind: ModelKind, output: number, ms: number, ttftMs: number): void {
    const k = this.key(peerId, kind)
    const r = this.book.get(k) ?? { speed: 0, ttftMs: 0, successes: 0, failures: 0 }
    const speed = output > 0 ? output / (Math.max(1, ms) / 1000) : 0
    const a = r.successes === 0 ? 1 : this.o.alpha
    r.speed = a * speed + (1 - a) * r.speed
    r.ttftMs = a * Math.max(0, ttftMs) + (1 - a) * r.ttftMs
    r.successes++
    r.failures = 0
    this.book.delete(k)
    this.book.set(k, r)
  }

  /** An attempt that failed through the miner (error, silence, outrun while untried). */
  failure (peerId: string, kind: ModelKind): void {
    const k = this.key(peerId, kind)
    const r = this.book.get(k) ?? { speed: 0, ttftMs: 0, successes: 0, failures: 0 }
    r.failures++
    this.book.delete(k)
    this.book.set(k, r)
  }

  /** Never seen answer nor fail a job of this kind. */
  untried (peerId: string, kind: ModelKind): boolean {
    return !this.book.has(this.key(peerId, kind))
  }

  /** The slowest moving-average time to first output among miners that served a job of this kind; 0 when none has. */
  slowestTtftMs (kind: ModelKind): number {
    let worst = 0
    for (const [k, r] of this.book) if (r.successes > 0 && k.startsWith(`${kind}:`) && r.ttftMs > worst) worst = r.ttftMs
    return worst
  }

  get (peerId: string, kind: ModelKind): ObservedSnapshot | undefined {
    const r = this.book.get(this.key(peerId, kind))
    return r === undefined ? undefined : { ...r }
  }

  /**
   * The speed routing ranks by: the observed one (halved per failure since the last success);
   * for an untried miner its advertised speed, capped at the best observed among `candidates`
   * (uncapped only when none of them has been observed yet).
   */
  rankSpeeds<T extends Candidate> (candidates: readonly T[], kind: ModelKind): T[] {
    let best = -1
    for (const c of candidates) {
      const r = this.book.get(this.key(c.peerId, kind))
      if (r !== undefined && r.successes > 0 && r.speed > best) best = r.speed
    }
    return candidates.map(c => {
      const r = this.book.get(this.key(c.peerId, kind))
      const claim = Number.isFinite(c.speed) && c.speed > 0 ? c.speed : 0
      const speed = r === undefined ? (best < 0 ? claim : Math.min(claim, best)) : r.speed / 2 ** Math.min(r.failures, 30)
      return { ...c, speed }
    })
  }
}
