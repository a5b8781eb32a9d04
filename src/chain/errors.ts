/**
 * Turns ethers and JSON-RPC failures into one-line HeuristErrors: revert data is decoded
 * against every error of every contract (OpenZeppelin's included), so the user reads
 * `ERC20InsufficientBalance: have 5 HEU, need 100 HEU` instead of a hex blob.
 */
import { Interface, formatUnits, isError, type ErrorDescription } from 'ethers'
import { HeuristError, isHeuristError } from '../core/errors.js'
import type { Artifacts } from './compile.js'

let errorsIface: Interface | undefined

/** One Interface holding every custom error of the compiled contracts, deduplicated. */
export function errorInterface (artifacts: Artifacts): Interface {
  if (errorsIface !== undefined) return errorsIface
  const seen = new Set<string>()
  const frags: any[] = []
  for (const a of Object.values(artifacts.contracts)) {
    for (const f of a.abi) {
      if (f.type !== 'error') continue
      const sig = `${String(f.name)}(${(f.inputs as Array<{ type: string }>).map(i => i.type).join(',')})`
      if (!seen.has(sig)) { seen.add(sig); frags.push(f) }
    }
  }
  return (errorsIface = new Interface(frags))
}

function findRevertData (e: unknown, depth = 0): string | undefined {
  if (depth > 6 || e === null || typeof e !== 'object') return undefined
  const o = e as Record<string, unknown>
  if (typeof o.data === 'string' && /^0x[0-9a-fA-F]{8,}$/.test(o.data)) return o.data
  for (const k of ['data', 'error', 'info', 'cause', 'revert']) {
    const d = findRevertData(o[k], depth + 1)
    if (d !== undefined) return d
  }
  return undefined
}

const HEU_ARGS = new Set(['balance', 'needed', 'allowance', 'amount', 'minimum', 'have', 'want', 'total', 'cap', 'maxAmount'])
/** Unix-seconds arguments that do not end in `At`. */
const TIME_ARGS = new Set(['deadline', 'expiry'])

function describe (d: ErrorDescription): string {
  const parts = d.fragment.inputs.map((input, i) => {
    const v = d.args[i]
    if (typeof v === 'bigint' && HEU_ARGS.has(input.name)) return `${input.name} ${formatUnits(v, 18)} HEU`
    if (typeof v === 'bigint' && (/At$/.test(input.name) || TIME_ARGS.has(input.name))) return `${input.name} ${v === 0n ? 'never' : new Date(Number(v) * 1000).toISOString()}`
    return `${input.name} ${String(v)}`
  })
  return parts.length === 0 ? d.name : `${d.name}: ${parts.join(', ')}`
}

const CODES: Record<string, string> = {
  ERC20InsufficientBalance: 'CHAIN_INSUFFICIENT_BALANCE',
  ERC20InsufficientAllowance: 'CHAIN_INSUFFICIENT_ALLOWANCE',
  CollateralBelowMinimum: 'CHAIN_INSUFFICIENT_STAKE',
  NothingMatured: 'CHAIN_NOT_MATURED',
  InsufficientDeposit: 'CHAIN_INSUFFICIENT_DEPOSIT',
  AlreadyRegistered: 'CHAIN_ALREADY_REGISTERED',
  BadConsent: 'CHAIN_BAD_CONSENT',
  ConsentExpired: 'CHAIN_BAD_CONSENT',
  RootExists: 'CHAIN_ROOT_EXISTS',
  AlreadyClaimed: 'CHAIN_ALREADY_CLAIMED',
  AlreadySlashed: 'CHAIN_ALREADY_SLASHED',
  ReceiptFromPreviousRegistration: 'CHAIN_RECEIPT_FROM_PREVIOUS_REGISTRATION',
  BadSignature: 'CHAIN_BAD_SIGNATURE',
  NotFrontend: 'CHAIN_NOT_FRONTEND',
  AuthorizationExpired: 'CHAIN_AUTHORIZATION_EXPIRED',
  OverAuthorized: 'CHAIN_OVER_AUTHORIZED'
}

/** The revert's decoded description, or undefined when `e` carries no decodable revert data. */
export function decodeRevert (e: unknown, artifacts: Artifacts): ErrorDescription | undefined {
  const data = findRevertData(e)
  if (data === undefined) return undefined
  try { return errorInterface(artifacts).parseError(data) ?? undefined } catch { return undefined }
}

/** Maps any failure of a chain call to a one-line HeuristError (code CHAIN_*). */
export function chainError (e: unknown, artifacts: Artifacts, what: string): HeuristError {
  if (isHeuristError(e)) return e
  const d = decodeRevert(e, artifacts)
  if (d !== undefined) {
    return new HeuristError(CODES[d.name] ?? 'CHAIN_REVERTED', `${what} reverted: ${describe(d)}`, { cause: e, details: { error: d.name } })
  }
  if (isError(e, 'CALL_EXCEPTION')) {
    const reason = e.reason ?? e.shortMessage
    return new HeuristError('CHAIN_REVERTED', `${what} reverted: ${reason}`, { cause: e })
  }
  if (isError(e, 'INSUFFICIENT_FUNDS')) return new HeuristError('CHAIN_INSUFFICIENT_FUNDS', `${what}: not enough ETH for gas`, { cause: e })
  if (isError(e, 'NETWORK_ERROR') || isError(e, 'TIMEOUT') || isError(e, 'SERVER_ERROR')) {
    return new HeuristError('CHAIN_RPC_UNREACHABLE', `${what}: the RPC endpoint failed: ${e.shortMessage}`, { cause: e })
  }
  const msg = (e as { shortMessage?: string })?.shortMessage ?? (e as Error)?.message ?? String(e)
  return new HeuristError('CHAIN_FAILED', `${what}: ${msg.split('\n')[0] ?? ''}`, { cause: e })
}
