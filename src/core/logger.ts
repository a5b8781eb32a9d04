import { pino, type Logger, type Level } from 'pino'
import pretty from 'pino-pretty'

export type { Logger } from 'pino'

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
export type LogLevel = typeof LOG_LEVELS[number]
export type LogFormat = 'json' | 'pretty'

export interface LoggerOptions {
  /** Minimum level written. Default `info`. */
  level: LogLevel
  /** `json` for headless servers; `pretty` for people. Default: pretty on a TTY, json otherwise. */
  format: LogFormat
  /** Where log lines go. Default stderr: stdout is kept for results and `--json` output. */
  destination?: NodeJS.WritableStream
}

/**
 * Any field of this name is replaced before it is written, wherever it sits in the object:
 * no key, password or mnemonic ever reaches a log.
 */
const REDACT = ['password', 'privateKey', 'mnemonic', 'secret', 'apiKey', 'keystore']
const redactPaths = REDACT.flatMap(k => [k, `*.${k}`, `*.*.${k}`])

export function defaultLogFormat (stream: { isTTY?: boolean } = process.stderr): LogFormat {
  return stream.isTTY === true ? 'pretty' : 'json'
}

export function createLogger (options: LoggerOptions): Logger {
  const destination = options.destination ?? process.stderr
  const base = {
    level: options.level as Level | 'silent',
    base: undefined,
    redact: { paths: redactPaths, censor: '[redacted]' }
  }
  if (options.format === 'pretty') {
    const stream = pretty({ destination: destination as never, colorize: (destination as { isTTY?: boolean }).isTTY === true, sync: true, ignore: 'pid,hostname', translateTime: 'HH:MM:ss' })
    return pino(base, stream)
  }
  return pino(base, destination as never)
}

/** A logger that writes nothing: the default for library code and tests. */
export function silentLogger (): Logger {
  return pino({ level: 'silent' })
}
