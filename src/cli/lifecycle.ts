import type { Logger } from '../core/logger.js'

/**
 * Graceful shutdown for long-running commands: the first SIGINT/SIGTERM calls `drain` (stop
 * taking work, finish or hand back running jobs, flush the store); a second signal exits at once.
 * Resolves when `drain` has finished, so the command can return and exit 0.
 */
export function untilSignal (logger: Logger, drain: () => Promise<void>): Promise<void> {
  return new Promise((resolve, reject) => {
    let draining = false
    const onSignal = (signal: NodeJS.Signals): void => {
      if (draining) {
        logger.warn({ signal }, 'second signal: exiting now')
        process.exit(1)
      }
      draining = true
      logger.info({ signal }, 'shutting down (send the signal again to exit at once)')
      drain().then(() => {
        process.off('SIGINT', onSignal)
        process.off('SIGTERM', onSignal)
        resolve()
      }, reject)
    }
    process.on('SIGINT', onSignal)
    process.on('SIGTERM', onSignal)
  })
}
