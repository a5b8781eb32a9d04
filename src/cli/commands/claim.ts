import type { Command } from 'commander'
import { HeuristError } from '../../core/errors.js'
import { formatHeu } from '../../economics/index.js'
import type { TxResult } from '../../chain/index.js'
import { balancesJson, balancesHuman, openChain, parseAddress, txsHuman, withChainFlags, type ChainFlags } from '../chain.js'
import { parseIntFlag } from '../flags.js'
import { claimableRewards } from './status.js'

export function registerClaim (program: Command): void {
  withChainFlags(program.command('claim')
    .description('claim epoch rewards with the Merkle proofs in <home>/rewards (all unclaimed epochs, or one)')
    .option('--epoch <n>', 'only this epoch')
    .option('--account <address>', 'the rewarded account (default: the operator; anyone may submit, the HEU goes to the account)'))
    .action(async (opts: ChainFlags & { epoch?: string, account?: string }, cmd: Command) => {
      const epoch = opts.epoch === undefined ? undefined : BigInt(parseIntFlag('--epoch', opts.epoch, 0, 1_000_000_000))
      const { ctx, chain } = await openChain(cmd, opts)
      try {
        const account = opts.account === undefined ? await chain.signer!.getAddress() : parseAddress('--account', opts.account)
        const claims = (await claimableRewards(ctx, chain, account)).filter(c => epoch === undefined || c.epoch === epoch)
        if (claims.length === 0) throw new HeuristError('CHAIN_NOTHING_TO_CLAIM', `nothing to claim for ${account}${epoch === undefined ? '' : ` in epoch ${epoch}`}`)
        const txs: TxResult[] = []
        for (const c of claims) txs.push(...await chain.claim(c.epoch, account, c.amount, c.proof))
        const total = claims.reduce((s, c) => s + c.amount, 0n)
        const b = await chain.balances(account)
        ctx.print({ action: 'claim', account, epochs: claims.map(c => c.epoch), amount: total, transactions: txs, balances: balancesJson(b) },
          () => `claimed ${formatHeu(total)} HEU for epochs ${claims.map(c => c.epoch).join(', ')}\n${txsHuman(txs)}\n${balancesHuman(b)}`)
      } finally {
        chain.close()
      }
    })
}
