/**
 * One base error for the whole project. `code` is a stable string prefixed by the area
 * (`CONFIG_BAD_VALUE`, `P2P_MESSAGE_TOO_LARGE`, `CHAIN_INSUFFICIENT_STAKE`); `usage` marks a
 * mistake of the user (bad flag, bad config, bad parameter), which the CLI turns into exit 2
 * with no stack trace. Everything else is a runtime failure (exit 1).
 */
export class HeuristError extends Error {
  override readonly name: string = 'HeuristError'
  readonly code: string
  readonly usage: boolean
  readonly details: Record<string, unknown> | undefined

  constructor (code: string, message: string, options: { usage?: boolean, cause?: unknown, details?: Record<string, unknown> } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.code = code
    this.usage = options.usage ?? false
    this.details = options.details
  }
}

/** A user error: bad flag, bad config value, bad parameter. Exit code 2. */
export function usageError (code: string, message: string, details?: Record<string, unknown>): HeuristError {
  return new HeuristError(code, message, { usage: true, details })
}

export function isHeuristError (e: unknown, code?: string): e is HeuristError {
  return e instanceof HeuristError && (code === undefined || e.code === code)
}

/** Throws a HeuristError with `code` when `check` is false (ethers-style assert). */
export function assert (check: unknown, code: string, message: string, options: { usage?: boolean, details?: Record<string, unknown> } = {}): asserts check {
  if (!check) throw new HeuristError(code, message, options)
}
