import { describe, it, expect } from 'vitest'
import {
  WAD, YEAR_SECONDS, WEEK_SECONDS, TOTAL_SUPPLY, E_MAX_WAD, E_BASE_WAD, R_MAX_WAD,
  emissionRateWad, reservoirRateWad, whitepaperEpochCap, annualEmission, emissionForPeriod,
  defaultSeason2Params, season2Dynamic, season2PoolCap, season2Week,
  POINT, POINTS_TABLE, pointRate, jobPoints, pointRateFromMemory, sumPointsByPool,
  allocate, multiplierWad, maxMultiplierWad, splitTips,
  convertToShares, convertToAssets, previewDeposit, previewMint, previewWithdraw, previewRedeem,
  exchangeRateWad, deposit, redeem, addRewards, requestUnstake, withdrawable, STHEU_LOCKUP_SECONDS,
  splitRevenue, minimumStake, isStakeSecure, expectedPayoffHonest, expectedPayoffMalicious,
  attackProbabilityWad, isAttackBounded, maxTolerableMalicious, honestIsEquilibrium,
  TOKEN_DISTRIBUTION_BPS, TOKEN_DISTRIBUTION, EconomicsError, parseHeu, formatHeu, parsePercentWad
} from '../../src/economics/index.js'

const pct = (s: string): bigint => parsePercentWad('pct', s)
const heu = (s: string): bigint => parseHeu('heu', s)
const frac = (s: string): bigint => parseHeu('frac', s) // a fraction in WAD, same parse

describe('whitepaper §3.4.4 emission rate E = min(E_max, E_b + 0.5·R)', () => {
  it.each([
    ['§3.4.4: R = 0 gives the baseline E_b = 1.25 %', '0', '1.25'],
    ['§3.4.4: R = 2 % gives 1.25 + 1 = 2.25 %', '2', '2.25'],
    ['§3.4.4: R = 5 % gives 3.75 %', '5', '3.75'],
    ['§3.4.4: the cap E_max = 5 % is reached at R_max = 7.5 %', '7.5', '5'],
    ['§3.4.4: above R_max the rate stays at E_max (R = 20 %)', '20', '5'],
    ['§3.4.4: R = 100 % still 5 %', '100', '5']
  ])('%s', (_why, r, e) => {
    expect(emissionRateWad(pct(r))).toBe(pct(e))
  })

  it.each([
    ['§3.4.5: reservoir = 5 % − E at R = 0 is 3.75 %', '0', '3.75'],
    ['§3.4.5: reservoir at R = 2 % is 2.75 %', '2', '2.75'],
    ['§3.4.5: reservoir at R = 7.5 % is 0', '7.5', '0'],
    ['§3.4.5: reservoir at R = 20 % is 0', '20', '0']
  ])('%s', (_why, r, res) => {
    expect(reservoirRateWad(pct(r))).toBe(pct(res))
    expect(reservoirRateWad(pct(r)) + emissionRateWad(pct(r))).toBe(E_MAX_WAD)
  })

  it('§3.4.4 constants: E_max 5 %, E_b 1.25 % (25 % of E_max), R_max 7.5 %, supply 1e9 HEU (§3.4.2)', () => {
    expect(E_MAX_WAD).toBe(pct('5'))
    expect(E_BASE_WAD).toBe(pct('1.25'))
    expect(E_BASE_WAD * 4n).toBe(E_MAX_WAD)
    expect(R_MAX_WAD).toBe(pct('7.5'))
    expect(emissionRateWad(R_MAX_WAD)).toBe(E_MAX_WAD)
    expect(emissionRateWad(R_MAX_WAD - 2n)).toBeLessThan(E_MAX_WAD)
    expect(TOTAL_SUPPLY).toBe(1_000_000_000n * 10n ** 18n)
  })

  it('annual amounts: R = 2 % emits 22,500,000 HEU and reserves 27,500,000 HEU', () => {
    const a = annualEmission(pct('2'))
    expect(formatHeu(a.annualEmission)).toBe('22500000')
    expect(formatHeu(a.annualReservoir)).toBe('27500000')
  })

  it('a year-long epoch with 2 % of supply as revenue matches the annual formula exactly', () => {
    const cap = whitepaperEpochCap(heu('20000000'), YEAR_SECONDS)
    expect(cap.revenueShareWad).toBe(pct('2'))
    expect(cap.rateWad).toBe(pct('2.25'))
    expect(cap.emission).toBe(heu('22500000'))
    expect(cap.reservoir).toBe(heu('27500000'))
  })

  it('a week at the same revenue rate gives 1/52.14 of the year, by the prescribed floor formulas', () => {
    const weeklyRevenue = heu('20000000') * WEEK_SECONDS / YEAR_SECONDS
    const cap = whitepaperEpochCap(weeklyRevenue, WEEK_SECONDS)
    const share = weeklyRevenue * YEAR_SECONDS * WAD / (WEEK_SECONDS * TOTAL_SUPPLY)
    expect(cap.revenueShareWad).toBe(share)
    expect(cap.rateWad).toBe(emissionRateWad(share))
    expect(cap.emission).toBe(TOTAL_SUPPLY * cap.rateWad * WEEK_SECONDS / (WAD * YEAR_SECONDS))
    expect(cap.emission).toBe(emissionForPeriod(cap.rateWad, WEEK_SECONDS))
    expect(cap.emission + cap.reservoir).toBeLessThanOrEqual(emissionForPeriod(E_MAX_WAD, WEEK_SECONDS))
  })

  it('rejects negative revenue and a zero-length epoch', () => {
    expect(() => emissionRateWad(-1n)).toThrow(EconomicsError)
    expect(() => whitepaperEpochCap(-1n, WEEK_SECONDS)).toThrow(/negative/)
    expect(() => whitepaperEpochCap(1n, 0n)).toThrow(EconomicsError)
  })
})

describe('Season 2 post: weekly pools, base 200,000 + dynamic up to 500,000', () => {
  it.each([
    ['Season 2: base 200,000 per pool per week at zero usage', '0', '200000', '0'],
    ['ours: half of the dynamic part at u = halfSaturation (1,000,000 HEU)', '1000000', '200000', '250000'],
    ['ours: 80 % at 4,000,000 HEU', '4000000', '200000', '400000']
  ])('%s', (_why, u, base, dyn) => {
    expect(season2PoolCap(heu(u))).toBe(heu(base) + heu(dyn))
    expect(season2Dynamic(heu(u))).toBe(heu(dyn))
  })

  it('Season 2: "up to 500,000" — the dynamic part never reaches the ceiling, even at absurd usage', () => {
    const d = season2Dynamic(10n ** 40n)
    expect(d).toBeLessThan(defaultSeason2Params.maxDynamic)
    expect(d).toBeGreaterThan(heu('499999'))
  })

  it('Season 2: both pools, Llama and Waifu, each get their own base', () => {
    const week = season2Week({ llama: 0n, waifu: heu('1000000') })
    expect(week.map(w => [w.pool, formatHeu(w.base), formatHeu(w.total)])).toEqual([['llama', '200000', '200000'], ['waifu', '200000', '450000']])
  })

  it('the dynamic slope at zero is the whitepaper slope 0.5 (wash trading never pays)', () => {
    expect(defaultSeason2Params.maxDynamic * WAD / defaultSeason2Params.halfSaturation).toBe(WAD / 2n)
  })

  it('parameters are configurable and validated', () => {
    expect(season2Dynamic(heu('50000'), { ...defaultSeason2Params, halfSaturation: heu('50000') })).toBe(heu('250000'))
    expect(() => season2Dynamic(1n, { ...defaultSeason2Params, halfSaturation: 0n })).toThrow(EconomicsError)
    expect(() => season2Dynamic(-1n)).toThrow(/negative/)
  })
})

describe('points per job (§3.2.1: GPU time weighted by VRAM; Heurist reference units)', () => {
  it.each([
    ['Llama unit: 1,000 input+output tokens on Mixtral-8x7B = 1 point', 'mixtral-8x7b', { kind: 'llm' as const, promptTokens: 400n, outputTokens: 600n }, POINT],
    ['Llama: 2,500 tokens on Mixtral = 2.5 points', 'mixtral-8x7b', { kind: 'llm' as const, promptTokens: 2000n, outputTokens: 500n }, 2_500_000n],
    ['Llama: a smaller model earns less per token (Llama-3-8B, 0.205)', 'llama-3-8b', { kind: 'llm' as const, promptTokens: 1000n, outputTokens: 0n }, 205_000n],
    ['Waifu unit: one 512×512 SD 1.5 image at 20 steps = 1 point', 'sd-1.5', { kind: 'image' as const, width: 512n, height: 512n, steps: 20n }, POINT],
    ['Waifu: 1024×1024 at 20 steps is 4× the pixels = 4 points', 'sd-1.5', { kind: 'image' as const, width: 1024n, height: 1024n, steps: 20n }, 4n * POINT],
    ['Waifu: 512×512 at 40 steps = 2 points', 'sd-1.5', { kind: 'image' as const, width: 512n, height: 512n, steps: 40n }, 2n * POINT]
  ])('%s', (_why, model, usage, expected) => {
    expect(jobPoints(pointRate(model), usage)).toBe(expected)
  })

  it('the table maps LLMs to the Llama pool and image models to the Waifu pool', () => {
    for (const r of Object.values(POINTS_TABLE)) expect(r.pool).toBe(r.kind === 'llm' ? 'llama' : 'waifu')
    expect(pointRate('mixtral-8x7b').minVramGb).toBe(24) // Season 2 FAQ: LLMs need 24 GB
    expect(pointRate('sd-1.5').minVramGb).toBe(12) // Season 2 FAQ: SD needs 12 GB
  })

  it('an unknown model, a negative count or a kind mismatch is refused', () => {
    expect(() => pointRate('gpt-5')).toThrow(/no point rate/)
    expect(() => pointRate('__proto__')).toThrow(EconomicsError)
    expect(() => jobPoints(pointRate('sd-1.5'), { kind: 'llm', promptTokens: 1n, outputTokens: 1n })).toThrow(EconomicsError)
    expect(() => jobPoints(pointRate('mixtral-8x7b'), { kind: 'llm', promptTokens: -1n, outputTokens: 1n })).toThrow(/negative/)
  })

  it('the memory fallback gives the reference weight at the reference size and grows with size', () => {
    expect(pointRateFromMemory('llm', 24n * 2n ** 30n).weightPpm).toBe(1_000_000n)
    expect(pointRateFromMemory('llm', 48n * 2n ** 30n).weightPpm).toBe(4_000_000n)
    expect(sumPointsByPool([{ pool: 'llama', points: 3n }, { pool: 'waifu', points: 2n }, { pool: 'llama', points: 4n }])).toEqual({ llama: 7n, waifu: 2n })
  })
})

describe('epoch allocation, multiplier and tips (§3.2.1, §3.2.2, Season 2 multiplier rules)', () => {
  it('splits pro rata to points × multiplier; the dust (< 1 wei per miner) is reported', () => {
    const a = allocate(100n, [
      { id: 'a', points: 1n, multiplierWad: WAD },
      { id: 'b', points: 1n, multiplierWad: WAD },
      { id: 'c', points: 1n, multiplierWad: WAD }
    ])
    expect(a.payouts.map(p => p.amount)).toEqual([33n, 33n, 33n])
    expect(a.dust).toBe(1n)
  })

  it('a 2× multiplier doubles the share for the same points', () => {
    const a = allocate(heu('300'), [{ id: 'a', points: 10n, multiplierWad: 2n * WAD }, { id: 'b', points: 10n, multiplierWad: WAD }])
    expect(a.payouts.map(p => formatHeu(p.amount))).toEqual(['200', '100'])
    expect(a.dust).toBe(0n)
  })

  it('no points: nothing paid, the whole pool is dust for the reservoir; duplicates and negatives refused', () => {
    expect(allocate(5n, [{ id: 'a', points: 0n, multiplierWad: WAD }])).toEqual({ payouts: [{ id: 'a', weight: 0n, amount: 0n }], dust: 5n })
    expect(allocate(5n, [])).toEqual({ payouts: [], dust: 5n })
    expect(() => allocate(5n, [{ id: 'a', points: 1n, multiplierWad: WAD }, { id: 'a', points: 1n, multiplierWad: WAD }])).toThrow(/twice/)
    expect(() => allocate(5n, [{ id: 'a', points: -1n, multiplierWad: WAD }])).toThrow(/negative/)
  })

  it.each([
    ['no stake, no votes: 1×', '0', '0', '1'],
    ['full stake only: 1.5×', '100000', '0', '1.5'],
    ['full votes only: 1.5×', '0', '100000', '1.5'],
    ['half stake: 1.25×', '50000', '0', '1.25'],
    ['stake and votes beyond the caps: bounded at 2×', '10000000', '10000000', '2']
  ])('multiplier, %s', (_why, stake, votes, m) => {
    expect(multiplierWad(heu(stake), heu(votes))).toBe(frac(m))
  })

  it('the multiplier bound is 2× by default', () => {
    expect(maxMultiplierWad()).toBe(2n * WAD)
  })

  it('tips: the node shares tipBps of its reward with voters pro rata to votes and keeps the dust', () => {
    const t = splitTips(1000n, 1000, [{ id: 'v1', votes: 1n }, { id: 'v2', votes: 2n }])
    expect(t.tipPool).toBe(100n)
    expect(t.voters).toEqual([{ id: 'v1', amount: 33n }, { id: 'v2', amount: 66n }])
    expect(t.node).toBe(901n)
    expect(splitTips(1000n, 1000, []).node).toBe(1000n)
    expect(() => splitTips(1000n, 10_001, [])).toThrow(EconomicsError)
  })
})

describe('stHEU (§3.4.3): ERC4626 conversions rounding in the vault\'s favour, 1-year lockup', () => {
  const v = { totalAssets: heu('1100'), totalShares: heu('1000') }

  it('the first deposit is 1:1 (OpenZeppelin virtual share and asset)', () => {
    expect(convertToShares(heu('5'), { totalAssets: 0n, totalShares: 0n })).toBe(heu('5'))
  })

  it('matches OpenZeppelin: shares = assets·(S+1)/(A+1), floor on deposit and redeem, ceil on mint and withdraw', () => {
    const assets = 1234567n
    expect(previewDeposit(assets, v)).toBe(assets * (v.totalShares + 1n) / (v.totalAssets + 1n))
    expect(previewWithdraw(assets, v)).toBe(previewDeposit(assets, v) + 1n)
    expect(previewRedeem(assets, v)).toBe(assets * (v.totalAssets + 1n) / (v.totalShares + 1n))
    expect(previewMint(assets, v)).toBe(previewRedeem(assets, v) + 1n)
    expect(convertToAssets(7n, v, 'ceil')).toBeGreaterThanOrEqual(convertToAssets(7n, v, 'floor'))
  })

  it('the exchange rate rises when rewards arrive, and deposits and redeems do not lower it', () => {
    let s = { totalAssets: 0n, totalShares: 0n }
    s = deposit(s, heu('1000')).vault
    const r0 = exchangeRateWad(s)
    expect(r0).toBe(WAD - 0n) // 1 HEU per stHEU
    s = addRewards(s, heu('100'))
    const r1 = exchangeRateWad(s)
    expect(r1).toBeGreaterThan(r0)
    s = deposit(s, heu('333')).vault
    expect(exchangeRateWad(s)).toBeGreaterThanOrEqual(r1)
    s = redeem(s, heu('10')).vault
    expect(exchangeRateWad(s)).toBeGreaterThanOrEqual(r1)
  })

  it('§3.4.3: an unstake unlocks only after one year, then in full', () => {
    expect(STHEU_LOCKUP_SECONDS).toBe(365n * 24n * 3600n)
    const { unstake } = requestUnstake(v, heu('10'), 1000n)
    expect(unstake.unlockAt).toBe(1000n + STHEU_LOCKUP_SECONDS)
    expect(withdrawable(unstake, unstake.unlockAt - 1n)).toBe(0n)
    expect(withdrawable(unstake, unstake.unlockAt)).toBe(unstake.assets)
    expect(unstake.assets).toBe(previewRedeem(heu('10'), v))
    expect(() => requestUnstake(v, v.totalShares + 1n, 0n)).toThrow(EconomicsError)
  })
})

describe('revenue split (§3.2.3 pods, §3.2.5 frontends) in basis points', () => {
  it.each([
    ['node takes the rest and the dust', 1001n, 1000, 500, 0, { node: 851n, pod: 100n, frontend: 50n, protocol: 0n }],
    ['no shares: all to the node', 777n, 0, 0, 0, { node: 777n, pod: 0n, frontend: 0n, protocol: 0n }],
    ['all 10,000 bps given away', 100n, 6000, 4000, 0, { node: 0n, pod: 60n, frontend: 40n, protocol: 0n }],
    ['§3.4.3 buybacks: 5 % to stHEU, floor like the others', 1999n, 2000, 1000, 500, { node: 1302n, pod: 399n, frontend: 199n, protocol: 99n }]
  ])('%s', (_why, amount, podBps, frontendBps, protocolFeeBps, expected) => {
    expect(splitRevenue(amount, { podBps, frontendBps, protocolFeeBps })).toEqual(expected)
  })

  it('rejects shares above 10,000 bps and negatives', () => {
    expect(() => splitRevenue(1n, { podBps: 6000, frontendBps: 4001 })).toThrow(/10000/)
    expect(() => splitRevenue(1n, { podBps: 6000, frontendBps: 3501, protocolFeeBps: 500 })).toThrow(/10000/)
    expect(() => splitRevenue(1n, { podBps: -1, frontendBps: 0 })).toThrow(/negative/)
    expect(() => splitRevenue(-1n, { podBps: 0n, frontendBps: 0n })).toThrow(/negative/)
  })
})

describe('security model, appendix A', () => {
  it('A.4: the minimum-stake example C_h = 1, C_m = 0.2, P = 0.1, F = 0.5 gives S > 16', () => {
    expect(minimumStake(heu('1'), heu('0.2'), frac('0.1'), frac('0.5'))).toBe(heu('16'))
    expect(isStakeSecure(heu('16'), heu('1'), heu('0.2'), frac('0.1'), frac('0.5'))).toBe(false) // strict inequality
    expect(isStakeSecure(heu('16') + 1n, heu('1'), heu('0.2'), frac('0.1'), frac('0.5'))).toBe(true)
  })

  it.each([
    ['A.4: P = 1, F = 1: S > C_h − C_m', '1', '0.2', '1', '1', '0.8'],
    ['A.4: rounding up, never understated (gap 1 wei, P·F = 1/3)', '0.000000000000000001', '0', '0.333333333333333333', '1', '0.000000000000000004'],
    ['A.4: cheating saves nothing (C_m ≥ C_h): no stake needed', '1', '2', '0.1', '0.5', '0']
  ])('%s', (_why, ch, cm, p, f, s) => {
    expect(minimumStake(heu(ch), heu(cm), frac(p), frac(f))).toBe(heu(s))
  })

  it('A.2: P and F must lie in (0, 1]', () => {
    expect(() => minimumStake(1n, 0n, 0n, WAD)).toThrow(EconomicsError)
    expect(() => minimumStake(1n, 0n, WAD + 1n, WAD)).toThrow(EconomicsError)
    expect(() => minimumStake(1n, 0n, WAD, 0n)).toThrow(EconomicsError)
  })

  it('A.3: E_h = α(R − C_h) and E_m = α(R − C_m − P·F·S)', () => {
    expect(expectedPayoffHonest(frac('0.5'), heu('2'), heu('1'))).toBe(heu('0.5'))
    // 0.5·(2 − 0.2 − 0.1·0.5·20) = 0.4
    expect(expectedPayoffMalicious(frac('0.5'), heu('2'), heu('0.2'), frac('0.1'), frac('0.5'), heu('20'))).toBe(heu('0.4'))
    expect(expectedPayoffHonest(WAD, heu('1'), heu('2'))).toBe(-heu('1'))
  })

  it.each([
    ['A.5: 10 of 100 malicious, P = 0.9: P_attack = 0.01', 10n, 100n, '0.9', '0.01'],
    ['A.5: none malicious: 0', 0n, 100n, '0.5', '0'],
    ['A.5: P = 1: every cheat is caught', 50n, 100n, '1', '0']
  ])('%s', (_why, m, n, p, expected) => {
    expect(attackProbabilityWad(m, n, frac(p))).toBe(frac(expected))
  })

  it.each([
    ['A.5: N = 100, P = 0.9, ε = 0.01: M < 10, so 9', 100n, '0.9', '0.01', 9n],
    ['A.5: N = 1000, P = 0.5, ε = 0.01: M < 20, so 19', 1000n, '0.5', '0.01', 19n],
    ['A.5: N = 1000, P = 0.3, ε = 0.01: M < 14.28, so 14', 1000n, '0.3', '0.01', 14n],
    ['A.5: P = 1: all N tolerated', 10n, '1', '0.01', 10n]
  ])('%s', (_why, n, p, eps, expected) => {
    const m = maxTolerableMalicious(n, frac(p), frac(eps))
    expect(m).toBe(expected)
    expect(isAttackBounded(m, n, frac(p), frac(eps))).toBe(true)
    if (m < n) expect(isAttackBounded(m + 1n, n, frac(p), frac(eps))).toBe(false)
  })

  it('A.6: the repeated game favours honesty when E_h/(1 − δ) > E_m', () => {
    const base = { reward: heu('2'), costHonest: heu('1'), costMalicious: heu('0.2'), pWad: frac('0.1'), fWad: frac('0.5'), stake: 0n }
    // no stake: E_m = 1.8; E_h/(1 − δ) = 1/(1 − δ): honest wins iff δ > 4/9
    expect(honestIsEquilibrium({ ...base, deltaWad: frac('0.4') })).toBe(false)
    expect(honestIsEquilibrium({ ...base, deltaWad: frac('0.5') })).toBe(true)
    // with S > 16 the one-shot condition already holds, so any δ works
    expect(honestIsEquilibrium({ ...base, stake: heu('17'), deltaWad: frac('0.01') })).toBe(true)
    expect(() => honestIsEquilibrium({ ...base, deltaWad: WAD })).toThrow(EconomicsError)
  })
})

describe('token distribution, §3.4.2', () => {
  it('9.5 % community, 4.5 % marketing and liquidity, 6 % private sale, 15 % team, 15 % treasury, 50 % emission: 100 %', () => {
    expect(Object.values(TOKEN_DISTRIBUTION_BPS).reduce((a, b) => a + b, 0n)).toBe(10_000n)
    expect(Object.values(TOKEN_DISTRIBUTION).reduce((a, b) => a + b, 0n)).toBe(TOTAL_SUPPLY)
    expect(formatHeu(TOKEN_DISTRIBUTION.emission)).toBe('500000000')
    expect(formatHeu(TOKEN_DISTRIBUTION.earlyCommunity)).toBe('95000000')
    expect(formatHeu(TOKEN_DISTRIBUTION.marketingAndLiquidity)).toBe('45000000')
    expect(formatHeu(TOKEN_DISTRIBUTION.privateSale)).toBe('60000000')
    expect(formatHeu(TOKEN_DISTRIBUTION.teamAndAdvisors)).toBe('150000000')
    expect(formatHeu(TOKEN_DISTRIBUTION.protocolTreasury)).toBe('150000000')
  })
})

describe('decimal parsing at the edge: exact, no floats', () => {
  it('parses and formats HEU exactly; rejects signs, exponents, NaN and too many decimals', () => {
    expect(parseHeu('x', '0.1')).toBe(10n ** 17n)
    expect(formatHeu(parseHeu('x', '123.000000000000000001'))).toBe('123.000000000000000001')
    for (const bad of ['-1', '1e3', 'NaN', '', '1.0000000000000000001', '0x10', 'Infinity']) expect(() => parseHeu('x', bad)).toThrow(EconomicsError)
  })
})
