import type { Command } from 'commander'
import { formatHeu } from '../../economics/index.js'
import { readRewardFiles, type ChainClient } from '../../chain/index.js'
import { balancesHuman, balancesJson, openChain, parseAddress, withChainFlags, type ChainFlags } from '../chain.js'
import type { CommandContext } from '../context.js'
import { readPointsSnapshot, snapshotPoints, estimateReward } from '../../rewards/index.js'
import { rewardsDir } from '../rewards.js'
import { keystoreAddress } from '../../core/identity.js'
import { payTotals } from '../pay-client.js'

/**
 * This epoch's points of the miner running from this home folder (its snapshot), and the
 * reward they would earn if the epoch ended now, computed live with src/economics. Null when
 * no miner runs here, or the snapshot is of another epoch or another address.
 */
async function epochEstimate (ctx: CommandContext, chain: ChainClient, address: string, epoch: bigint): Promise<{ points: { llama: bigint, waifu: bigint }, estimatedReward: bigint } | null> {
  const snap = await readPointsSnapshot(rewardsDir(ctx))
  if (snap === null || BigInt(snap.epoch) !== epoch) return null
  const a = address.toLowerCase()
  if (snap.operator.toLowerCase() !== a && snap.payout.toLowerCase() !== a) return null
  const est = await estimateReward(chain, epoch, snap.operator, snapshotPoints(snap), ctx.config.rewards.tipBps)
  return { points: est.points, estimatedReward: est.reward }
}

/** The operator's address from the keystore's plain `address` field (no password), else unlocked. */
async function operatorAddress (ctx: CommandContext): Promise<string> {
  return await keystoreAddress(ctx.paths.keystore) ?? (await ctx.identity()).address
}

/** Unclaimed rewards for `account` in the home folder's reward files whose root is on chain. */
export async function claimableRewards (ctx: CommandContext, chain: ChainClient, account: string): Promise<Array<{ epoch: bigint, amount: bigint, proof: string[] }>> {
  const out: Array<{ epoch: bigint, amount: bigint, proof: string[] }> = []
  for (const f of await readRewardFiles(rewardsDir(ctx))) {
    const claim = f.claims.find(c => c.account.toLowerCase() === account.toLowerCase())
    if (claim === undefined) continue
    const epoch = BigInt(f.epoch)
    const root = await chain.read<string>(chain.contracts.emission, 'roots', [epoch])
    if (root.toLowerCase() !== f.root.toLowerCase()) continue
    if (await chain.read<boolean>(chain.contracts.emission, 'claimed', [epoch, account])) continue
    out.push({ epoch, amount: BigInt(claim.amount), proof: claim.proof })
  }
  return out
}

export function registerStatus (program: Command): void {
  withChainFlags(program.command('status')
    .description('balances on chain: HEU, stHEU, collateral, votes, vesting and claimable rewards')
    .option('--address <address>', 'show another address (default: the operator key)'))
    .action(async (opts: ChainFlags & { address?: string }, cmd: Command) => {
      const { ctx, chain } = await openChain(cmd, opts, false)
      try {
        const address = opts.address === undefined ? await operatorAddress(ctx) : parseAddress('--address', opts.address)
        const [b, epoch, claims] = await Promise.all([chain.balances(address), chain.currentEpoch(), claimableRewards(ctx, chain, address)])
        const claimable = claims.reduce((s, c) => s + c.amount, 0n)
        const estimate = await epochEstimate(ctx, chain, address, epoch)
        // Pay-by-User: what this home's key authorized and was charged per gateway (pay-by-user.json)
        const paid = opts.address === undefined ? await payTotals(ctx.paths.root) : []
        const withdrawal = await chain.withdrawalOf(address)
        ctx.print({
          ...balancesJson(b),
          chainId: chain.deployment.chainId,
          epoch,
          claimable,
          points: estimate?.points ?? null,
          estimatedReward: estimate?.estimatedReward ?? null,
          withdrawal: withdrawal.amount === 0n ? null : { amount: withdrawal.amount, at: Number(withdrawal.at) },
          payByUser: paid.map(p => ({ gateway: p.gateway, frontend: p.frontend, authorized: p.authorized, spent: p.spent, requests: p.requests, expiry: p.expiry }))
        }, () => `address      ${address}\nchain        ${chain.deployment.chainId}, epoch ${epoch}\n${balancesHuman(b)}\n` +
          (estimate === null ? '' : `points       ${estimate.points.llama} LLM, ${estimate.points.waifu} image (this epoch)\nestimated    ${formatHeu(estimate.estimatedReward)} HEU if the epoch ended now\n`) +
          `claimable    ${formatHeu(claimable)} HEU` +
          (withdrawal.amount === 0n ? '' : `\nwithdrawing  ${formatHeu(withdrawal.amount)} HEU of the deposit, from ${new Date(Number(withdrawal.at) * 1000).toISOString()} (heurist deposit --withdraw)`) +
          paid.map(p => `\npaid by user ${p.gateway} (${p.frontend}): ${formatHeu(p.spent)} HEU spent of ${formatHeu(p.authorized)} HEU authorized, ${p.requests} request${p.requests === 1 ? '' : 's'}, session until ${new Date(p.expiry * 1000).toISOString()}`).join(''))
      } finally {
        chain.close()
      }
    })
}
