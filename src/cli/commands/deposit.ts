import type { Command } from 'commander'
import { parseAmount, runAction, withChainFlags, type ChainFlags } from '../chain.js'

export function registerDeposit (program: Command): void {
  withChainFlags(program.command('deposit <amount>')
    .description('deposit HEU as compute credits that vouchers draw on'))
    .action(async (amount: string, opts: ChainFlags, cmd: Command) => {
      const wei = parseAmount('amount', amount)
      await runAction(cmd, opts, async c => await c.deposit(wei), { action: 'deposit', amount: wei })
    })
}
