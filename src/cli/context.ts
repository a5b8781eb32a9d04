import type { Command } from 'commander'
import { defaultHome, homePaths, type HomePaths } from '../core/home.js'
import { createLogger, defaultLogFormat, type Logger } from '../core/logger.js'
import { readConfigFile, resolveConfig, type ConfigOverrides, type ResolvedConfig } from '../core/config.js'
import { readKeystore, type Identity } from '../core/identity.js'
import { usageError } from '../core/errors.js'
import { readPassword } from './prompt.js'
import { passwordFromFile } from './password-file.js'

/** Options every command accepts (declared once on the program). */
export interface GlobalOptions {
  home?: string
  json?: boolean
  logFormat?: string
  logLevel?: string
}

export interface CommandContext {
  paths: HomePaths
  resolved: ResolvedConfig
  config: ResolvedConfig['config']
  logger: Logger
  json: boolean
  /** Prints a command's result: JSON with `--json`, the human text otherwise. */
  print: (result: unknown, human?: (r: any) => string) => void
  /** Reads the operator key (password from HEURIST_PASSWORD or a prompt). */
  identity: () => Promise<Identity>
}

/** JSON that writes bigint as a decimal string. */
export function toJson (value: unknown, indent?: number): string {
  return JSON.stringify(value, (_k, v: unknown) => typeof v === 'bigint' ? v.toString() : v, indent)
}

export function globalOptions (cmd: Command): GlobalOptions {
  return cmd.optsWithGlobals<GlobalOptions>()
}

/**
 * Builds what a command needs from the global flags, env and config file. `flags` are the
 * command's own config overrides (dotted keys), which win over everything else.
 */
export async function loadContext (cmd: Command, flags: ConfigOverrides = {}, env: NodeJS.ProcessEnv = process.env): Promise<CommandContext> {
  const g = globalOptions(cmd)
  const home = g.home ?? (env.HEURIST_HOME !== undefined && env.HEURIST_HOME !== '' ? env.HEURIST_HOME : defaultHome(env))
  const paths = homePaths(home)
  const file = await readConfigFile(paths.config)
  const resolved = resolveConfig({
    file,
    filePath: paths.config,
    env,
    flags: { 'log.level': g.logLevel, 'log.format': g.logFormat, ...flags }
  })
  const { level, format } = resolved.config.log
  const logger = createLogger({ level, format: format === 'auto' ? defaultLogFormat() : format })
  const json = g.json === true
  let identity: Identity | undefined
  return {
    paths,
    resolved,
    config: resolved.config,
    logger,
    json,
    print (result, human) {
      if (json || human === undefined) process.stdout.write(toJson(result) + '\n')
      else process.stdout.write(human(result).replace(/\n?$/, '\n'))
    },
    async identity () {
      identity ??= await readKeystore(paths.keystore, await passwordFor('the operator keystore', env))
      return identity
    }
  }
}

/** The keystore password: HEURIST_PASSWORD, else a password file (password-file.ts), else a prompt on a TTY, else a usage error. */
export async function passwordFor (what: string, env: NodeJS.ProcessEnv = process.env, confirm = false): Promise<string> {
  const fromEnv = env.HEURIST_PASSWORD
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv
  const fromFile = await passwordFromFile(env)
  if (fromFile !== undefined) return fromFile
  if (process.stdin.isTTY !== true) throw usageError('KEY_NO_PASSWORD', `no password for ${what}: set HEURIST_PASSWORD or HEURIST_PASSWORD_FILE, or run on a terminal`)
  const pw = await readPassword(`Password for ${what}: `)
  if (pw === '') throw usageError('KEY_NO_PASSWORD', 'an empty password is not allowed')
  if (confirm && await readPassword('Repeat the password: ') !== pw) throw usageError('KEY_PASSWORD_MISMATCH', 'the passwords do not match')
  return pw
}
