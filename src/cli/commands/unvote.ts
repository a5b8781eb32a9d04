import type { Command } from 'commander'
import { parseAddress, parseAmount, parseBytes32, runAction, withChainFlags, type ChainFlags } from '../chain.js'

export function registerUnvote (program: Command): void {
  const unvote = program.command('unvote').description('take stHEU votes back from a node or a pod')
  withChainFlags(unvote.command('node <address> <amount>').description('take back votes from a node'))
    .action(async (address: string, amount: string, opts: ChainFlags, cmd: Command) => {
      const node = parseAddress('address', address)
      const wei = parseAmount('amount', amount)
      await runAction(cmd, opts, async c => await c.unvoteNode(node, wei), { action: 'unvote', node, amount: wei })
    })
  withChainFlags(unvote.command('pod <podId> <amount>').description('take back votes from a pod'))
    .action(async (podId: string, amount: string, opts: ChainFlags, cmd: Command) => {
      const pod = parseBytes32('podId', podId)
      const wei = parseAmount('amount', amount)
      await runAction(cmd, opts, async c => await c.unvotePod(pod, wei), { action: 'unvote', pod, amount: wei })
    })
}
