import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { runCli, tempDir } from '../helpers.js'

describe('heurist init / config / doctor as a real process', () => {
  let dir = ''
  let cleanup: () => Promise<void> = async () => {}
  const env = { HEURIST_PASSWORD: 'test-password' }

  beforeAll(async () => { ({ dir, cleanup } = await tempDir()) })
  afterAll(async () => { await cleanup() })

  it('init --json prints address, peerId and home; a second init without --force exits 2', async () => {
    const home = join(dir, 'h1')
    const first = await runCli(['init', '--home', home, '--json', '--kdf-cost', '10'], { env })
    expect(first.code).toBe(0)
    const out = JSON.parse(first.stdout) as { address: string, peerId: string, home: string }
    expect(out.address).toMatch(/^0x[0-9a-fA-F]{40}$/)
    expect(out.peerId).toMatch(/^16Uiu2/)
    expect(out.home).toBe(home)
    const keystore = await readFile(join(home, 'keystore.json'), 'utf8')

    const second = await runCli(['init', '--home', home, '--json'], { env })
    expect(second.code).toBe(2)
    expect(second.stderr).toContain('--force')
    expect(await readFile(join(home, 'keystore.json'), 'utf8')).toBe(keystore)

    const forced = await runCli(['init', '--home', home, '--json', '--force', '--kdf-cost', '10'], { env })
    expect(forced.code).toBe(0)
    expect((JSON.parse(forced.stdout) as { address: string }).address).not.toBe(out.address)
  })

  it('whoami unlocks the key; a wrong password exits 1 with a plain message', async () => {
    const home = join(dir, 'h6')
    const made = JSON.parse((await runCli(['init', '--home', home, '--json', '--kdf-cost', '10'], { env })).stdout) as { address: string }
    const ok = await runCli(['whoami', '--home', home, '--json'], { env })
    expect(ok.code).toBe(0)
    expect((JSON.parse(ok.stdout) as { address: string }).address).toBe(made.address)
    const bad = await runCli(['whoami', '--home', home], { env: { HEURIST_PASSWORD: 'nope' } })
    expect(bad.code).toBe(1)
    expect(bad.stderr.trim()).toBe('heurist: wrong password for the operator keystore')
  })

  it('init without a password and without a terminal exits 2 and writes no key', async () => {
    const home = join(dir, 'h2')
    const r = await runCli(['init', '--home', home], { env: { HEURIST_PASSWORD: '' } })
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('HEURIST_PASSWORD')
    await expect(readFile(join(home, 'keystore.json'))).rejects.toThrow()
  })

  it('config show --json reports values and their sources; HEURIST_HOME works', async () => {
    const home = join(dir, 'h3')
    await runCli(['init', '--kdf-cost', '10'], { env: { ...env, HEURIST_HOME: home } })
    await writeFile(join(home, 'config.toml'), '[gateway]\nport = 9999\n')
    const r = await runCli(['config', 'show', '--json', '--log-level', 'warn'], { env: { HEURIST_HOME: home, HEURIST_METRICS_PORT: '9464' } })
    expect(r.code).toBe(0)
    const out = JSON.parse(r.stdout) as { home: string, config: { gateway: { port: number }, metrics: { port: number }, log: { level: string } }, sources: Record<string, string> }
    expect(out.home).toBe(home)
    expect(out.config.gateway.port).toBe(9999)
    expect(out.sources['gateway.port']).toBe('file')
    expect(out.config.metrics.port).toBe(9464)
    expect(out.sources['metrics.port']).toBe('env')
    expect(out.config.log.level).toBe('warn')
    expect(out.sources['log.level']).toBe('flag')
  })

  it('a bad config value exits 2 with one line naming the key, no stack trace', async () => {
    const r = await runCli(['config', 'show', '--home', join(dir, 'h4')], { env: { HEURIST_LOG_LEVEL: 'loud' } })
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('log.level')
    expect(r.stderr).not.toMatch(/\n\s+at /)
  })

  it('a misspelled HEURIST_* variable exits 2 naming it', async () => {
    const r = await runCli(['config', 'show', '--home', join(dir, 'h4')], { env: { HEURIST_LOG_LEVLE: 'debug' } })
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('HEURIST_LOG_LEVLE')
    expect(r.stderr).toContain('HEURIST_LOG_LEVEL')
  })

  it('an unknown flag exits 2', async () => {
    const r = await runCli(['config', 'show', '--no-such-flag'])
    expect(r.code).toBe(2)
  })

  it('doctor --json lists node, cpu, ram, disk and ports checks', async () => {
    const r = await runCli(['doctor', '--home', join(dir, 'h5'), '--json'])
    const out = JSON.parse(r.stdout) as { checks: Array<{ name: string, status: string }> }
    const names = out.checks.map(c => c.name)
    for (const n of ['node', 'cpu', 'ram', 'disk', 'ports']) expect(names).toContain(n)
    expect(out.checks.find(c => c.name === 'node')?.status).toBe('ok')
  })

  it('doctor --json says whether the onnxruntime CUDA provider is installed and loads, and how to install it', async () => {
    const { cudaProviderAvailable } = await import('../../src/inference/index.js')
    const r = await runCli(['doctor', '--home', join(dir, 'h6'), '--json'])
    const out = JSON.parse(r.stdout) as { checks: Array<{ name: string, status: string, detail: string, data?: { installed?: boolean, loads?: boolean, install?: string } }> }
    const c = out.checks.find(x => x.name === 'onnx-cuda')
    expect(c?.data?.installed).toBe(cudaProviderAvailable())
    if (c?.data?.loads !== true) {
      // this machine (no CUDA libraries): image models on the CPU, and the opt-in install named
      expect(c?.status).toBe('warn')
      expect(c?.data?.install).toBe('ONNXRUNTIME_NODE_INSTALL=cuda12')
      expect(c?.detail).toContain('ONNXRUNTIME_NODE_INSTALL=cuda12')
    } else {
      expect(c?.status).toBe('ok')
    }
  })
})
