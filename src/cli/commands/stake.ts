import type { Command } from 'commander'
import { parseAmount, runAction, withChainFlags, type ChainFlags } from '../chain.js'

export function registerStake (program: Command): void {
  withChainFlags(program.command('stake <amount>')
    .description('stake HEU for stHEU (amount in HEU, e.g. 100 or 0.5)'))
    .action(async (amount: string, opts: ChainFlags, cmd: Command) => {
      const wei = parseAmount('amount', amount)
      await runAction(cmd, opts, async c => await c.stake(wei), { action: 'stake', amount: wei })
    })
}
