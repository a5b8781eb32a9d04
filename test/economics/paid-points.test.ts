import { describe, it, expect } from 'vitest'
import {
  FLOOR_WEI_PER_UNIT, REDEMPTION_WINDOW_SECONDS, redemptionWindow, paidUnits, cappedPoints, paidByTriple, paidTripleKey,
  isEconomicsError, type PaidRedemption
} from '../../src/economics/index.js'
import { defaultConfig } from '../../src/core/config.js'

const ZERO = '0x0000000000000000000000000000000000000000'
const R = '0x00000000000000000000000000000000000000A1'
const U = '0x00000000000000000000000000000000000000B2'
const M = '0x00000000000000000000000000000000000000C3'

describe('points bounded by payment (economics/paid-points)', () => {
  it('the floor is at most the default prices (up --price 1 gwei, mine.price 1 gwei)', () => {
    expect(FLOOR_WEI_PER_UNIT.llama).toBeLessThanOrEqual(1_000_000_000n)
    expect(FLOOR_WEI_PER_UNIT.waifu).toBeLessThanOrEqual(1_000_000_000n)
    expect(FLOOR_WEI_PER_UNIT.llama).toBeGreaterThan(0n)
    // a miner left at its default price earns points for every unit it is paid for
    expect(BigInt(defaultConfig().mine.price)).toBeGreaterThanOrEqual(FLOOR_WEI_PER_UNIT.llama)
    expect(BigInt(defaultConfig().mine.price)).toBeGreaterThanOrEqual(FLOOR_WEI_PER_UNIT.waifu)
  })

  it('windows of consecutive epochs tile chain time: each second falls in exactly one', () => {
    const genesis = 1_000n
    const len = 60n
    const W = 10n
    const ws = [0n, 1n, 2n, 3n].map(e => redemptionWindow(e, genesis, len, W))
    expect(ws[0]).toEqual({ after: 999n, through: 1070n })
    expect(ws[1]).toEqual({ after: 1070n, through: 1130n })
    for (let t = genesis; t <= ws[3]!.through; t++) {
      expect(ws.filter(w => t > w.after && t <= w.through)).toHaveLength(1)
    }
    expect(redemptionWindow(5n, 0n, 100n)).toEqual({ after: 500n + REDEMPTION_WINDOW_SECONDS, through: 600n + REDEMPTION_WINDOW_SECONDS })
  })

  it('caps a triple at floor(paid / floor) units, never above its receipts', () => {
    const f = { llama: 7n, waifu: 100n }
    expect(paidUnits(69n, 'llama', f)).toBe(9n)
    expect(paidUnits(69n, 'waifu', f)).toBe(0n)
    expect(cappedPoints(5n, 69n, 'llama', f)).toBe(5n)
    expect(cappedPoints(500n, 69n, 'llama', f)).toBe(9n)
    expect(cappedPoints(500n, 0n, 'llama', f)).toBe(0n)
    // at the default floor, 1 wei per unit buys nothing; the floor per unit buys the units
    expect(cappedPoints(1000n, 1000n, 'llama')).toBe(0n)
    expect(cappedPoints(1000n, 1000n * FLOOR_WEI_PER_UNIT.llama, 'llama')).toBe(1000n)
    let err: unknown
    try { paidUnits(1n, 'llama', { llama: 0n, waifu: 1n }) } catch (e) { err = e }
    expect(isEconomicsError(err) && err.code).toBe('ECON_OUT_OF_RANGE')
    expect(() => cappedPoints(-1n, 1n, 'llama')).toThrow(/must not be negative/)
  })

  it('credits a redemption to its frontend when it names one, else its payer; related ones and those outside the window never', () => {
    const w = { after: 100n, through: 200n }
    const base: PaidRedemption = { payer: R, frontend: ZERO, miner: M, pool: 'llama', amount: 5n, related: false, time: 150n }
    const paid = paidByTriple([
      base, // a gateway's voucher without a frontend: its payer R
      { ...base, frontend: R, amount: 7n }, // a gateway's own voucher names itself
      { ...base, payer: U, frontend: R, amount: 11n }, // Pay-by-User: user U pays, gateway R requested
      { ...base, amount: 1000n, related: true }, // related: never
      { ...base, amount: 2000n, time: 100n }, // the previous epoch's window
      { ...base, amount: 4000n, time: 201n }, // the next epoch's window
      { ...base, amount: 3n, time: 200n }, // the window's last second counts
      { ...base, pool: 'waifu', amount: 13n }
    ], w)
    expect(paid.get(paidTripleKey(R, M, 'llama'))).toBe(5n + 7n + 11n + 3n)
    expect(paid.get(paidTripleKey(R.toLowerCase(), M.toLowerCase(), 'waifu'))).toBe(13n)
    expect(paid.has(paidTripleKey(U, M, 'llama'))).toBe(false)
    expect(paid.size).toBe(2)
  })
})
