import type { Command } from 'commander'
import { usageError } from '../../core/errors.js'
import { parseAmount, runAction, withChainFlags, type ChainFlags } from '../chain.js'

/**
 * `heurist deposit AMOUNT` adds compute credits; `--withdraw AMOUNT` asks for part of the deposit
 * back and `--withdraw` alone completes that request once Payments' withdraw delay has passed
 * (the delay lets miners and gateways settle what the deposit already owes first).
 */
export function registerDeposit (program: Command): void {
  withChainFlags(program.command('deposit [amount]')
    .description('deposit HEU as compute credits that vouchers and pay-by-user authorizations draw on; --withdraw AMOUNT asks for it back, --withdraw alone completes that after the delay')
    .option('--withdraw', 'withdraw instead: with AMOUNT, request it (the delay starts); without, complete the pending request'))
    .action(async (amount: string | undefined, opts: ChainFlags & { withdraw?: boolean }, cmd: Command) => {
      if (opts.withdraw === true) {
        if (amount === undefined) {
          await runAction(cmd, opts, async c => await c.withdrawDeposit(), { action: 'withdraw deposit' })
          return
        }
        const wei = parseAmount('amount', amount)
        await runAction(cmd, opts, async c => await c.requestWithdrawal(wei), { action: 'request withdrawal', amount: wei })
        return
      }
      if (amount === undefined) throw usageError('CLI_BAD_FLAG', 'deposit: give the AMOUNT of HEU to deposit (or --withdraw)')
      const wei = parseAmount('amount', amount)
      await runAction(cmd, opts, async c => await c.deposit(wei), { action: 'deposit', amount: wei })
    })
}
