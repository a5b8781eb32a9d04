import { describe, it, expect } from 'vitest'
import fc from 'fast-check'
import {
  WAD, YEAR_SECONDS, TOTAL_SUPPLY, E_MAX_WAD, E_BASE_WAD,
  emissionRateWad, whitepaperEpochCap, emissionForPeriod, season2Dynamic, defaultSeason2Params,
  allocate, multiplierWad, maxMultiplierWad, splitTips, splitRevenue,
  deposit, redeem, addRewards, previewDeposit, previewRedeem, previewMint, previewWithdraw,
  minimumStake, isStakeSecure, maxTolerableMalicious, isAttackBounded, parseHeu, formatHeu,
  type VaultState
} from '../../src/economics/index.js'

// Bounded runs keep the suite fast on a shared 2-core machine; the seed is printed on failure.
const RUNS = { numRuns: 200 }

const wei = (max: bigint): fc.Arbitrary<bigint> => fc.bigInt({ min: 0n, max })
const epochSeconds = fc.bigInt({ min: 1n, max: 2n * YEAR_SECONDS })

describe('allocation never creates or loses a wei', () => {
  it('Σ payouts + dust = pool, dust < one wei per miner, every payout is its exact floor share', () => {
    const miner = fc.record({ points: wei(10n ** 24n), multiplierWad: fc.bigInt({ min: WAD, max: 2n * WAD }) })
    fc.assert(fc.property(wei(10n ** 30n), fc.array(miner, { maxLength: 40 }), (pool, ms) => {
      const miners = ms.map((m, i) => ({ id: `m${i}`, ...m }))
      const a = allocate(pool, miners)
      const paid = a.payouts.reduce((s, p) => s + p.amount, 0n)
      expect(paid + a.dust).toBe(pool)
      expect(a.dust).toBeGreaterThanOrEqual(0n)
      const total = a.payouts.reduce((s, p) => s + p.weight, 0n)
      if (total === 0n) {
        expect(a.dust).toBe(pool)
      } else {
        expect(a.dust).toBeLessThan(BigInt(Math.max(1, miners.length)))
        for (const p of a.payouts) {
          // amount ≤ pool·w/W < amount + 1
          expect(p.amount * total).toBeLessThanOrEqual(pool * p.weight)
          expect((p.amount + 1n) * total).toBeGreaterThan(pool * p.weight)
        }
      }
    }), RUNS)
  })

  it('more weight never means less reward (same pool, same others)', () => {
    fc.assert(fc.property(wei(10n ** 27n), wei(10n ** 20n), wei(10n ** 20n), wei(10n ** 20n), (pool, a, b, extra) => {
      const before = allocate(pool, [{ id: 'x', points: a, multiplierWad: WAD }, { id: 'y', points: b, multiplierWad: WAD }])
      const after = allocate(pool, [{ id: 'x', points: a + extra, multiplierWad: WAD }, { id: 'y', points: b, multiplierWad: WAD }])
      expect(after.payouts[0]!.amount).toBeGreaterThanOrEqual(before.payouts[0]!.amount)
    }), RUNS)
  })

  it('tips and the revenue split are exact: the parts sum to the whole', () => {
    fc.assert(fc.property(wei(10n ** 30n), fc.integer({ min: 0, max: 10_000 }), fc.array(wei(10n ** 24n), { maxLength: 20 }), (reward, bps, votes) => {
      const t = splitTips(reward, bps, votes.map((v, i) => ({ id: `v${i}`, votes: v })))
      expect(t.node + t.voters.reduce((s, v) => s + v.amount, 0n)).toBe(reward)
      expect(t.node).toBeGreaterThanOrEqual(reward - t.tipPool)
    }), RUNS)
    fc.assert(fc.property(wei(10n ** 30n), fc.integer({ min: 0, max: 10_000 }), fc.integer({ min: 0, max: 10_000 }), fc.integer({ min: 0, max: 10_000 }), (amount, p, f, fee) => {
      fc.pre(p + f + fee <= 10_000)
      const s = splitRevenue(amount, { podBps: p, frontendBps: f, protocolFeeBps: fee })
      expect(s.node + s.pod + s.frontend + s.protocol).toBe(amount)
      expect(s.node).toBeGreaterThanOrEqual(0n)
    }), RUNS)
  })
})

describe('emission is monotone in revenue and never above E_max (§3.4.4)', () => {
  it('E_b ≤ E(R) ≤ E_max, and R1 ≤ R2 ⇒ E(R1) ≤ E(R2)', () => {
    fc.assert(fc.property(wei(WAD), wei(WAD), (x, y) => {
      const [lo, hi] = x <= y ? [x, y] : [y, x]
      expect(emissionRateWad(lo)).toBeLessThanOrEqual(emissionRateWad(hi))
      expect(emissionRateWad(hi)).toBeLessThanOrEqual(E_MAX_WAD)
      expect(emissionRateWad(lo)).toBeGreaterThanOrEqual(E_BASE_WAD)
    }), RUNS)
  })

  it('per epoch: emission is monotone in revenue, and emission + reservoir is the E_max budget (to 2 wei)', () => {
    fc.assert(fc.property(wei(10n ** 28n), wei(10n ** 28n), epochSeconds, (x, y, secs) => {
      const [lo, hi] = x <= y ? [x, y] : [y, x]
      const a = whitepaperEpochCap(lo, secs)
      const b = whitepaperEpochCap(hi, secs)
      expect(a.emission).toBeLessThanOrEqual(b.emission)
      const budget = emissionForPeriod(E_MAX_WAD, secs)
      expect(b.emission).toBeLessThanOrEqual(budget)
      expect(b.emission + b.reservoir).toBeLessThanOrEqual(budget)
      expect(b.emission + b.reservoir).toBeGreaterThanOrEqual(budget - 2n)
    }), RUNS)
  })
})

describe('wash trading never pays: +ΔR of revenue adds at most 0.5·ΔR of emission', () => {
  it('annual rate: E(R + Δ) − E(R) ≤ Δ/2 (to the half-unit of the floor)', () => {
    fc.assert(fc.property(wei(WAD), wei(WAD), (r, d) => {
      expect(2n * (emissionRateWad(r + d) - emissionRateWad(r))).toBeLessThanOrEqual(d + 1n)
    }), RUNS)
  })

  it('per epoch in wei: paying yourself Δ of fees raises the epoch\'s total emission by at most Δ/2 plus the rate\'s rounding step', () => {
    fc.assert(fc.property(wei(10n ** 28n), wei(10n ** 28n), epochSeconds, (rev, delta, secs) => {
      const gain = whitepaperEpochCap(rev + delta, secs).emission - whitepaperEpochCap(rev, secs).emission
      // One unit of rateWad is worth c = supply·secs/(WAD·YEAR) wei; the floors in the share and
      // in R/2 can together cost 1.5 units, which a higher revenue can win back.
      const c = (TOTAL_SUPPLY * secs + WAD * YEAR_SECONDS - 1n) / (WAD * YEAR_SECONDS)
      expect(2n * gain).toBeLessThanOrEqual(delta + 3n * c + 2n)
    }), RUNS)
    // That rounding step is negligible: under 1e-10 HEU for a week.
    expect(3n * TOTAL_SUPPLY * 604_800n / (WAD * YEAR_SECONDS)).toBeLessThan(parseHeu('x', '0.0000000001'))
  })

  it('Season 2: the dynamic part rises by at most Δ/2 for Δ more organic revenue (slope 0.5 at zero, concave)', () => {
    fc.assert(fc.property(wei(10n ** 30n), wei(10n ** 30n), (u, d) => {
      expect(2n * (season2Dynamic(u + d) - season2Dynamic(u))).toBeLessThanOrEqual(d + 2n)
      expect(season2Dynamic(u + d)).toBeGreaterThanOrEqual(season2Dynamic(u))
      expect(season2Dynamic(u + d)).toBeLessThanOrEqual(defaultSeason2Params.maxDynamic)
    }), RUNS)
  })
})

describe('multiplier is bounded and monotone', () => {
  it('1× ≤ m ≤ 2×, and more stake or votes never lowers it', () => {
    fc.assert(fc.property(wei(10n ** 30n), wei(10n ** 30n), wei(10n ** 24n), (s, v, more) => {
      const m = multiplierWad(s, v)
      expect(m).toBeGreaterThanOrEqual(WAD)
      expect(m).toBeLessThanOrEqual(maxMultiplierWad())
      expect(multiplierWad(s + more, v)).toBeGreaterThanOrEqual(m)
      expect(multiplierWad(s, v + more)).toBeGreaterThanOrEqual(m)
    }), RUNS)
  })
})

describe('stHEU vault: rounding in the vault\'s favour, the rate never falls', () => {
  type Op = { kind: 'deposit' | 'redeem' | 'reward', amount: bigint }
  const op: fc.Arbitrary<Op> = fc.record({ kind: fc.constantFrom('deposit' as const, 'redeem' as const, 'reward' as const), amount: wei(10n ** 27n) })

  it('over any sequence of deposits, redeems and rewards the exchange rate (A+1)/(S+1) never decreases', () => {
    fc.assert(fc.property(fc.array(op, { maxLength: 30 }), ops => {
      let v: VaultState = { totalAssets: 0n, totalShares: 0n }
      for (const o of ops) {
        const before = v
        if (o.kind === 'deposit') v = deposit(v, o.amount).vault
        else if (o.kind === 'reward') v = addRewards(v, o.amount)
        else v = redeem(v, o.amount % (v.totalShares + 1n)).vault
        // (A'+1)/(S'+1) ≥ (A+1)/(S+1), cross-multiplied
        expect((v.totalAssets + 1n) * (before.totalShares + 1n)).toBeGreaterThanOrEqual((before.totalAssets + 1n) * (v.totalShares + 1n))
        expect(v.totalAssets).toBeGreaterThanOrEqual(0n)
      }
    }), RUNS)
  })

  it('a deposit redeemed at once never returns more than was paid; mint and withdraw never cost less than deposit and redeem', () => {
    const vault = fc.record({ totalAssets: wei(10n ** 30n), totalShares: wei(10n ** 30n) })
    fc.assert(fc.property(vault, wei(10n ** 27n), (v, x) => {
      const d = deposit(v, x)
      expect(redeem(d.vault, d.shares).assets).toBeLessThanOrEqual(x)
      expect(previewMint(x, v)).toBeGreaterThanOrEqual(previewRedeem(x, v))
      expect(previewWithdraw(x, v)).toBeGreaterThanOrEqual(previewDeposit(x, v))
    }), RUNS)
  })
})

describe('security model thresholds are exact (appendix A)', () => {
  const p = fc.bigInt({ min: 1n, max: WAD })
  it('A.4: the stake just above the minimum is secure and the one just below is not', () => {
    fc.assert(fc.property(wei(10n ** 24n), wei(10n ** 24n), p, p, (ch, cm, pw, fw) => {
      const s = minimumStake(ch, cm, pw, fw)
      expect(isStakeSecure(s + 1n, ch, cm, pw, fw)).toBe(true)
      if (s > 0n) expect(isStakeSecure(s - 1n, ch, cm, pw, fw)).toBe(false)
    }), RUNS)
  })

  it('A.5: maxTolerableMalicious is the largest M with P_attack < ε', () => {
    fc.assert(fc.property(fc.bigInt({ min: 1n, max: 10n ** 6n }), p, p, (n, pw, eps) => {
      const m = maxTolerableMalicious(n, pw, eps)
      expect(m).toBeGreaterThanOrEqual(0n)
      expect(m).toBeLessThanOrEqual(n)
      expect(isAttackBounded(m, n, pw, eps)).toBe(true)
      if (m < n) expect(isAttackBounded(m + 1n, n, pw, eps)).toBe(false)
    }), RUNS)
  })
})

describe('decimal strings round-trip exactly', () => {
  it('formatHeu ∘ parseHeu is the identity on wei', () => {
    fc.assert(fc.property(wei(10n ** 40n), w => { expect(parseHeu('x', formatHeu(w))).toBe(w) }), RUNS)
  })
})
