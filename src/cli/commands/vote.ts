import type { Command } from 'commander'
import { parseAddress, parseAmount, parseBytes32, runAction, withChainFlags, type ChainFlags } from '../chain.js'

export function registerVote (program: Command): void {
  const vote = program.command('vote').description('put stHEU votes on a node or a pod (the stHEU is escrowed until you unvote)')
  withChainFlags(vote.command('node <address> <amount>').description('vote for a node (operator address) with stHEU'))
    .action(async (address: string, amount: string, opts: ChainFlags, cmd: Command) => {
      const node = parseAddress('address', address)
      const wei = parseAmount('amount', amount)
      await runAction(cmd, opts, async c => await c.voteNode(node, wei), { action: 'vote', node, amount: wei })
    })
  withChainFlags(vote.command('pod <podId> <amount>').description('vote for a pod (model sha256) with stHEU'))
    .action(async (podId: string, amount: string, opts: ChainFlags, cmd: Command) => {
      const pod = parseBytes32('podId', podId)
      const wei = parseAmount('amount', amount)
      await runAction(cmd, opts, async c => await c.votePod(pod, wei), { action: 'vote', pod, amount: wei })
    })
}
