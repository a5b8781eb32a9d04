import type { Logger } from '../core/logger.js'

/**
 * The poll loop both epoch services run: `step` every `pollMs`, never two at once; a failed
 * step is logged (`<label>: step failed`) and the next one runs as usual. `stop()` ends the
 * timer and waits for the step in flight.
 */
export class PollLoop {
  private timer: NodeJS.Timeout | null = null
  private running: Promise<void> = Promise.resolve()
  private stopped = false

  constructor (private readonly step: () => Promise<void>, private readonly logger: Logger, private readonly label: string) {}

  start (pollMs: number): void {
    this.timer = setInterval(() => { this.tick() }, pollMs)
    this.timer.unref()
  }

  /** Runs one step now (after the one in flight) and waits for it. */
  async run (): Promise<void> {
    this.tick()
    await this.running
  }

  async stop (): Promise<void> {
    this.stopped = true
    if (this.timer !== null) clearInterval(this.timer)
    this.timer = null
    await this.running
  }

  private tick (): void {
    this.running = this.running.then(async () => { if (!this.stopped) await this.step() }).catch(err => {
      this.logger.warn({ err: (err as Error).message, code: (err as { code?: string }).code }, `${this.label}: step failed`)
    })
  }
}
