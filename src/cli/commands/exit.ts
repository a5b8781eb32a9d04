import type { Command } from 'commander'
import { runAction, withChainFlags, type ChainFlags } from '../chain.js'

interface ExitOptions extends ChainFlags { complete?: boolean, validator?: boolean }

/**
 * `heurist exit`: leave the network. Without flags it asks NodeRegistry to end this key's
 * miner registration (or, with --validator, its validator stake), which starts the exit
 * cooldown (`params.exitCooldown` in the deployment; the node can still be slashed meanwhile).
 * `--complete` after the cooldown returns the collateral to the owner, or the stake to this key.
 */
export function registerExit (program: Command): void {
  withChainFlags(program.command('exit')
    .description('leave: start the exit cooldown of this key\'s miner registration (--validator: its validator stake); --complete after the cooldown returns the collateral (to the owner) or the stake')
    .option('--complete', 'after the cooldown: take the collateral or stake back')
    .option('--validator', 'the validator stake, not the miner registration'))
    .action(async (opts: ExitOptions, cmd: Command) => {
      const validator = opts.validator === true
      const action = opts.complete === true ? 'complete-exit' : 'request-exit'
      await runAction(cmd, opts, async c => opts.complete === true ? await c.completeExit(validator) : await c.requestExit(validator), { action, role: validator ? 'validator' : 'miner' })
    })
}
