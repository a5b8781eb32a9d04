import { Command, CommanderError, Option } from 'commander'
import { LOG_LEVELS } from '../core/logger.js'
import { HeuristError } from '../core/errors.js'
import { commands } from './commands/index.js'
import { VERSION } from './version.js'

/** Global options that take a value: their value is not the command name. */
const VALUE_OPTIONS = new Set(['--home', '--log-format', '--log-level'])

/** The command named on the command line (first word that is not an option), if any. */
export function commandName (args: string[]): string | undefined {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!
    if (a === '--') return args[i + 1]
    if (a.startsWith('-')) {
      if (VALUE_OPTIONS.has(a)) i++
      continue
    }
    return a
  }
  return undefined
}

/**
 * Builds the program with the command that will run; with no known command (help, a typo)
 * every command is loaded so help lists them all and commander can suggest one.
 */
export async function buildProgram (argv: string[] = process.argv): Promise<Command> {
  const program = new Command('heurist')
    .description('A node of the Heurist network: mine, validate, serve an OpenAI-compatible gateway, stake and vote.')
    .version(VERSION, '-V, --version')
    .option('--home <dir>', 'home folder (keys, config, store, models); env HEURIST_HOME')
    .option('--json', 'print results as JSON (for scripts)')
    .addOption(new Option('--log-format <format>', 'log format').choices(['json', 'pretty', 'auto']))
    .addOption(new Option('--log-level <level>', 'log level').choices([...LOG_LEVELS]))
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
  const args = argv.slice(2)
  const name = commandName(args)
  const chosen = commands.filter(c => c.name === name)
  const versionOnly = name === undefined && (args.includes('--version') || args.includes('-V'))
  for (const entry of chosen.length > 0 || versionOnly ? chosen : commands) (await entry.load())(program)
  program.commands.forEach(c => exitOverrideAll(c))
  return program
}

function exitOverrideAll (cmd: Command): void {
  cmd.exitOverride()
  cmd.commands.forEach(c => exitOverrideAll(c))
}

/** Runs the CLI: exit 0 ok, 1 runtime failure, 2 bad usage or config; one line on stderr. */
export async function main (argv: string[]): Promise<number> {
  let program: Command
  try {
    program = await buildProgram(argv)
  } catch (e) {
    process.stderr.write(`heurist: ${(e as Error)?.message ?? String(e)}\n`)
    return 1
  }
  try {
    await program.parseAsync(argv)
    return 0
  } catch (e) {
    if (e instanceof CommanderError) {
      // help and version "errors" are successful exits; commander already printed its message
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.code === 'commander.help') return 0
      return 2
    }
    if (e instanceof HeuristError) {
      process.stderr.write(`heurist: ${e.message}\n`)
      if (!e.usage && process.env.HEURIST_DEBUG === '1') process.stderr.write(`${String(e.stack)}\n`)
      return e.usage ? 2 : 1
    }
    process.stderr.write(`heurist: ${(e as Error)?.message ?? String(e)}\n`)
    if (process.env.HEURIST_DEBUG === '1') process.stderr.write(`${String((e as Error)?.stack)}\n`)
    return 1
  }
}
