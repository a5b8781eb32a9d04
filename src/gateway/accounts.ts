import { z } from 'zod'
import { createHash, randomBytes } from 'node:crypto'
import type { Store, Repository } from '../core/store.js'
import { HeuristError } from '../core/errors.js'

/**
 * Developer accounts and API keys. A key is shown once when created and stored only as its
 * sha256, so a leaked store does not leak keys. Credits are HEU wei, backed by the gateway's
 * deposit in `Payments`. A job reserves its worst-case cost before it starts and settles the
 * real cost when it ends, so concurrent jobs cannot spend the same credits twice.
 */
export const API_KEY_PREFIX = 'hk-'
const KEY_RE = /^hk-[A-Za-z0-9_-]{43}$/

const accountSchema = z.object({
  id: z.string().regex(/^[0-9a-f]{16}$/),
  label: z.string().max(128),
  credits: z.coerce.bigint().nonnegative(),
  spent: z.coerce.bigint().nonnegative(),
  createdAt: z.number().int().nonnegative()
})
export type Account = z.infer<typeof accountSchema>

export function hashApiKey (key: string): string {
  return createHash('sha256').update(key).digest('hex')
}

export function isWellFormedApiKey (key: string): boolean {
  return KEY_RE.test(key)
}

/** Credits held for one job; `settle(cost)` frees them and charges at most `amount`, returning the charge. */
export interface Reservation {
  amount: bigint
  settle: (cost: bigint) => Promise<bigint>
}

export class Accounts {
  private readonly repo: Repository<Account>
  /** Credits reserved by jobs in flight, per account id. */
  private readonly reserved = new Map<string, bigint>()
  /** Per-account write queue: read-modify-write of a balance never interleaves. */
  private readonly queues = new Map<string, Promise<unknown>>()

  constructor (store: Store) {
    this.repo = store.bucket('gw-accounts', accountSchema)
  }

  /** Creates an account with `credits` wei; returns the API key (shown once) and the account. */
  async create (credits: bigint, label = ''): Promise<{ apiKey: string, account: Account }> {
    if (credits < 0n) throw new HeuristError('GATEWAY_BAD_CREDITS', 'credits cannot be negative', { usage: true })
    const apiKey = API_KEY_PREFIX + randomBytes(32).toString('base64url')
    const account: Account = { id: randomBytes(8).toString('hex'), label: label.slice(0, 128), credits, spent: 0n, createdAt: Date.now() }
    await this.repo.put(hashApiKey(apiKey), account)
    return { apiKey, account }
  }

  /** The account behind a key, or undefined for an unknown or malformed key. */
  async lookup (apiKey: string): Promise<(Account & { keyHash: string }) | undefined> {
    if (!isWellFormedApiKey(apiKey)) return undefined
    const keyHash = hashApiKey(apiKey)
    const a = await this.repo.get(keyHash)
    return a === undefined ? undefined : { ...a, keyHash }
  }

  /** Credits not spent and not reserved by jobs in flight. */
  available (account: Account): bigint {
    return account.credits - (this.reserved.get(account.id) ?? 0n)
  }

  private async serial<T> (keyHash: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.queues.get(keyHash) ?? Promise.resolve()
    const next = prev.then(fn, fn)
    this.queues.set(keyHash, next.catch(() => undefined))
    try { return await next } finally {
      if (this.queues.get(keyHash) === next) this.queues.delete(keyHash)
    }
  }

  /**
   * Reserves `amount` (the job's worst case) for a job; null when the account cannot cover it.
   * The returned settle function frees the reservation and charges the real cost, never more
   * than was reserved; it returns what it charged (what the miner may be paid).
   */
  async reserve (keyHash: string, amount: bigint): Promise<((cost: bigint) => Promise<bigint>) | null> {
    return (await this.reserveUpTo(keyHash, amount, amount))?.settle ?? null
  }

  /**
   * Reserves as much of `max` as the account has left, but at least `min` (the cheapest way to
   * serve the job); null when even `min` is not there. A rich key can use any miner, a poor one
   * the miners it can afford: one dear miner does not lock every key out.
   */
  async reserveUpTo (keyHash: string, max: bigint, min: bigint): Promise<Reservation | null> {
    return await this.serial(keyHash, async () => {
      const a = await this.repo.get(keyHash)
      if (a === undefined) return null
      const held = this.reserved.get(a.id) ?? 0n
      const free = a.credits - held
      if (free <= 0n || free < min) return null
      const amount = max < free ? max : free
      this.reserved.set(a.id, held + amount)
      let settled: Promise<bigint> | null = null
      const settle = async (cost: bigint): Promise<bigint> => {
        settled ??= this.serial(keyHash, async () => {
          const left = (this.reserved.get(a.id) ?? 0n) - amount
          if (left > 0n) this.reserved.set(a.id, left)
          else this.reserved.delete(a.id)
          const cur = await this.repo.get(keyHash)
          if (cur === undefined || cost <= 0n) return 0n
          // never above the reservation: concurrent jobs together never charge more than the credits
          const capped = cost > amount ? amount : cost
          const charge = capped > cur.credits ? cur.credits : capped
          await this.repo.put(keyHash, { ...cur, credits: cur.credits - charge, spent: cur.spent + charge })
          return charge
        })
        return await settled
      }
      return { amount, settle }
    })
  }

  /** Adds credits (a top-up after a deposit). */
  async credit (keyHash: string, amount: bigint): Promise<Account> {
    return await this.serial(keyHash, async () => {
      const a = await this.repo.get(keyHash)
      if (a === undefined) throw new HeuristError('GATEWAY_UNKNOWN_KEY', 'no such API key')
      const next = { ...a, credits: a.credits + amount }
      await this.repo.put(keyHash, next)
      return next
    })
  }

  async list (limit = 1000): Promise<Account[]> {
    return (await this.repo.entries({ limit })).map(([, a]) => a)
  }

  /** Sum of all accounts' unspent credits: what the gateway's deposit must cover. */
  async outstanding (): Promise<bigint> {
    let total = 0n
    for (const a of await this.list(100_000)) total += a.credits
    return total
  }
}
