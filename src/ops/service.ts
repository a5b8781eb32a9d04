import { HeuristError } from '../core/errors.js'

/** The long-running roles a service unit can run. */
export const SERVICE_ROLES = ['mine', 'validate', 'gateway'] as const
export type ServiceRole = typeof SERVICE_ROLES[number]

export interface UnitOptions {
  role: ServiceRole
  /** A user unit (`systemctl --user`, ~/.config/systemd/user) instead of a system one. */
  user: boolean
  /** Absolute path of node. */
  node: string
  /** Absolute path of the `heurist` entry (bin/heurist of this install). */
  entry: string
  /** HEURIST_HOME of the service. */
  home: string
  /** File holding the keystore password (one line). */
  passwordFile: string
  /** System units: the account the node runs as. */
  runAs: string
}

/** `heurist-mine.service` and so on. */
export function unitName (role: ServiceRole): string { return `heurist-${role}.service` }

/** systemd splits ExecStart= on spaces and treats %, $ and \ specially: allow only plain paths. */
function plainPath (what: string, p: string): string {
  if (!p.startsWith('/') || !/^[A-Za-z0-9._/+@:=,-]+$/.test(p) || p.length > 1024) {
    throw new HeuristError('OPS_BAD_PATH', `${what} must be an absolute path of letters, digits and ._/+@:=,- (systemd would misread it): ${JSON.stringify(p.slice(0, 200))}`, { usage: true })
  }
  return p
}

/**
 * A systemd unit that runs `heurist <role>` for months: restarted on any exit but a clean
 * stop (backoff by RestartSec, and systemd gives up after StartLimitBurst restarts in
 * StartLimitIntervalSec), JSON logs to the journal, the keystore password as a credential
 * (never in the unit or the environment), HEURIST_HOME set. Stop is SIGTERM, which drains
 * running jobs (mine.drainGraceMs, 30 s by default) before TimeoutStopSec.
 */
export function renderUnit (o: UnitOptions): string {
  const node = plainPath('node', o.node)
  const entry = plainPath('the heurist entry', o.entry)
  const home = plainPath('HEURIST_HOME', o.home)
  const password = plainPath('the password file', o.passwordFile)
  if (!o.user && !/^[a-z_][a-z0-9_-]{0,31}$/.test(o.runAs)) throw new HeuristError('OPS_BAD_USER', `not a user name systemd accepts: ${JSON.stringify(o.runAs.slice(0, 64))}`, { usage: true })
  const lines = [
    '# Written by `heurist service install`. Edit config in HEURIST_HOME/config.toml rather than here.',
    '[Unit]',
    `Description=Heurist node (${o.role})`,
    'After=network-online.target',
    'Wants=network-online.target',
    // a node that keeps failing at start stops being restarted after 10 tries in 10 minutes
    'StartLimitIntervalSec=600',
    'StartLimitBurst=10',
    '',
    '[Service]',
    'Type=simple',
    `ExecStart=${node} ${entry} ${o.role} --log-format json`,
    `Environment=HEURIST_HOME=${home}`,
    'Environment=HEURIST_LOG_FORMAT=json',
    ...(o.user
      // user managers cannot always load credentials: the file is the user's own
      ? [`Environment=HEURIST_PASSWORD_FILE=${password}`]
      // system units: systemd reads the file (root-only is fine) and hands it over in $CREDENTIALS_DIRECTORY
      : [`LoadCredential=heurist-password:${password}`, `User=${o.runAs}`]),
    `WorkingDirectory=${home}`,
    'Restart=always',
    'RestartSec=10',
    // SIGTERM drains jobs (mine.drainGraceMs) and redeems vouchers: leave time for both
    'TimeoutStopSec=90',
    'StandardOutput=journal',
    'StandardError=journal',
    `SyslogIdentifier=heurist-${o.role}`,
    'NoNewPrivileges=yes',
    'LimitNOFILE=65536',
    '',
    '[Install]',
    `WantedBy=${o.user ? 'default.target' : 'multi-user.target'}`,
    ''
  ]
  return lines.join('\n')
}
