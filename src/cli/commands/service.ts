import type { Command } from 'commander'
import { existsSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { homedir, userInfo } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadContext } from '../context.js'
import { usageError } from '../../core/errors.js'
import { SERVICE_ROLES, renderUnit, unitName, type ServiceRole } from '../../ops/index.js'

interface InstallOptions { role: string, user?: boolean, unitDir?: string, passwordFile?: string, runAs?: string, print?: boolean }

/** bin/heurist of this install (dist/cli/commands/service.js → ../../../bin/heurist). */
const ENTRY = fileURLToPath(new URL('../../../bin/heurist', import.meta.url))

/** `heurist service install`: a systemd unit for a long-running role. */
export function registerService (program: Command): void {
  const service = program.command('service').description('run the node as a systemd service')
  service.command('install')
    .description('write a systemd unit for mine, validate or gateway (restart policy, JSON logs to the journal, password from a credentials file, HEURIST_HOME)')
    .option('--role <role>', `what the service runs: ${SERVICE_ROLES.join(', ')}`, 'mine')
    .option('--user', 'a user unit (systemctl --user, ~/.config/systemd/user) instead of a system unit (/etc/systemd/system)')
    .option('--unit-dir <dir>', 'write the unit here instead of the systemd folder')
    .option('--password-file <file>', 'file holding the keystore password, one line, mode 600 (default <home>/password)')
    .option('--run-as <user>', 'system units: the account the node runs as (default: the current user)')
    .option('--print', 'print the unit instead of writing it')
    .action(async (opts: InstallOptions, cmd: Command) => {
      if (!(SERVICE_ROLES as readonly string[]).includes(opts.role)) throw usageError('CLI_BAD_FLAG', `--role: expected one of ${SERVICE_ROLES.join(', ')}, got ${JSON.stringify(opts.role)}`)
      const role = opts.role as ServiceRole
      const ctx = await loadContext(cmd)
      const user = opts.user === true
      const home = ctx.paths.root
      const passwordFile = resolve(opts.passwordFile ?? join(home, 'password'))
      const unit = renderUnit({ role, user, node: process.execPath, entry: ENTRY, home, passwordFile, runAs: opts.runAs ?? userInfo().username })
      if (opts.print === true) {
        if (ctx.json) ctx.print({ unit: unitName(role), text: unit })
        else process.stdout.write(unit)
        return
      }
      const dir = resolve(opts.unitDir ?? (user ? join(homedir(), '.config', 'systemd', 'user') : '/etc/systemd/system'))
      const path = join(dir, unitName(role))
      try {
        await mkdir(dir, { recursive: true })
        await writeFile(path, unit, { mode: 0o644 })
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code
        throw usageError('OPS_CANNOT_WRITE_UNIT', `cannot write ${path} (${code ?? (e as Error).message})${code === 'EACCES' ? ': run as root, or use --user' : ''}`)
      }
      const ctl = user ? 'systemctl --user' : 'systemctl'
      const next = [
        ...(existsSync(passwordFile) ? [] : [`put the keystore password in ${passwordFile} (one line, chmod 600)`]),
        ...(existsSync(ctx.paths.keystore) ? [] : [`create the operator key: heurist init --home ${home}`]),
        `${ctl} daemon-reload`,
        `${ctl} enable --now ${unitName(role)}`,
        `journalctl ${user ? '--user ' : ''}-u ${unitName(role)} -f -o cat`
      ]
      ctx.print({ unit: unitName(role), path, role, user, home, passwordFile, next }, r => [`wrote ${r.path as string}`, 'next:', ...next.map(n => `  ${n}`)].join('\n'))
    })
}
