import type { Command } from 'commander'
import { loadContext } from '../context.js'

export function registerConfig (program: Command): void {
  const config = program.command('config').description('show the effective configuration')
  config.command('show')
    .description('the effective config and where each value came from (default, file, env, flag)')
    .action(async (_opts: unknown, cmd: Command) => {
      const ctx = await loadContext(cmd)
      const { config: values, sources } = ctx.resolved
      ctx.print({ home: ctx.paths.root, file: ctx.paths.config, config: values, sources }, () => {
        const rows: string[] = [`home   ${ctx.paths.root}`, `file   ${ctx.paths.config}`, '']
        for (const [section, body] of Object.entries(values)) {
          for (const [key, value] of Object.entries(body as Record<string, unknown>)) {
            const path = `${section}.${key}`
            rows.push(`${path.padEnd(24)} ${JSON.stringify(value).padEnd(36)} ${sources[path] ?? ''}`)
          }
        }
        return rows.join('\n')
      })
    })
}
