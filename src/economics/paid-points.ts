import { EconomicsError, requireNonNegative } from './errors.js'
import type { Pool } from './season2.js'

/**
 * Points from paid work (issue 16, finding 4). A receipt's units are measured and
 * countersigned by its requester, but a requester can be a sybil of the miner that
 * countersigns anything. What it cannot fake is money: Payments records every redemption to
 * the miner, with its payer and frontend. So the units a (requester, miner, pool) triple earns
 * in an epoch are at most what that requester's redemptions to that miner in the pool paid,
 * divided by a protocol floor price per compute unit.
 *
 * The floor, in wei per compute unit, per pool. Compute units are already weighted by the
 * model's memory (economics/compute-units: one token, or one 64×64 tile-step, on a 1 GiB
 * model), so one floor per unit is a floor per model class, and the same unit in both pools.
 * 1 gwei: `heurist up`'s default `--price` and the miner's default `mine.price`, so an honest
 * miner at the default price is paid exactly the units it earns points for (the gateway
 * charges price × measured units, no rounding). A miner may charge less (or serve free): it
 * then earns points only for the units its payments cover. A higher floor makes bought points
 * dearer for a colluding payer (what it really spends is the protocol fee on its payments;
 * the rest goes back to itself) but prices honest miners out; 1 gwei is ~1 µHEU per
 * 1,000 tokens of a 1 GiB model.
 */
export const FLOOR_WEI_PER_UNIT: Readonly<Record<Pool, bigint>> = Object.freeze({ llama: 1_000_000_000n, waifu: 1_000_000_000n })

/**
 * Chain seconds after an epoch's end during which redemptions still count for it. 30 s: a
 * miner polls the chain's epoch every second and its redemption needs a block or a few (2 s
 * blocks on an L2 and on `heurist up`'s devnet), with room for a slow RPC; every epoch's root
 * waits this long in chain time, nothing next to a week-long epoch. Epoch N's
 * redemptions are those whose block time t is in (end(N−1) + W, end(N) + W]: consecutive
 * windows, so every redemption counts for exactly one epoch (epoch 0's window starts at the
 * chain's genesis). Miners redeem everything owed as soon as the chain passes an epoch's end,
 * so the work of the epoch's last seconds is paid inside its window; validators build the
 * epoch's root only once the chain's time is past end(N) + W.
 */
export const REDEMPTION_WINDOW_SECONDS = 30n

/** Epoch N's redemption window in chain time: block timestamps t with `after` < t ≤ `through`. */
export function redemptionWindow (epoch: bigint, genesis: bigint, epochSeconds: bigint, windowSeconds = REDEMPTION_WINDOW_SECONDS): { after: bigint, through: bigint } {
  requireNonNegative('epoch', epoch)
  requireNonNegative('windowSeconds', windowSeconds)
  if (epochSeconds <= 0n) throw new EconomicsError('ECON_OUT_OF_RANGE', `epochSeconds must be positive, got ${epochSeconds}`)
  const through = genesis + (epoch + 1n) * epochSeconds + windowSeconds
  // epoch 0 takes everything from genesis on (nothing before genesis can be redeemed)
  const after = epoch === 0n ? genesis - 1n : genesis + epoch * epochSeconds + windowSeconds
  return { after, through }
}

/** The units `paidWei` buys at the pool's floor (floor division). */
export function paidUnits (paidWei: bigint, pool: Pool, floor: Readonly<Record<Pool, bigint>> = FLOOR_WEI_PER_UNIT): bigint {
  requireNonNegative('paidWei', paidWei)
  const f = floor[pool]
  if (f <= 0n) throw new EconomicsError('ECON_OUT_OF_RANGE', `the floor price of pool ${pool} must be positive, got ${f}`)
  return paidWei / f
}

/** A triple's points: the units its receipts earn, never more than its payments buy. */
export function cappedPoints (receiptUnits: bigint, paidWei: bigint, pool: Pool, floor: Readonly<Record<Pool, bigint>> = FLOOR_WEI_PER_UNIT): bigint {
  requireNonNegative('receiptUnits', receiptUnits)
  const cap = paidUnits(paidWei, pool, floor)
  return receiptUnits < cap ? receiptUnits : cap
}

/** The key a redemption and a receipt share: requester (the redemption's frontend, else its payer), miner, pool. */
export function paidTripleKey (requester: string, miner: string, pool: Pool): string {
  return `${requester.toLowerCase()}/${miner.toLowerCase()}/${pool}`
}

/** One `Payments` redemption as the cap reads it. */
export interface PaidRedemption { payer: string, frontend: string, miner: string, pool: Pool, amount: bigint, related: boolean, time: bigint }

const ZERO = '0x0000000000000000000000000000000000000000'

/**
 * Wei paid per (requester, miner, pool) in one window, from the window's redemptions. A
 * redemption backs the receipts of its frontend when it names one (Pay-by-User: the user pays,
 * the gateway that requested the jobs is the frontend; a gateway's own vouchers name itself),
 * else of its payer: one requester per redemption, so one payment never backs two requesters'
 * receipts. Related redemptions (payer or frontend paid out to the miner) never count, and
 * redemptions outside the window are ignored.
 */
export function paidByTriple (redemptions: Iterable<PaidRedemption>, window: { after: bigint, through: bigint }): Map<string, bigint> {
  const out = new Map<string, bigint>()
  for (const r of redemptions) {
    requireNonNegative('amount', r.amount)
    if (r.related || r.time <= window.after || r.time > window.through || r.amount === 0n) continue
    const requester = r.frontend.toLowerCase() === ZERO ? r.payer : r.frontend
    const k = paidTripleKey(requester, r.miner, r.pool)
    out.set(k, (out.get(k) ?? 0n) + r.amount)
  }
  return out
}
