import type { Command } from 'commander'
import { formatHeu } from '../../economics/index.js'
import { openChain, parseAddress, withChainFlags, type ChainFlags } from '../chain.js'
import { parseIntFlag } from '../flags.js'
import { rewardsDir } from '../rewards.js'
import { keystoreAddress } from '../../core/identity.js'
import { Store } from '../../core/store.js'
import { isHeuristError } from '../../core/errors.js'
import { PointsLedger, chainEarnings, chainOrganicCheck, estimateReward, ledgerEarnings, readLedgerReport, readPointsSnapshot, reconcileEarnings, snapshotPoints, type EpochEarnings, type LedgerEarnings } from '../../rewards/index.js'
import type { ChainClient } from '../../chain/index.js'
import type { CommandContext } from '../context.js'
import { silentLogger } from '../../core/logger.js'

interface EarningsOptions extends ChainFlags { epoch?: string, address?: string }

type Reported = EpochEarnings & { estimatedReward: string | null }

/** The running epoch's reward if it ended now: src/economics over the running miner's points snapshot (all miners it heard), as `status` computes it. */
async function estimateNow (ctx: CommandContext, chain: ChainClient, operator: string, epoch: bigint): Promise<string | null> {
  const snap = await readPointsSnapshot(rewardsDir(ctx))
  if (snap === null || BigInt(snap.epoch) !== epoch || snap.operator.toLowerCase() !== operator.toLowerCase()) return null
  return (await estimateReward(chain, epoch, snap.operator, snapshotPoints(snap), ctx.config.rewards.tipBps)).reward.toString()
}

function human (e: Reported): string {
  const c = e.chain
  const l = e.ledger
  const lines = [`epoch ${e.epoch}${c.current ? ' (running)' : ''}  ${c.startsAt} → ${c.endsAt}`]
  if (e.jobsServed !== null) lines.push(`  jobs served  ${e.jobsServed}`)
  if (l !== null) {
    const by = (s: string): number => l.receipts.filter(r => r.status === s).length
    lines.push(`  receipts     ${l.receipts.length + l.receiptsOmitted} gossiped: ${by('counted') + l.receiptsOmitted} counted, ${by('not-organic')} not organic, ${by('failed')} failed, ${by('duplicate')} duplicate; ${l.sampled} sampled by validators`)
    lines.push(`  points       ${l.points.llama} LLM, ${l.points.waifu} image`)
  }
  lines.push(`  multiplier   ${formatHeu(BigInt(c.multiplierWad))}× (stake ${formatHeu(BigInt(c.stake))} HEU, votes ${formatHeu(BigInt(c.votes))} stHEU)`)
  lines.push(`  root         ${c.rootPosted ? `posted (total ${formatHeu(BigInt(c.rootTotal ?? '0'))} HEU)` : 'not posted'}`)
  if (e.estimatedReward !== null) lines.push(`  estimated    ${formatHeu(BigInt(e.estimatedReward))} HEU if the epoch ended now`)
  lines.push(`  expected     ${e.expectedReward === null ? 'unknown' : `${formatHeu(BigInt(e.expectedReward))} HEU`}`)
  lines.push(`  claimed      ${c.claim === null ? 'no' : `${formatHeu(BigInt(c.claim.amount))} HEU (tx ${c.claim.tx})`}`)
  for (const r of c.redeemed) lines.push(`  vouchers     ${formatHeu(BigInt(r.nodeShare))} HEU from ${r.payer} (${r.transactions.length} redemption${r.transactions.length === 1 ? '' : 's'})`)
  if (c.redeemed.length === 0) lines.push('  vouchers     none redeemed')
  for (const s of c.slashes) lines.push(`  slashed      ${formatHeu(BigInt(s.amount))} HEU (tx ${s.tx})`)
  if (e.gaps.length === 0) lines.push('  gaps         none')
  for (const g of e.gaps) lines.push(`  gap          ${g.code}: ${g.reason}`)
  return lines.join('\n')
}

/** `heurist earnings`: per epoch, what this node did and what it was paid, every gap explained. */
export function registerEarnings (program: Command): void {
  withChainFlags(program.command('earnings')
    .description('per epoch: receipts and their verdicts, points, multiplier, expected reward, root, claim, vouchers redeemed, slashes; every gap with its reason')
    .option('--epoch <n>', 'one epoch (default: the current one and the one before)')
    .option('--address <address>', 'another operator (the ledger is this home\'s only)'))
    .action(async (opts: EarningsOptions, cmd: Command) => {
      const { ctx, chain } = await openChain(cmd, opts, false)
      try {
        const operator = opts.address !== undefined ? parseAddress('--address', opts.address) : await keystoreAddress(ctx.paths.keystore) ?? (await ctx.identity()).address
        const current = await chain.currentEpoch()
        const epochs = opts.epoch !== undefined ? [BigInt(parseIntFlag('--epoch', opts.epoch, 0, Number(current)))] : current === 0n ? [0n] : [current - 1n, current]
        // the ledger is in the store, which a running miner holds: then the chain part only
        let store: Store | null = null
        try {
          store = await Store.open(ctx.paths.store)
        } catch (e) {
          if (!isHeuristError(e, 'STORE_LOCKED')) throw e
        }
        try {
          const check = await chainOrganicCheck(chain)
          // a running miner writes its ledger part every minute
          const report = await readLedgerReport(rewardsDir(ctx))
          const fromReport = report !== null && report.operator.toLowerCase() === operator.toLowerCase() ? report : null
          const out: Reported[] = []
          for (const epoch of epochs) {
            let ledger: LedgerEarnings | null = null
            if (store !== null) ledger = await ledgerEarnings(new PointsLedger(store, silentLogger()), store, epoch, operator, check)
            else {
              const part = fromReport?.epochs.find(x => x.epoch === epoch.toString())
              if (part !== undefined) ledger = { ...part, source: `the running miner's report of ${fromReport!.updatedAt}` }
            }
            const c = await chainEarnings(chain, epoch, operator, chain.deployment.deployBlock)
            const jobsServed = fromReport?.served.find(x => x.epoch === epoch.toString())?.jobs ?? null
            const r = await reconcileEarnings({ operator, ledger, chain: c, rewardsDir: rewardsDir(ctx), jobsServed })
            out.push({ ...r, estimatedReward: c.current ? await estimateNow(ctx, chain, operator, epoch) : null })
          }
          ctx.print({ operator, epochs: out }, () => out.map(human).join('\n\n'))
        } finally {
          await store?.close()
        }
      } finally {
        chain.close()
      }
    })
}
