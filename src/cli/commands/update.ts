import type { Command } from 'commander'
import { loadContext } from '../context.js'
import { checkForUpdate } from '../../ops/index.js'
import { PACKAGE_NAME, VERSION } from '../version.js'

/** `heurist update check`: this version against the newest published one (no auto-install). */
export function registerUpdate (program: Command): void {
  const update = program.command('update').description('compare this version with the newest published one')
  update.command('check')
    .description('ask the npm registry (update.registry) for the newest heurist and print its changelog line; installs nothing')
    .action(async (_opts: unknown, cmd: Command) => {
      const ctx = await loadContext(cmd)
      const info = await checkForUpdate(PACKAGE_NAME, VERSION, { registry: ctx.config.update.registry })
      ctx.print({ ...info, install: info.updateAvailable ? `npm install -g ${info.package}@${info.latest}` : null }, r => info.updateAvailable
        ? `heurist ${info.latest} is out (this is ${info.current})${info.changelog === null ? '' : `: ${info.changelog}`}\n  update: ${r.install as string}`
        : `heurist ${info.current} is the newest (${info.registry} has ${info.latest})`)
    })
}
