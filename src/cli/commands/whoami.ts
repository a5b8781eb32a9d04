import type { Command } from 'commander'
import { loadContext } from '../context.js'

export function registerWhoami (program: Command): void {
  program.command('whoami')
    .description('unlock the operator key and print its EVM address and libp2p PeerId')
    .action(async (_opts: unknown, cmd: Command) => {
      const ctx = await loadContext(cmd)
      const id = await ctx.identity()
      ctx.print({ address: id.address, peerId: id.peerId.toString(), home: ctx.paths.root }, r => `address  ${r.address}\npeerId   ${r.peerId}`)
    })
}
