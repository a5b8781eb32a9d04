/**
 * A circuit breaker per miner: after `failureThreshold` consecutive failures the miner is
 * skipped for `cooldownMs`; then one trial job is let through (half-open), and its outcome
 * closes the breaker again or re-opens it.
 */
export interface BreakerOptions {
  /** Consecutive failures that open the breaker. Default 3: one flaky job is not a dead miner. */
  failureThreshold: number
  /** How long an open breaker skips the miner. Default 15 s, about a libp2p reconnect. */
  cooldownMs: number
  /** Clock, injectable for tests. Default Date.now. */
  now: () => number
}

export const defaultBreakerOptions: BreakerOptions = { failureThreshold: 3, cooldownMs: 15_000, now: Date.now }

export type BreakerState = 'closed' | 'open' | 'half-open'

interface Entry { failures: number, openedAt: number | null, trialInFlight: boolean }

export class CircuitBreakers {
  private readonly options: BreakerOptions
  private readonly entries = new Map<string, Entry>()

  constructor (options: Partial<BreakerOptions> = {}) {
    this.options = { ...defaultBreakerOptions, ...options }
  }

  state (key: string): BreakerState {
    const e = this.entries.get(key)
    if (e?.openedAt == null) return 'closed'
    return this.options.now() - e.openedAt >= this.options.cooldownMs ? 'half-open' : 'open'
  }

  /** Whether a job may go to this miner now; in half-open state only one trial at a time. */
  allow (key: string): boolean {
    const s = this.state(key)
    if (s === 'closed') return true
    if (s === 'open') return false
    const e = this.entries.get(key)!
    if (e.trialInFlight) return false
    e.trialInFlight = true
    return true
  }

  success (key: string): void {
    this.entries.delete(key)
  }

  failure (key: string): void {
    const e = this.entries.get(key) ?? { failures: 0, openedAt: null, trialInFlight: false }
    e.failures++
    e.trialInFlight = false
    if (e.openedAt !== null || e.failures >= this.options.failureThreshold) e.openedAt = this.options.now()
    this.entries.set(key, e)
  }

  /**
   * The job let through ended with no verdict on the miner (it was busy, the request was at
   * fault, the client left): a half-open trial slot is free again, the count is unchanged.
   */
  release (key: string): void {
    const e = this.entries.get(key)
    if (e !== undefined) e.trialInFlight = false
  }

  /** Forgets a miner's history (it left the mesh). */
  forget (key: string): void {
    this.entries.delete(key)
  }
}
