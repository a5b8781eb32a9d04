import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { runCli, tempDir } from '../helpers.js'

// `heurist economics` as a real process (bin/heurist needs `npx tsc -p .` first; `npm test` builds).
describe('heurist economics calculator', () => {
  let dir = ''
  let cleanup: () => Promise<void> = async () => {}
  beforeAll(async () => { ({ dir, cleanup } = await tempDir('heurist-econ-')) })
  afterAll(async () => { await cleanup() })

  const json = async (args: string[]): Promise<Record<string, any>> => {
    const r = await runCli(['economics', ...args, '--json'], { timeoutMs: 30_000 })
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    return JSON.parse(r.stdout) as Record<string, any>
  }

  it('emission --revenue-pct 2 --json: §3.4.4 E = 2.25 %, reservoir 2.75 %, amounts as HEU strings', async () => {
    const out = await json(['emission', '--revenue-pct', '2'])
    expect(out).toMatchObject({ revenuePct: 2, emissionPct: 2.25, reservoirPct: 2.75, annualEmission: '22500000', weeklyEmission: '431506.849315068493150684' })
    const capped = await json(['emission', '--revenue-pct', '20'])
    expect(capped).toMatchObject({ emissionPct: 5, reservoirPct: 0, annualEmission: '50000000' })
  })

  it('emission without --json prints a readable table', async () => {
    const r = await runCli(['economics', 'emission', '--revenue-pct', '0'], { timeoutMs: 30_000 })
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/emission E\s+1\.25 % a year/)
    expect(r.stdout).toMatch(/annual emission\s+12500000 HEU/)
  })

  it('security: appendix A example gives minStake 16; with N, M, ε gives pAttack, maxMalicious, secure', async () => {
    expect(await json(['security', '--ch', '1', '--cm', '0.2', '--p', '0.1', '--f', '0.5'])).toMatchObject({ minStake: '16' })
    const out = await json(['security', '--ch', '1', '--cm', '0.2', '--p', '0.9', '--f', '0.5', '--miners', '100', '--malicious', '10', '--epsilon', '0.01'])
    expect(out).toMatchObject({ pAttack: 0.01, maxMalicious: 9, secure: false })
  })

  it('season2 --organic-usage: base, dynamic and total per pool', async () => {
    const out = await json(['season2', '--organic-usage', '1000000'])
    expect(out.pools.llama).toEqual({ organicUsage: '1000000', base: '200000', dynamic: '250000', total: '450000' })
    expect(out.pools.waifu.base).toBe('200000')
    expect((await json(['season2', '--organic-usage', '0'])).pools.waifu.total).toBe('200000')
  })

  it('rewards --input: the allocation pays the pool to the wei (dust reported) and applies the multiplier', async () => {
    const file = join(dir, 'miners.json')
    await writeFile(file, JSON.stringify({ poolAmount: '100', miners: [
      { id: 'a', points: '1' }, { id: 'b', points: '1' }, { id: 'c', points: '1', stake: '100000', votes: '100000', tipBps: 1000 }
    ] }))
    const out = await json(['rewards', '--input', file])
    expect(out.miners.map((m: any) => m.multiplier)).toEqual([1, 1, 2])
    expect(out.miners.map((m: any) => m.reward)).toEqual(['25', '25', '50'])
    expect(out.miners[2].tipToVoters).toBe('5')
    expect(out.dustWei).toBe('0')
  })

  it.each([
    [['emission', '--revenue-pct', '-1'], /negative/],
    [['emission', '--revenue-pct', 'NaN'], /decimal/],
    [['security', '--ch', '1', '--cm', '0.2', '--p', '0', '--f', '0.5'], /--p must be in \(0, 1\]/],
    [['security', '--ch', '1', '--cm', '0.2', '--p', '1.5', '--f', '0.5'], /--p must be in \(0, 1\]/],
    [['security', '--ch', '1', '--cm', '0.2', '--p', '0.5', '--f', '2'], /--f must be in \(0, 1\]/],
    [['security', '--ch', '-1', '--cm', '0.2', '--p', '0.5', '--f', '1'], /negative/],
    [['season2', '--organic-usage', 'abc'], /decimal/]
  ])('bad numbers exit 2 with the reason: %j', async (args, reason) => {
    const r = await runCli(['economics', ...args], { timeoutMs: 30_000 })
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(reason)
    expect(r.stdout).toBe('')
  })

  it('rewards with a malformed input file exits 2 naming the problem', async () => {
    const file = join(dir, 'bad.json')
    await writeFile(file, JSON.stringify({ miners: [{ id: 'a', points: '-1' }] }))
    const r = await runCli(['economics', 'rewards', '--input', file], { timeoutMs: 30_000 })
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/miners\[0\]\.points must not be negative/)
    await writeFile(file, '{"miners": [{"id": "a"}]}')
    const r2 = await runCli(['economics', 'rewards', '--input', file], { timeoutMs: 30_000 })
    expect(r2.code).toBe(2)
    expect(r2.stderr).toMatch(/miners\.0\.points/)
  })
})
