import { EconomicsError } from './errors.js'

/** 1e18: one HEU in wei, and the unit of every `...Wad` fixed-point rate (1.0 = WAD). */
export const WAD = 10n ** 18n
/** Parts per million: the unit of point weights. */
export const PPM = 1_000_000n
/** Basis points: 10,000 = 100 %. */
export const BPS = 10_000n
/** 365 days, the whitepaper's "annual". */
export const YEAR_SECONDS = 31_536_000n
/** Season 2 snapshots are weekly. */
export const WEEK_SECONDS = 604_800n
/** Decimals of HEU and stHEU. */
export const HEU_DECIMALS = 18

/** a * b / d rounded down (all non-negative). */
export function mulDiv (a: bigint, b: bigint, d: bigint): bigint {
  if (d === 0n) throw new EconomicsError('ECON_DIVISION_BY_ZERO', 'division by zero')
  return a * b / d
}

/** a * b / d rounded up (all non-negative). */
export function mulDivUp (a: bigint, b: bigint, d: bigint): bigint {
  if (d === 0n) throw new EconomicsError('ECON_DIVISION_BY_ZERO', 'division by zero')
  const p = a * b
  return p === 0n ? 0n : (p - 1n) / d + 1n
}

/** Floor division for signed values (bigint `/` truncates toward zero). */
export function floorDiv (a: bigint, d: bigint): bigint {
  if (d === 0n) throw new EconomicsError('ECON_DIVISION_BY_ZERO', 'division by zero')
  const q = a / d
  return (a % d !== 0n) && ((a < 0n) !== (d < 0n)) ? q - 1n : q
}

const DECIMAL = /^(\d+)(?:\.(\d+))?$/

/**
 * Parses a plain decimal string ("1.25", "200000") into an integer with `decimals` places,
 * exactly (no floats). Rejects signs, exponents, NaN and more fractional digits than fit.
 * Bounded at 78 digits so a hostile string cannot make a huge bigint.
 */
export function parseUnits (name: string, raw: string, decimals = HEU_DECIMALS): bigint {
  const s = raw.trim()
  if (s.length > 100) throw new EconomicsError('ECON_BAD_NUMBER', `${name}: number too long`)
  if (s.startsWith('-')) throw new EconomicsError('ECON_NEGATIVE', `${name} must not be negative, got ${JSON.stringify(raw)}`)
  const m = DECIMAL.exec(s)
  if (m === null) throw new EconomicsError('ECON_BAD_NUMBER', `${name}: expected a plain decimal number like 1.25, got ${JSON.stringify(raw)}`)
  const whole = m[1]!
  const frac = m[2] ?? ''
  if (frac.length > decimals) throw new EconomicsError('ECON_BAD_NUMBER', `${name}: at most ${decimals} decimal places, got ${JSON.stringify(raw)}`)
  if (whole.length > 60) throw new EconomicsError('ECON_BAD_NUMBER', `${name}: number too large`)
  const fracDigits = frac.padEnd(decimals, '0')
  return BigInt(whole) * 10n ** BigInt(decimals) + (fracDigits === '' ? 0n : BigInt(fracDigits))
}

/** Formats an integer with `decimals` places as a plain decimal string, trailing zeros trimmed. */
export function formatUnits (value: bigint, decimals = HEU_DECIMALS): string {
  const neg = value < 0n
  const v = neg ? -value : value
  const unit = 10n ** BigInt(decimals)
  const whole = v / unit
  const frac = (v % unit).toString().padStart(decimals, '0').replace(/0+$/, '')
  return `${neg ? '-' : ''}${whole}${frac === '' ? '' : '.' + frac}`
}

/** HEU decimal string → wei. */
export function parseHeu (name: string, raw: string): bigint {
  return parseUnits(name, raw, HEU_DECIMALS)
}

/** wei → HEU decimal string (exact). */
export function formatHeu (wei: bigint): string {
  return formatUnits(wei, HEU_DECIMALS)
}

/** A WAD rate as a percent, for display only. */
export function wadToPercent (wad: bigint): number {
  return Number(formatUnits(wad * 100n, 18))
}

/** A WAD value as a JS number, for display only. */
export function wadToNumber (wad: bigint): number {
  return Number(formatUnits(wad, 18))
}

/** Percent string ("2.25") → WAD share (0.0225e18): a percent with 16 decimals is exactly a WAD share. */
export function parsePercentWad (name: string, raw: string): bigint {
  return parseUnits(name, raw, 16)
}
