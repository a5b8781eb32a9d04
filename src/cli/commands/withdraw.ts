import type { Command } from 'commander'
import { runAction, withChainFlags, type ChainFlags } from '../chain.js'

export function registerWithdraw (program: Command): void {
  withChainFlags(program.command('withdraw')
    .description('withdraw the HEU of every unstake whose lockup is over'))
    .action(async (opts: ChainFlags, cmd: Command) => {
      await runAction(cmd, opts, async c => await c.withdraw(), { action: 'withdraw' })
    })
}
