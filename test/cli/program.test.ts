import { describe, it, expect } from 'vitest'
import { commandName } from '../../src/cli/program.js'
import { commands } from '../../src/cli/commands/index.js'

describe('the command named on the command line', () => {
  const cases: Array<[string[], string | undefined]> = [
    [['init', '--force'], 'init'],
    [['--home', '/tmp/x', 'config', 'show'], 'config'],
    [['--json', '--log-level', 'debug', 'doctor'], 'doctor'],
    [['--log-format=json', 'mine'], 'mine'],
    [['--help'], undefined],
    [[], undefined]
  ]
  for (const [args, expected] of cases) {
    it(`${JSON.stringify(args)} → ${String(expected)}`, () => { expect(commandName(args)).toBe(expected) })
  }

  it('every entry registers the command it is named for', async () => {
    const { Command } = await import('commander')
    for (const entry of commands) {
      const program = new Command('heurist')
      ;(await entry.load())(program)
      expect(program.commands.map(c => c.name())).toEqual([entry.name])
    }
  })
})
