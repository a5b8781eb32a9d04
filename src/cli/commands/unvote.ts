import type { Command } from 'commander'
import { registerVoteVerb } from './vote.js'

export function registerUnvote (program: Command): void {
  registerVoteVerb(program, 'unvote', {
    verb: 'take stHEU votes back from a node or a pod',
    node: 'take back votes from a node',
    pod: 'take back votes from a pod'
  })
}
