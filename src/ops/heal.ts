import type { Logger } from '../core/logger.js'
import type { Alerts } from './alerts.js'

export interface BackoffOptions {
  /** First restart delay. Default 1 s. */
  initialMs: number
  /** Delays double up to this. Default 60 s. */
  maxMs: number
  /** A part that stayed up this long starts again from initialMs. Default 5 min. */
  resetAfterMs: number
}

export const defaultBackoffOptions: BackoffOptions = { initialMs: 1000, maxMs: 60_000, resetAfterMs: 300_000 }

export interface PartSupervisorInit<T> {
  /** What the logs and alerts call the part (`engine`, `mesh`). */
  name: string
  /** Starts the part; throws when it cannot (the supervisor retries with backoff). */
  start: () => Promise<T>
  /** Stops a failed instance before the next start; errors are logged, not fatal. */
  stop: (part: T) => Promise<void>
  logger: Logger
  alerts: Alerts
  /** Told of each start that failed (a model that no longer loads alerts model_load_failed). */
  onStartFailed?: (err: Error) => void
}

export interface PartSupervisorStats { restarts: number, failedStarts: number, lastError: string | null }

/**
 * Keeps one part of a node running: `failed(err)` stops the current instance and starts a new
 * one after a backoff delay (doubling per consecutive failure, reset once it stayed up), logged
 * and alerted as `restarted`. Reports that arrive while a restart is under way join it. What
 * lives outside the part (identity, store, vouchers) is untouched.
 */
export class PartSupervisor<T> {
  readonly options: BackoffOptions
  readonly stats: PartSupervisorStats = { restarts: 0, failedStarts: 0, lastError: null }
  private part: T | null = null
  private restarting: Promise<void> | null = null
  private stopped = false
  private delayMs: number
  private upSince = 0
  private timer: NodeJS.Timeout | null = null
  private wake: (() => void) | null = null

  constructor (private readonly init: PartSupervisorInit<T>, options: Partial<BackoffOptions> = {}) {
    this.options = { ...defaultBackoffOptions, ...options }
    this.delayMs = this.options.initialMs
  }

  /** The first start; its failure is the caller's (a node that cannot start at all exits). */
  async start (): Promise<T> {
    this.part = await this.init.start()
    this.upSince = Date.now()
    return this.part
  }

  /** The running instance, or null while it restarts. */
  current (): T | null { return this.part }

  /** Resolves once no restart is under way. */
  async settled (): Promise<void> {
    while (this.restarting !== null) await this.restarting
  }

  failed (err: Error): void {
    if (this.stopped || this.restarting !== null) return
    this.restarting = this.restart(err).finally(() => { this.restarting = null })
  }

  async stop (): Promise<void> {
    this.stopped = true
    if (this.timer !== null) clearTimeout(this.timer)
    this.wake?.()
    await this.restarting
    const p = this.part
    this.part = null
    if (p !== null) await this.init.stop(p).catch(() => {})
  }

  private async restart (err: Error): Promise<void> {
    const { name, logger, alerts } = this.init
    this.stats.lastError = err.message.slice(0, 300)
    if (Date.now() - this.upSince >= this.options.resetAfterMs) this.delayMs = this.options.initialMs
    const old = this.part
    this.part = null
    if (old !== null) await this.init.stop(old).catch((e: unknown) => { logger.warn({ part: name, err: (e as Error).message }, 'stopping the failed part failed') })
    for (let attempt = 1; !this.stopped; attempt++) {
      const wait = this.delayMs
      this.delayMs = Math.min(this.options.maxMs, this.delayMs * 2)
      logger.error({ part: name, attempt, inMs: wait, err: err.message }, `${name} failed: restarting it`)
      alerts.raise('restarted', `${name} failed (${err.message.slice(0, 200)}); restart ${attempt} in ${Math.round(wait / 1000)} s`, { part: name, attempt, reason: err.message.slice(0, 300), inMs: wait })
      await this.sleep(wait)
      if (this.stopped) return
      try {
        this.part = await this.init.start()
        this.upSince = Date.now()
        this.stats.restarts++
        logger.warn({ part: name, attempt }, `${name} restarted`)
        return
      } catch (e) {
        this.stats.failedStarts++
        err = e as Error
        this.stats.lastError = err.message.slice(0, 300)
        this.init.onStartFailed?.(err)
      }
    }
  }

  private async sleep (ms: number): Promise<void> {
    await new Promise<void>(resolve => {
      this.wake = () => { if (this.timer !== null) clearTimeout(this.timer); this.timer = null; this.wake = null; resolve() }
      this.timer = setTimeout(() => { this.wake?.() }, ms)
    })
  }
}
