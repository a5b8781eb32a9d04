import type { Command } from 'commander'
import { parseAddress, parseAmount, runAction, withChainFlags, type ChainFlags } from '../chain.js'
import { usageError } from '../../core/errors.js'

export function registerRegister (program: Command): void {
  withChainFlags(program.command('register')
    .description('register this operator key as a miner with HEU collateral (returned to the owner on exit)')
    .option('--collateral <amount>', 'collateral in HEU (at least the minimum from the security model)')
    .option('--owner <address>', 'the wallet that owns the collateral and payouts (default: the operator)')
    .option('--validator', 'register as a validator instead, with --collateral as the validator stake'))
    .action(async (opts: ChainFlags & { collateral?: string, owner?: string, validator?: boolean }, cmd: Command) => {
      if (opts.collateral === undefined) throw usageError('CLI_MISSING_FLAG', 'register needs --collateral <amount>')
      const wei = parseAmount('--collateral', opts.collateral)
      if (opts.validator === true) {
        if (opts.owner !== undefined) throw usageError('CLI_BAD_FLAG', '--owner does not apply to --validator (a validator stakes from its own key)')
        await runAction(cmd, opts, async c => await c.registerValidator(wei), { action: 'register-validator', stake: wei })
        return
      }
      const owner = opts.owner === undefined ? undefined : parseAddress('--owner', opts.owner)
      await runAction(cmd, opts, async c => await c.register(wei, owner), { action: 'register', collateral: wei, owner })
    })
}
