import { describe, it, expect } from 'vitest'
import { parse } from 'smol-toml'
import { resolveConfig, envName, defaultConfig, defaultConfigToml } from '../../src/core/config.js'
import { isHeuristError } from '../../src/core/errors.js'

describe('config precedence: flags > env > file > defaults', () => {
  it('uses the default when nothing else sets a key', () => {
    const r = resolveConfig({})
    expect(r.config.log.level).toBe('info')
    expect(r.sources['log.level']).toBe('default')
  })

  it('file beats default, env beats file, flag beats env', () => {
    const file = { log: { level: 'warn' }, gateway: { port: 9000 } }
    const fromFile = resolveConfig({ file })
    expect(fromFile.config.log.level).toBe('warn')
    expect(fromFile.sources['log.level']).toBe('file')

    const fromEnv = resolveConfig({ file, env: { HEURIST_LOG_LEVEL: 'debug', HEURIST_GATEWAY_PORT: '9100' } })
    expect(fromEnv.config.log.level).toBe('debug')
    expect(fromEnv.config.gateway.port).toBe(9100)
    expect(fromEnv.sources['gateway.port']).toBe('env')

    const fromFlag = resolveConfig({ file, env: { HEURIST_LOG_LEVEL: 'debug' }, flags: { 'log.level': 'error' } })
    expect(fromFlag.config.log.level).toBe('error')
    expect(fromFlag.sources['log.level']).toBe('flag')
    // keys nobody set keep their own source
    expect(fromFlag.sources['gateway.port']).toBe('file')
  })

  it('parses env lists and booleans into the key type', () => {
    const r = resolveConfig({ env: { HEURIST_P2P_BOOTSTRAP: '/ip4/127.0.0.1/tcp/1/p2p/x, /ip4/127.0.0.1/tcp/2/p2p/y', HEURIST_P2P_DEVNET: 'true' } })
    expect(r.config.p2p.bootstrap).toEqual(['/ip4/127.0.0.1/tcp/1/p2p/x', '/ip4/127.0.0.1/tcp/2/p2p/y'])
    expect(r.config.p2p.devnet).toBe(true)
  })

  it('maps camelCase keys to HEURIST_ env names', () => {
    expect(envName('inference.maxQueue')).toBe('HEURIST_INFERENCE_MAX_QUEUE')
    expect(envName('log.level')).toBe('HEURIST_LOG_LEVEL')
  })
})

describe('config validation names the bad key', () => {
  const cases: Array<[string, Parameters<typeof resolveConfig>[0], string, string]> = [
    ['bad enum from env', { env: { HEURIST_LOG_LEVEL: 'loud' } }, 'log.level', 'HEURIST_LOG_LEVEL'],
    ['non-numeric port from env', { env: { HEURIST_GATEWAY_PORT: 'eighty' } }, 'gateway.port', 'HEURIST_GATEWAY_PORT'],
    ['port out of range in file', { file: { gateway: { port: 70000 } } }, 'gateway.port', 'config.toml'],
    ['unknown key in file', { file: { log: { colour: true } } }, 'log.colour', 'config.toml'],
    ['unknown section in file', { file: { nonsense: {} } }, 'nonsense', 'config.toml'],
    ['wrong type from a flag', { flags: { 'p2p.devnet': 'yes please' } }, 'p2p.devnet', 'flag'],
    ['misspelled variable in env', { env: { HEURIST_GATEWAY_PROT: '9000' } }, 'HEURIST_GATEWAY_PROT', 'HEURIST_GATEWAY_PORT']
  ]
  for (const [name, input, key, where] of cases) {
    it(name, () => {
      let err: unknown
      try { resolveConfig(input) } catch (e) { err = e }
      expect(isHeuristError(err)).toBe(true)
      if (!isHeuristError(err)) return
      expect(err.usage).toBe(true)
      expect(err.message).toContain(key)
      expect(err.message).toContain(where)
    })
  }
})

describe('HEURIST_* variables', () => {
  it('the home, password and debug variables and the test harness\'s are not config keys, and are allowed', () => {
    expect(() => resolveConfig({ env: { HEURIST_HOME: '/x', HEURIST_PASSWORD: 'p', HEURIST_PASSWORD_FILE: '/p', HEURIST_DEBUG: '1', HEURIST_SKIP_NETNS: '1', HEURIST_E2E_CHATS: '3', PATH: '/bin' } })).not.toThrow()
  })
  it('an unknown one is a usage error naming it (exit 2), with no suggestion when nothing is near', () => {
    let err: unknown
    try { resolveConfig({ env: { HEURIST_COLOUR: 'blue' } }) } catch (e) { err = e }
    expect(isHeuristError(err) && err.code).toBe('CONFIG_UNKNOWN_ENV')
    expect((err as Error).message).toContain('HEURIST_COLOUR')
    expect((err as Error).message).not.toContain('did you mean')
  })
})

describe('the commented default config.toml', () => {
  it('parses as TOML and yields exactly the defaults', () => {
    const file = parse(defaultConfigToml()) as Record<string, unknown>
    expect(resolveConfig({ file }).config).toEqual(defaultConfig())
  })
})
