import type { Command } from 'commander'
import { readFile, stat } from 'node:fs/promises'
import { z } from 'zod'
import { usageError } from '../../core/errors.js'
import { globalOptions, toJson } from '../context.js'
import {
  EconomicsError, WAD, WEEK_SECONDS, E_MAX_WAD, POOLS,
  annualEmission, emissionForPeriod, parseUnits, parseHeu, parsePercentWad, formatHeu, formatUnits,
  wadToPercent, wadToNumber, defaultSeason2Params, season2Week, allocate, multiplierWad,
  defaultMultiplierParams, splitTips, minimumStake, isStakeSecure, attackProbabilityWad,
  maxTolerableMalicious, isAttackBounded, expectedPayoffHonest, expectedPayoffMalicious,
  honestIsEquilibrium, season2PoolCap, type Season2Params, type MultiplierParams, type Pool
} from '../../economics/index.js'

/** The rewards input file is read whole; bounded so a wrong path cannot eat the memory. */
const MAX_INPUT_BYTES = 8 * 1024 * 1024
const MAX_INPUT_MINERS = 100_000

/** Runs a calculation; bad numbers (EconomicsError) become usage errors: exit 2 with the reason. */
function calc<T> (f: () => T): T {
  try {
    return f()
  } catch (e) {
    if (e instanceof EconomicsError) throw usageError(e.code, e.message)
    throw e
  }
}

function print (cmd: Command, result: unknown, human: () => string): void {
  if (globalOptions(cmd).json === true) process.stdout.write(toJson(result) + '\n')
  else process.stdout.write(human().replace(/\n?$/, '\n'))
}

/** HEU for people: exact value, cut to 6 decimals. */
function heu (wei: bigint): string {
  const s = formatHeu(wei)
  const dot = s.indexOf('.')
  return dot === -1 || s.length - dot - 1 <= 6 ? s : s.slice(0, dot + 7)
}

function amountFlag (flag: string, raw: string): bigint {
  return calc(() => parseHeu(flag, raw))
}

/** A fraction flag: P and F in (0, 1], ε in (0, 1], δ in (0, 1), α in [0, 1]. */
function fractionFlag (flag: string, raw: string, range: '(0,1]' | '(0,1)' | '[0,1]'): bigint {
  const v = calc(() => parseUnits(flag, raw, 18))
  const ok = (range === '[0,1]' ? v >= 0n : v > 0n) && (range === '(0,1)' ? v < WAD : v <= WAD)
  if (!ok) throw usageError('ECON_OUT_OF_RANGE', `${flag} must be in ${range.replace(',', ', ')}, got ${raw}`)
  return v
}

function countFlag (flag: string, raw: string, min: bigint): bigint {
  if (!/^\d{1,15}$/.test(raw.trim())) throw usageError('ECON_BAD_NUMBER', `${flag}: expected a whole number, got ${JSON.stringify(raw)}`)
  const v = BigInt(raw.trim())
  if (v < min) throw usageError('ECON_OUT_OF_RANGE', `${flag} must be at least ${min}, got ${raw}`)
  return v
}

function table (rows: Array<[string, string]>): string {
  const w = Math.max(...rows.map(r => r[0].length))
  return rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join('\n')
}

function season2Params (o: { base?: string, maxDynamic?: string, halfSaturation?: string }): Season2Params {
  return {
    base: o.base === undefined ? defaultSeason2Params.base : amountFlag('--base', o.base),
    maxDynamic: o.maxDynamic === undefined ? defaultSeason2Params.maxDynamic : amountFlag('--max-dynamic', o.maxDynamic),
    halfSaturation: o.halfSaturation === undefined ? defaultSeason2Params.halfSaturation : amountFlag('--half-saturation', o.halfSaturation)
  }
}

function emissionCommand (parent: Command): void {
  parent.command('emission')
    .description('whitepaper §3.4.4 schedule: E = min(5 %, 1.25 % + 0.5·R) and the compute reservoir 5 % − E')
    .requiredOption('--revenue-pct <R>', 'annual protocol revenue as a percent of total supply, e.g. 2')
    .action((opts: { revenuePct: string }, cmd: Command) => {
      const share = calc(() => parsePercentWad('--revenue-pct', opts.revenuePct))
      const a = calc(() => annualEmission(share))
      const weeklyEmission = emissionForPeriod(a.rateWad, WEEK_SECONDS)
      const weeklyReservoir = emissionForPeriod(E_MAX_WAD - a.rateWad, WEEK_SECONDS)
      const result = {
        revenuePct: wadToPercent(share),
        emissionPct: wadToPercent(a.rateWad),
        reservoirPct: wadToPercent(a.reservoirRateWad),
        annualEmission: formatHeu(a.annualEmission),
        weeklyEmission: formatHeu(weeklyEmission),
        annualReservoir: formatHeu(a.annualReservoir),
        weeklyReservoir: formatHeu(weeklyReservoir),
        emissionRateWad: a.rateWad.toString()
      }
      print(cmd, result, () => table([
        ['revenue R', `${result.revenuePct} % of supply a year`],
        ['emission E', `${result.emissionPct} % a year${a.rateWad === E_MAX_WAD ? ' (capped at E_max)' : ''}`],
        ['reservoir 5 % − E', `${result.reservoirPct} % a year`],
        ['annual emission', `${heu(a.annualEmission)} HEU`],
        ['weekly emission', `${heu(weeklyEmission)} HEU`],
        ['annual reservoir', `${heu(a.annualReservoir)} HEU`],
        ['weekly reservoir', `${heu(weeklyReservoir)} HEU`]
      ]))
    })
}

interface SecurityOpts { ch: string, cm: string, p: string, f: string, stake?: string, miners?: string, malicious?: string, epsilon?: string, reward?: string, alpha?: string, delta?: string }

function securityCommand (parent: Command): void {
  parent.command('security')
    .description('whitepaper appendix A: minimum stake S > (C_h − C_m)/(P·F), attack probability, repeated game')
    .requiredOption('--ch <C_h>', 'cost of honest work per task, HEU')
    .requiredOption('--cm <C_m>', 'cost of cheating per task, HEU')
    .requiredOption('--p <P>', 'probability a malicious action is detected, in (0, 1]')
    .requiredOption('--f <F>', 'fraction of stake slashed when caught, in (0, 1]')
    .option('--stake <S>', 'a stake to check against the minimum, HEU')
    .option('--miners <N>', 'number of miners')
    .option('--malicious <M>', 'number of malicious miners')
    .option('--epsilon <ε>', 'tolerated attack probability, in (0, 1]')
    .option('--reward <R>', 'reward per task, HEU (for the payoffs E_h, E_m)')
    .option('--alpha <α>', 'probability a miner is picked for a task, in [0, 1] (default 1)')
    .option('--delta <δ>', 'discount factor of the repeated game, in (0, 1)')
    .action((o: SecurityOpts, cmd: Command) => {
      const ch = amountFlag('--ch', o.ch)
      const cm = amountFlag('--cm', o.cm)
      const p = fractionFlag('--p', o.p, '(0,1]')
      const f = fractionFlag('--f', o.f, '(0,1]')
      const minStake = calc(() => minimumStake(ch, cm, p, f))
      const result: Record<string, unknown> = { minStake: formatHeu(minStake), costGap: formatHeu(ch > cm ? ch - cm : 0n), p: wadToNumber(p), f: wadToNumber(f) }
      const rows: Array<[string, string]> = [['minimum stake S', `> ${heu(minStake)} HEU  (C_h − C_m)/(P·F)`]]
      let stake: bigint | undefined
      if (o.stake !== undefined) {
        stake = amountFlag('--stake', o.stake)
        const s = stake
        result.stake = formatHeu(s)
        result.stakeSecure = calc(() => isStakeSecure(s, ch, cm, p, f))
        rows.push(['stake secure', `${String(result.stakeSecure)} (S = ${heu(s)} HEU)`])
      }
      const attack = [o.miners, o.malicious, o.epsilon]
      if (attack.some(v => v !== undefined)) {
        if (attack.some(v => v === undefined)) throw usageError('CLI_BAD_FLAG', '--miners, --malicious and --epsilon go together')
        const n = countFlag('--miners', o.miners!, 1n)
        const m = countFlag('--malicious', o.malicious!, 0n)
        if (m > n) throw usageError('ECON_OUT_OF_RANGE', `--malicious must be at most --miners (${n}), got ${m}`)
        const eps = fractionFlag('--epsilon', o.epsilon!, '(0,1]')
        const pAttack = calc(() => attackProbabilityWad(m, n, p))
        result.pAttack = wadToNumber(pAttack)
        result.maxMalicious = Number(calc(() => maxTolerableMalicious(n, p, eps)))
        result.secure = calc(() => isAttackBounded(m, n, p, eps))
        rows.push(['P_attack', `${String(result.pAttack)}  (M/N)(1 − P)`], ['max malicious M', `${String(result.maxMalicious)}  (M < εN/(1 − P))`], ['secure', `${String(result.secure)}  (P_attack < ε = ${wadToNumber(eps)})`])
      }
      if (o.reward !== undefined) {
        const r = amountFlag('--reward', o.reward)
        const alpha = o.alpha === undefined ? WAD : fractionFlag('--alpha', o.alpha, '[0,1]')
        const s = stake ?? minStake
        const eh = calc(() => expectedPayoffHonest(alpha, r, ch))
        const em = calc(() => expectedPayoffMalicious(alpha, r, cm, p, f, s))
        Object.assign(result, { payoffHonest: formatHeu(eh), payoffMalicious: formatHeu(em), honestPays: eh > em })
        rows.push(['E_h', `${heu(eh)} HEU  α(R − C_h)`], ['E_m', `${heu(em)} HEU  α(R − C_m − P·F·S), S = ${heu(s)}`])
        if (o.delta !== undefined) {
          const delta = fractionFlag('--delta', o.delta, '(0,1)')
          result.honestEquilibrium = calc(() => honestIsEquilibrium({ reward: r, costHonest: ch, costMalicious: cm, pWad: p, fWad: f, stake: s, deltaWad: delta }))
          rows.push(['honest equilibrium', `${String(result.honestEquilibrium)}  E_h/(1 − δ) > E_m`])
        }
      } else if (o.alpha !== undefined || o.delta !== undefined) {
        throw usageError('CLI_BAD_FLAG', '--alpha and --delta need --reward')
      }
      print(cmd, result, () => table(rows))
    })
}

interface Season2Opts { organicUsage?: string, llamaUsage?: string, waifuUsage?: string, base?: string, maxDynamic?: string, halfSaturation?: string }

function season2Command (parent: Command): void {
  parent.command('season2')
    .description('Season 2 weekly pools: base 200,000 HEU + dynamic up to 500,000 HEU from organic paid usage')
    .option('--organic-usage <X>', 'organic paid revenue per pool per week, HEU (both pools)')
    .option('--llama-usage <X>', 'organic paid revenue of the LLM pool this week, HEU (overrides --organic-usage)')
    .option('--waifu-usage <X>', 'organic paid revenue of the image pool this week, HEU (overrides --organic-usage)')
    .option('--base <HEU>', 'base reward per pool per week (default 200000)')
    .option('--max-dynamic <HEU>', 'ceiling of the dynamic reward per pool per week (default 500000)')
    .option('--half-saturation <HEU>', 'organic revenue at which the dynamic part is half its ceiling (default 1000000)')
    .action((o: Season2Opts, cmd: Command) => {
      if (o.organicUsage === undefined && (o.llamaUsage === undefined || o.waifuUsage === undefined)) {
        throw usageError('CLI_BAD_FLAG', 'give --organic-usage X (HEU of organic paid revenue per pool per week), or both --llama-usage and --waifu-usage')
      }
      const params = season2Params(o)
      const usage = (flag: string, v: string | undefined): bigint => amountFlag(flag, (v ?? o.organicUsage)!)
      const weeks = calc(() => season2Week({ llama: usage('--llama-usage', o.llamaUsage), waifu: usage('--waifu-usage', o.waifuUsage) }, params))
      const pools = Object.fromEntries(weeks.map(w => [w.pool, { organicUsage: formatHeu(w.organicRevenue), base: formatHeu(w.base), dynamic: formatHeu(w.dynamic), total: formatHeu(w.total) }]))
      const total = weeks.reduce((s, w) => s + w.total, 0n)
      const result = {
        organicUsage: o.organicUsage === undefined ? undefined : formatHeu(amountFlag('--organic-usage', o.organicUsage)),
        pools,
        total: formatHeu(total),
        params: { base: formatHeu(params.base), maxDynamic: formatHeu(params.maxDynamic), halfSaturation: formatHeu(params.halfSaturation) }
      }
      print(cmd, result, () => {
        const head = ['pool', 'organic usage', 'base', 'dynamic', 'total']
        const rows = weeks.map(w => [w.pool, heu(w.organicRevenue), heu(w.base), heu(w.dynamic), heu(w.total)])
        rows.push(['all', '', '', '', heu(total)])
        const widths = head.map((h, i) => Math.max(h.length, ...rows.map(r => r[i]!.length)))
        const line = (r: string[]): string => r.map((c, i) => i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)).join('  ')
        return [line(head), ...rows.map(line), '', `HEU per week; dynamic = ${heu(params.maxDynamic)}·u/(u + ${heu(params.halfSaturation)})`].join('\n')
      })
    })
}

const decimal = z.union([z.string().max(100), z.number().finite()]).transform(v => String(v))
const rewardsInput = z.object({
  pool: z.enum(POOLS as [Pool, ...Pool[]]).optional(),
  poolAmount: decimal.optional(),
  organicUsage: decimal.optional(),
  season2: z.object({ base: decimal.optional(), maxDynamic: decimal.optional(), halfSaturation: decimal.optional() }).strict().optional(),
  multiplier: z.object({ stakeBonus: decimal.optional(), stakeCap: decimal.optional(), voteBonus: decimal.optional(), voteCap: decimal.optional() }).strict().optional(),
  miners: z.array(z.object({
    id: z.string().min(1).max(200),
    points: decimal,
    stake: decimal.optional(),
    votes: decimal.optional(),
    tipBps: z.number().int().min(0).max(10_000).optional()
  }).strict()).max(MAX_INPUT_MINERS)
}).strict()

async function readRewardsInput (path: string): Promise<z.infer<typeof rewardsInput>> {
  let text: string
  try {
    const s = await stat(path)
    if (!s.isFile()) throw usageError('ECON_BAD_INPUT', `--input ${path}: not a file`)
    if (s.size > MAX_INPUT_BYTES) throw usageError('ECON_BAD_INPUT', `--input ${path}: ${s.size} bytes, at most ${MAX_INPUT_BYTES}`)
    text = await readFile(path, 'utf8')
  } catch (e) {
    if ((e as { code?: string }).code === 'ENOENT') throw usageError('ECON_BAD_INPUT', `--input ${path}: no such file`)
    throw e
  }
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch (e) {
    throw usageError('ECON_BAD_INPUT', `--input ${path}: not JSON (${(e as Error).message})`)
  }
  const parsed = rewardsInput.safeParse(json)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    throw usageError('ECON_BAD_INPUT', `--input ${path}: ${issue === undefined ? 'invalid' : `${issue.path.join('.') || '(root)'}: ${issue.message}`}`)
  }
  return parsed.data
}

function rewardsCommand (parent: Command): void {
  parent.command('rewards')
    .description('one pool\'s epoch allocation: pro rata to points × multiplier (stake, votes), tips to voters, dust to the reservoir')
    .requiredOption('--input <file.json>', '{"poolAmount"?: HEU, "organicUsage"?: HEU, "miners": [{"id","points","stake"?,"votes"?,"tipBps"?}]}')
    .action(async (o: { input: string }, cmd: Command) => {
      const input = await readRewardsInput(o.input)
      const s2 = season2Params(input.season2 ?? {})
      const pool = input.poolAmount !== undefined
        ? amountFlag('poolAmount', input.poolAmount)
        : calc(() => season2PoolCap(input.organicUsage === undefined ? 0n : parseHeu('organicUsage', input.organicUsage), s2))
      const mp: MultiplierParams = {
        stakeBonusWad: input.multiplier?.stakeBonus === undefined ? defaultMultiplierParams.stakeBonusWad : calc(() => parseUnits('multiplier.stakeBonus', input.multiplier!.stakeBonus!, 18)),
        stakeCap: input.multiplier?.stakeCap === undefined ? defaultMultiplierParams.stakeCap : amountFlag('multiplier.stakeCap', input.multiplier.stakeCap),
        voteBonusWad: input.multiplier?.voteBonus === undefined ? defaultMultiplierParams.voteBonusWad : calc(() => parseUnits('multiplier.voteBonus', input.multiplier!.voteBonus!, 18)),
        voteCap: input.multiplier?.voteCap === undefined ? defaultMultiplierParams.voteCap : amountFlag('multiplier.voteCap', input.multiplier.voteCap)
      }
      const miners = input.miners.map((m, i) => {
        const points = calc(() => parseUnits(`miners[${i}].points`, m.points, 6))
        const stake = m.stake === undefined ? 0n : amountFlag(`miners[${i}].stake`, m.stake)
        const votes = m.votes === undefined ? 0n : amountFlag(`miners[${i}].votes`, m.votes)
        return { id: m.id, points, stake, votes, tipBps: m.tipBps ?? 0, multiplierWad: calc(() => multiplierWad(stake, votes, mp)) }
      })
      const alloc = calc(() => allocate(pool, miners))
      const totalWeight = alloc.payouts.reduce((s, p) => s + p.weight, 0n)
      // Voters are not listed in the input, so each node's tip is one sum (as if one voter held all its votes).
      const nets = alloc.payouts.map((p, i) => calc(() => splitTips(p.amount, miners[i]!.tipBps, miners[i]!.votes > 0n ? [{ id: 'voters', votes: miners[i]!.votes }] : [])).node)
      const rows = alloc.payouts.map((p, i) => {
        const m = miners[i]!
        const net = nets[i]!
        return {
          id: p.id,
          points: formatUnits(m.points, 6),
          stake: formatHeu(m.stake),
          votes: formatHeu(m.votes),
          multiplier: wadToNumber(m.multiplierWad),
          multiplierWad: m.multiplierWad.toString(),
          sharePct: totalWeight === 0n ? 0 : wadToPercent(p.weight * WAD / totalWeight),
          reward: formatHeu(p.amount),
          tipToVoters: formatHeu(p.amount - net),
          minerNet: formatHeu(net)
        }
      })
      const paid = alloc.payouts.reduce((s, p) => s + p.amount, 0n)
      const totalPoints = miners.reduce((s, m) => s + m.points, 0n)
      const result = { pool: formatHeu(pool), paid: formatHeu(paid), dust: formatHeu(alloc.dust), dustWei: alloc.dust.toString(), totalPoints: formatUnits(totalPoints, 6), miners: rows }
      print(cmd, result, () => {
        const head = ['miner', 'points', 'stake', 'votes', 'mult', 'share %', 'reward', 'tip', 'net']
        const body = rows.map((r, i) => [r.id, r.points, heu(miners[i]!.stake), heu(miners[i]!.votes), r.multiplier.toFixed(4), r.sharePct.toFixed(4), heu(alloc.payouts[i]!.amount), heu(alloc.payouts[i]!.amount - nets[i]!), heu(nets[i]!)].map(String))
        const widths = head.map((h, i) => Math.max(h.length, ...body.map(b => b[i]!.length)))
        const line = (r: string[]): string => r.map((c, i) => i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)).join('  ')
        return [line(head), ...body.map(line), '', `pool ${heu(pool)} HEU, paid ${heu(paid)} HEU, dust ${alloc.dust} wei to the reservoir`].join('\n')
      })
    })
}

export function registerEconomics (program: Command): void {
  const eco = program.command('economics')
    .description('the protocol\'s math as a calculator: emission, Season 2 pools, rewards, security model')
  emissionCommand(eco)
  securityCommand(eco)
  season2Command(eco)
  rewardsCommand(eco)
}
