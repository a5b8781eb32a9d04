/**
 * The paying client of Pay-by-User (`heurist infer --gateway`): POST the request; on a 402,
 * check the gateway's requirements (a quote under --max-price; on the chain and Payments of this
 * home's deployment when it has one), sign the session's cumulative bound with the operator key
 * and retry with X-PAYMENT. What was authorized and spent per gateway is kept in the home
 * (pay-by-user.json, written atomically *before* a signature leaves the machine), so `heurist
 * status` shows it and the next request continues the session.
 */
import { z } from 'zod'
import { readFile, writeFile, rename } from 'node:fs/promises'
import { join } from 'node:path'
import { hexlify, randomBytes, type Wallet } from 'ethers'
import { HeuristError } from '../core/errors.js'
import { PaymentAuthorizationTypes, type PaymentAuthorization } from '../core/typed-data.js'
import { encodePaymentHeader, PAYMENT_SCHEME } from '../gateway/index.js'

const address = z.string().regex(/^0x[0-9a-fA-F]{40}$/)
const uint = z.string().regex(/^(0|[1-9][0-9]{0,77})$/)

const requirementsSchema = z.object({
  x402Version: z.literal(1),
  error: z.object({ message: z.string().max(2000), code: z.string().max(100).nullable() }).passthrough(),
  accepts: z.array(z.object({
    scheme: z.string().max(64),
    network: z.string().max(64),
    maxAmountRequired: uint,
    payTo: address,
    maxTimeoutSeconds: z.number().int().positive(),
    extra: z.object({
      payments: address,
      chainId: z.number().int().positive(),
      expiryAtMost: z.number().int().positive(),
      settleMarginSeconds: z.number().int().min(0).max(86_400)
    }).passthrough()
  }).passthrough()).min(1).max(8)
}).passthrough()

export type PaymentRequirements = z.infer<typeof requirementsSchema>['accepts'][number]

const sessionSchema = z.object({
  gateway: z.string().max(2048),
  frontend: address,
  chainId: z.number().int().positive(),
  payments: address,
  session: z.string().regex(/^0x[0-9a-f]{64}$/),
  expiry: z.number().int().positive(),
  /** The highest maxAmount signed in this session (wei): the most this gateway can take. */
  authorized: uint,
  /** The sum of what the gateway said it charged (X-PAYMENT-RESPONSE). */
  spent: uint,
  requests: z.number().int().min(0)
})
export type PaySession = z.infer<typeof sessionSchema>
const fileSchema = z.object({ version: z.literal(1), sessions: z.array(sessionSchema).max(1000) })

export function paySessionsPath (home: string): string {
  return join(home, 'pay-by-user.json')
}

export async function readPaySessions (home: string): Promise<PaySession[]> {
  let text: string
  try { text = await readFile(paySessionsPath(home), 'utf8') } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw e
  }
  const r = fileSchema.safeParse(JSON.parse(text.slice(0, 4 * 1024 * 1024)))
  if (!r.success) throw new HeuristError('PAY_BAD_STATE', `${paySessionsPath(home)} is not a pay-by-user state file: ${r.error.issues[0]?.message ?? ''}`)
  return r.data.sessions
}

async function writePaySessions (home: string, sessions: PaySession[]): Promise<void> {
  const path = paySessionsPath(home)
  const tmp = `${path}.${process.pid}.tmp`
  await writeFile(tmp, JSON.stringify({ version: 1, sessions }, null, 2) + '\n', { mode: 0o600 })
  await rename(tmp, path)
}

/** One session per gateway origin and frontend: replace it, keep the others. */
async function saveSession (home: string, s: PaySession): Promise<void> {
  const all = (await readPaySessions(home)).filter(x => !(x.gateway === s.gateway && x.frontend.toLowerCase() === s.frontend.toLowerCase()))
  await writePaySessions(home, [...all, s])
}

/** Totals per gateway for `heurist status`. */
export async function payTotals (home: string): Promise<Array<{ gateway: string, frontend: string, authorized: bigint, spent: bigint, requests: number, expiry: number }>> {
  return (await readPaySessions(home)).map(s => ({ gateway: s.gateway, frontend: s.frontend, authorized: BigInt(s.authorized), spent: BigInt(s.spent), requests: s.requests, expiry: s.expiry }))
}

export interface PaidFetchOptions {
  home: string
  /** Signs the authorization: the payer. */
  wallet: Pick<Wallet, 'address' | 'signTypedData'>
  /** The gateway's base URL (origin), e.g. http://127.0.0.1:8080. */
  gateway: string
  /** Most wei one request may be quoted; above it nothing is signed. Null: no limit. */
  maxPrice: bigint | null
  /** This home's deployment: the 402 must name its chain and Payments. Null: trust the 402 (printed). */
  expect: { chainId: number, payments: string } | null
  /** Session length asked for, seconds (capped by what the gateway allows). Default 1 hour. */
  sessionSeconds?: number
  signal?: AbortSignal
}

export interface PaidResult { status: number, body: unknown, quote: bigint, charged: bigint, session: PaySession }

/** POSTs `body` to `path`, paying on a 402 as described above. */
export async function paidPost (o: PaidFetchOptions, path: string, body: unknown): Promise<PaidResult> {
  const url = new URL(path, o.gateway).toString()
  const post = async (payment: string | null): Promise<Response> => await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(payment === null ? {} : { 'x-payment': payment }) },
    body: JSON.stringify(body),
    signal: o.signal ?? AbortSignal.timeout(300_000)
  })
  const first = await post(null)
  if (first.status !== 402) throw new HeuristError('PAY_NOT_PAYABLE', `the gateway answered ${first.status} instead of 402 Payment Required: ${(await first.text()).slice(0, 300)}`)
  const raw = requirementsSchema.safeParse(await first.json().catch(() => null))
  if (!raw.success) throw new HeuristError('PAY_BAD_REQUIREMENTS', `the gateway's 402 is not a payment requirement this client reads: ${raw.error.issues[0]?.path.join('.') ?? ''} ${raw.error.issues[0]?.message ?? ''}`)
  const req = raw.data.accepts.find(a => a.scheme === PAYMENT_SCHEME)
  if (req === undefined) throw new HeuristError('PAY_BAD_REQUIREMENTS', `the gateway offers no ${PAYMENT_SCHEME} payment`)
  if (req.network !== `eip155:${req.extra.chainId}`) throw new HeuristError('PAY_BAD_REQUIREMENTS', `the gateway's network ${req.network} and chain id ${req.extra.chainId} disagree`)
  if (o.expect !== null && (o.expect.chainId !== req.extra.chainId || o.expect.payments.toLowerCase() !== req.extra.payments.toLowerCase())) {
    throw new HeuristError('PAY_WRONG_CHAIN', `the gateway asks to sign for Payments ${req.extra.payments} on chain ${req.extra.chainId}; this home's deployment is ${o.expect.payments} on chain ${o.expect.chainId}`)
  }
  const quote = BigInt(req.maxAmountRequired)
  if (o.maxPrice !== null && quote > o.maxPrice) throw new HeuristError('PAY_PRICE_TOO_HIGH', `the gateway quotes up to ${quote} wei for this request; --max-price allows ${o.maxPrice} wei`)

  const now = Math.floor(Date.now() / 1000)
  const origin = new URL(o.gateway).origin
  const prev = (await readPaySessions(o.home)).find(s => s.gateway === origin && s.frontend.toLowerCase() === req.payTo.toLowerCase())
  const usable = prev !== undefined && prev.chainId === req.extra.chainId && prev.payments.toLowerCase() === req.extra.payments.toLowerCase() &&
    prev.expiry > now + req.extra.settleMarginSeconds + 30
  // a new session: expiry within what the gateway accepts (its withdraw-delay rule), minus a minute for clock skew
  const expiry = usable ? prev.expiry : Math.min(now + (o.sessionSeconds ?? 3600), req.extra.expiryAtMost - 60)
  if (!usable && expiry <= now + req.extra.settleMarginSeconds) throw new HeuristError('PAY_BAD_REQUIREMENTS', `the gateway allows sessions until ${req.extra.expiryAtMost}, too short for its own settle margin of ${req.extra.settleMarginSeconds} s`)
  const session: PaySession = usable
    ? prev
    : { gateway: origin, frontend: req.payTo, chainId: req.extra.chainId, payments: req.extra.payments, session: hexlify(randomBytes(32)), expiry, authorized: '0', spent: '0', requests: 0 }
  const authorization: PaymentAuthorization = { payer: o.wallet.address, frontend: req.payTo, session: session.session, maxAmount: BigInt(session.authorized) + quote, expiry: BigInt(session.expiry) }
  // recorded before the signature leaves: what this gateway may take is never under-reported
  const signing: PaySession = { ...session, authorized: authorization.maxAmount.toString() }
  await saveSession(o.home, signing)
  const domain = { name: 'Heurist', version: '1', chainId: req.extra.chainId, verifyingContract: req.extra.payments }
  const signature = await o.wallet.signTypedData(domain, PaymentAuthorizationTypes, authorization)
  const paid = await post(encodePaymentHeader(req.extra.chainId, { authorization, signature }))
  const text = await paid.text()
  let json: unknown = null
  try { json = JSON.parse(text) } catch { json = text.slice(0, 500) }
  if (paid.status !== 200) {
    const e = (json as { error?: { message?: string, code?: string } } | null)?.error
    throw new HeuristError(paid.status === 402 ? 'PAY_REFUSED' : 'PAY_REQUEST_FAILED', `the gateway answered ${paid.status}${e?.code === undefined ? '' : ` (${e.code})`}: ${e?.message ?? String(json).slice(0, 300)}`)
  }
  let charged = 0n
  const header = paid.headers.get('x-payment-response')
  if (header !== null) {
    try {
      const r = z.object({ charged: uint }).passthrough().parse(JSON.parse(Buffer.from(header.slice(0, 4096), 'base64').toString('utf8')))
      charged = BigInt(r.charged)
    } catch { throw new HeuristError('PAY_BAD_RESPONSE', 'the gateway\'s X-PAYMENT-RESPONSE header is malformed') }
  }
  // the gateway can never settle more than was signed; a charge above the quote is its claim alone
  if (charged > quote) throw new HeuristError('PAY_OVERCHARGED', `the gateway says it charged ${charged} wei, above its quote of ${quote} wei (it cannot settle more than ${authorization.maxAmount} wei in this session)`)
  const done: PaySession = { ...signing, spent: (BigInt(signing.spent) + charged).toString(), requests: signing.requests + 1 }
  await saveSession(o.home, done)
  return { status: paid.status, body: json, quote, charged, session: done }
}
