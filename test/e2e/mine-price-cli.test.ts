import { describe, it, expect, afterAll } from 'vitest'
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { NsProc } from '../nat/procs.js'
import { BIN, runCli, tempDir } from '../helpers.js'

// Issue 22, finding 7: price 0 earns a miner nothing on a paid network, and it said nothing.
// `heurist mine --price 0` on a real devnet warns at start, naming the unit (wei per compute
// unit) and the flag; a miner at the default price (the protocol floor per compute unit, below
// which points are bounded by what payments cover: issue 16) on the same chain does not warn.

const env = {
  HEURIST_PASSWORD: 'mine-price-pw',
  HEURIST_LOG_FORMAT: 'json',
  HEURIST_INFERENCE_THREADS: '1',
  HEURIST_P2P_DEVNET: 'true',
  HEURIST_DASHBOARD_ENABLED: 'false',
  HEURIST_PODS_HOST: 'false'
}
const procs: NsProc[] = []
const cleanups: Array<() => Promise<void>> = []

function start (name: string, home: string, args: string[]): NsProc {
  const p = new NsProc(name, spawn(process.execPath, [BIN, '--home', home, '--json', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] }))
  procs.push(p)
  return p
}

// pino's JSON lines: level 40 is warn
const isPriceWarning = (l: Record<string, unknown>): boolean => l.level === 40 && typeof l.msg === 'string' && l.msg.includes('price')

describe('heurist mine: the price on a paid network', () => {
  afterAll(async () => {
    await Promise.allSettled(procs.map(async p => { await p.stop() }))
    for (const c of cleanups) await c().catch(() => {})
  }, 60_000)

  it('with price 0 it warns at start, naming the unit; at the default price it does not', async () => {
    const root = await tempDir('heurist-mine-price-')
    cleanups.push(root.cleanup)
    const home = (n: string): string => join(root.dir, n)
    for (const n of ['free', 'priced']) {
      const r = await runCli(['--home', home(n), '--json', 'init', '--kdf-cost', '10'], { env, timeoutMs: 60_000 })
      expect(r.code, r.stderr).toBe(0)
    }
    const devnet = start('devnet', home('devnet'), ['devnet', '--port', '0'])
    const dv = await devnet.waitLine(l => typeof l.rpcUrl === 'string', 90_000, 'devnet ready')
    const chainFlags = ['--rpc', String(dv.rpcUrl), '--deployment', String(dv.deploymentFile)]
    const listen = ['--listen', '/ip4/127.0.0.1/tcp/0', '--models', 'tiny-llama']
    // price 0 by hand; the other at the default (the floor)
    const free = start('free', home('free'), ['mine', ...listen, '--price', '0', ...chainFlags])
    const priced = start('priced', home('priced'), ['mine', ...listen, ...chainFlags])
    const freeReady = await free.waitLine(l => l.msg === 'miner ready', 180_000, '"miner ready"')
    await priced.waitLine(l => l.msg === 'miner ready', 180_000, '"miner ready"')
    expect(freeReady.paid).toBe(true)

    // the warning comes before "miner ready" (the lines are in order)
    const warnings = free.lines.slice(0, free.lines.indexOf(freeReady)).filter(isPriceWarning)
    expect(warnings.length, free.raw.slice(-20).join('\n')).toBe(1)
    expect(warnings[0]!.msg).toMatch(/\b0 wei per compute unit\b/)
    expect(warnings[0]!.msg).toContain('--price')
    expect(priced.lines.filter(isPriceWarning)).toEqual([])
  }, 300_000)
})
