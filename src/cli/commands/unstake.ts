import type { Command } from 'commander'
import { parseAmount, runAction, withChainFlags, type ChainFlags } from '../chain.js'

export function registerUnstake (program: Command): void {
  withChainFlags(program.command('unstake <amount>')
    .description('burn stHEU (amount in stHEU) and start vesting its HEU value; `withdraw` after the lockup'))
    .action(async (amount: string, opts: ChainFlags, cmd: Command) => {
      const wei = parseAmount('amount', amount)
      await runAction(cmd, opts, async c => await c.unstake(wei), { action: 'unstake', amount: wei })
    })
}
