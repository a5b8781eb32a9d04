import { usageError } from '../core/errors.js'

/** Parses an integer flag within bounds; a bad value is a usage error naming the flag. */
export function parseIntFlag (name: string, raw: string, min: number, max: number): number {
  const n = /^-?\d+$/.test(raw.trim()) ? Number(raw) : NaN
  if (!Number.isSafeInteger(n) || n < min || n > max) throw usageError('CLI_BAD_FLAG', `${name}: expected an integer from ${min} to ${max}, got ${JSON.stringify(raw)}`)
  return n
}

/** Parses a finite number flag within bounds. */
export function parseNumberFlag (name: string, raw: string, min: number, max: number): number {
  const n = raw.trim() === '' ? NaN : Number(raw)
  if (!Number.isFinite(n) || n < min || n > max) throw usageError('CLI_BAD_FLAG', `${name}: expected a number from ${min} to ${max}, got ${JSON.stringify(raw)}`)
  return n
}

/** A repeatable or comma-separated list flag. */
export function collectList (value: string, previous: string[] = []): string[] {
  return [...previous, ...value.split(',').map(s => s.trim()).filter(s => s !== '')]
}
