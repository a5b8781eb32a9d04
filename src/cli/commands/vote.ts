import type { Command } from 'commander'
import { parseAddress, parseAmount, parseBytes32, runAction, withChainFlags, type ChainFlags } from '../chain.js'

/** `vote` and `unvote` differ only in words and the chain call: both register through here. */
export function registerVoteVerb (program: Command, verb: 'vote' | 'unvote', text: { verb: string, node: string, pod: string }): void {
  const group = program.command(verb).description(text.verb)
  withChainFlags(group.command('node <address> <amount>').description(text.node))
    .action(async (address: string, amount: string, opts: ChainFlags, cmd: Command) => {
      const node = parseAddress('address', address)
      const wei = parseAmount('amount', amount)
      await runAction(cmd, opts, async c => await c[`${verb}Node`](node, wei), { action: verb, node, amount: wei })
    })
  withChainFlags(group.command('pod <podId> <amount>').description(text.pod))
    .action(async (podId: string, amount: string, opts: ChainFlags, cmd: Command) => {
      const pod = parseBytes32('podId', podId)
      const wei = parseAmount('amount', amount)
      await runAction(cmd, opts, async c => await c[`${verb}Pod`](pod, wei), { action: verb, pod, amount: wei })
    })
}

export function registerVote (program: Command): void {
  registerVoteVerb(program, 'vote', {
    verb: 'put stHEU votes on a node or a pod (the stHEU is escrowed until you unvote)',
    node: 'vote for a node (operator address) with stHEU',
    pod: 'vote for a pod (model sha256) with stHEU'
  })
}
