/**
 * The one error economics throws. `economics` imports nothing of ours (DESIGN.md §2), so it
 * carries its own small class; the CLI maps it to a usage error (exit 2). Codes start ECON_.
 * Every EconomicsError is a bad input (a negative amount, a probability outside its range),
 * never a runtime failure: the functions are pure.
 */
export class EconomicsError extends Error {
  override readonly name: string = 'EconomicsError'
  readonly code: string
  readonly usage = true

  constructor (code: string, message: string) {
    super(message)
    this.code = code
  }
}

export function isEconomicsError (e: unknown): e is EconomicsError {
  return e instanceof EconomicsError
}

/** Throws ECON_NEGATIVE when `value` < 0. */
export function requireNonNegative (name: string, value: bigint): void {
  if (value < 0n) throw new EconomicsError('ECON_NEGATIVE', `${name} must not be negative, got ${value}`)
}

/** Throws ECON_OUT_OF_RANGE unless lo <= value <= hi (bounds inclusive unless said otherwise). */
export function requireRange (name: string, value: bigint, lo: bigint, hi: bigint, opts: { loOpen?: boolean, hiOpen?: boolean, what?: string } = {}): void {
  const okLo = opts.loOpen === true ? value > lo : value >= lo
  const okHi = opts.hiOpen === true ? value < hi : value <= hi
  if (!okLo || !okHi) {
    throw new EconomicsError('ECON_OUT_OF_RANGE', `${name} must be in ${opts.loOpen === true ? '(' : '['}${opts.what ?? `${lo}, ${hi}`}${opts.hiOpen === true ? ')' : ']'}, got ${value}`)
  }
}
