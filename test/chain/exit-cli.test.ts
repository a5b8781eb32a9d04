import { describe, it, expect, afterAll } from 'vitest'
import { spawn, type ChildProcess } from 'node:child_process'
import { BIN, runCli, tempDir } from '../helpers.js'

/**
 * Leaving (issue 22, finding 12): `heurist exit` starts the cooldown of a miner registration or
 * (--validator) of a validator stake, `status` shows the stake and the pending exit, `exit
 * --complete` refuses before the cooldown ends and afterwards returns the HEU, to the wei.
 */
const env = (home: string): NodeJS.ProcessEnv => ({ HEURIST_HOME: home, HEURIST_PASSWORD: 'pw', HEURIST_LOG_LEVEL: 'warn' })
let devnet: ChildProcess | undefined
const cleanups: Array<() => Promise<void>> = []
afterAll(async () => {
  if (devnet !== undefined && devnet.exitCode === null) devnet.kill('SIGKILL')
  for (const c of cleanups) await c()
})

async function rpc (url: string, method: string, params: unknown[] = []): Promise<unknown> {
  const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }) })
  return ((await r.json()) as { result: unknown }).result
}

describe('heurist exit', () => {
  it('a validator and a miner leave: status shows stake and exit; --complete waits for the cooldown, then returns the HEU', async () => {
    const h = await tempDir('heurist-exit-')
    cleanups.push(h.cleanup)
    const e = env(h.dir)
    expect((await runCli(['init', '--kdf-cost', '10'], { env: e })).code).toBe(0)
    devnet = spawn(process.execPath, [BIN, '--json', 'devnet', '--port', '0', '--block-seconds', '0'], { env: { ...process.env, ...e }, stdio: ['ignore', 'pipe', 'pipe'] })
    const info = await new Promise<{ rpcUrl: string }>((resolve, reject) => {
      let out = ''
      const timer = setTimeout(() => { reject(new Error('devnet did not start in 60 s')) }, 60_000)
      devnet!.stdout!.on('data', (d: Buffer) => { out += d.toString(); const l = out.split('\n').find(x => x.startsWith('{')); if (l !== undefined && out.includes('\n')) { clearTimeout(timer); resolve(JSON.parse(l)) } })
      devnet!.on('exit', c => { clearTimeout(timer); reject(new Error(`devnet exited ${c}`)) })
    })
    const status = async (): Promise<Record<string, string>> => {
      const r = await runCli(['--json', 'status'], { env: e })
      expect(r.code, r.stderr).toBe(0)
      return JSON.parse(r.stdout) as Record<string, string>
    }
    const s0 = await status()
    const stake = 400n * 10n ** 18n

    for (const role of ['validator', 'miner'] as const) {
      const flag = role === 'validator' ? ['--validator'] : []
      const reg = await runCli(['--json', 'register', '--collateral', '400', ...flag], { env: e })
      expect(reg.code, reg.stderr).toBe(0)
      const s1 = await status()
      expect(BigInt(s1.heu!)).toBe(BigInt(s0.heu!) - stake)
      expect(role === 'validator' ? s1.validatorStake : s1.collateral).toBe(stake.toString())
      expect(role === 'validator' ? s1.collateral : s1.validatorStake).toBe('0')

      const early = await runCli(['--json', 'exit', '--complete', ...flag], { env: e })
      expect(early.code).toBe(1)
      expect(early.stderr).toMatch(/has not asked to exit/)
      const ask = await runCli(['--json', 'exit', ...flag], { env: e })
      expect(ask.code, ask.stderr).toBe(0)
      const s2 = await status()
      const exitAt = BigInt(role === 'validator' ? s2.validatorExitAt! : s2.collateralExitAt!)
      expect(exitAt).toBeGreaterThan(0n)
      const human = await runCli(['status'], { env: e })
      expect(human.stdout).toMatch(role === 'validator' ? /validator\s+400 HEU staked \(exiting/ : /collateral\s+400 HEU \(exiting/)

      const tooSoon = await runCli(['--json', 'exit', '--complete', ...flag], { env: e })
      expect(tooSoon.code).toBe(1)
      expect(tooSoon.stderr).toMatch(/the cooldown ends at/)
      // the chain's clock past the cooldown (the devnet's own RPC)
      const now = BigInt((await rpc(info.rpcUrl, 'eth_getBlockByNumber', ['latest', false]) as { timestamp: string }).timestamp)
      await rpc(info.rpcUrl, 'evm_increaseTime', [Number(exitAt - now) + 1])
      await rpc(info.rpcUrl, 'evm_mine')
      const done = await runCli(['--json', 'exit', '--complete', ...flag], { env: e })
      expect(done.code, done.stderr).toBe(0)
      const s3 = await status()
      expect(s3.heu).toBe(s0.heu)
      expect(s3.validatorStake).toBe('0')
      expect(s3.collateral).toBe('0')
      expect(s3.validatorExitAt).toBe('0')
    }
  }, 240_000)
})
