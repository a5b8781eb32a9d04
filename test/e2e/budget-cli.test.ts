import { describe, it, expect, afterAll } from 'vitest'
import { spawn, type ChildProcess } from 'node:child_process'
import { BIN, runCli, tempDir } from '../helpers.js'

const env = { HEURIST_PASSWORD: 'e2e-pw', HEURIST_INFERENCE_THREADS: '1', HEURIST_LOG_FORMAT: 'json', HEURIST_MINE_ADVERT_INTERVAL_MS: '1000' }

describe('heurist mine under a memory budget, as a real process', () => {
  let child: ChildProcess | undefined
  const cleanups: Array<() => Promise<void>> = []
  afterAll(async () => {
    if (child !== undefined && child.exitCode === null) child.kill('SIGKILL')
    for (const c of cleanups) await c()
  })

  it('refuses the model the budget cannot hold with the reason, loads and advertises only the one that fits', async () => {
    const homes: string[] = []
    for (let i = 0; i < 2; i++) {
      const t = await tempDir()
      cleanups.push(t.cleanup)
      homes.push(t.dir)
      const r = await runCli(['--home', t.dir, 'init', '--kdf-cost', '10'], { env })
      expect(r.code, r.stderr).toBe(0)
    }
    // a 1 MiB budget: tiny-sd (≈0.3 MiB with its working memory) fits, tiny-llama (≈1.6 MiB with its KV cache) does not
    const c = spawn(process.execPath, [BIN, '--home', homes[0]!, 'mine', '--listen', '/ip4/127.0.0.1/tcp/0', '--models', 'tiny-llama,tiny-sd'], { env: { ...process.env, ...env, HEURIST_INFERENCE_MEMORY_BUDGET_MB: '1' }, stdio: ['ignore', 'pipe', 'pipe'] })
    child = c
    let err = ''
    c.stderr!.on('data', (d: Buffer) => { err += d.toString() })
    c.stdout!.resume()
    const exited = new Promise<number | null>(resolve => { c.on('close', code => { resolve(code) }) })
    const lines = (): Array<Record<string, unknown>> => err.split('\n').filter(l => l.startsWith('{')).map(l => JSON.parse(l) as Record<string, unknown>)
    const ready = await new Promise<Record<string, unknown>>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error(`miner not ready in 60 s: ${err}`)) }, 60_000)
      const check = (): void => {
        const r = lines().find(l => l.msg === 'miner ready')
        if (r === undefined) return
        clearTimeout(timer)
        resolve(r)
      }
      c.stderr!.on('data', check)
      c.on('close', () => { clearTimeout(timer); reject(new Error(`miner exited: ${err}`)) })
    })
    const refused = lines().filter(l => typeof l.msg === 'string' && l.msg.startsWith('model refused'))
    expect(refused.map(l => l.model)).toEqual(['tiny-llama'])
    expect(refused[0]!.reason).toMatch(/^tiny-llama needs [\d.]+ MiB \(weights [\d.]+ MiB \+ KV cache [\d.]+ MiB for \d+ tokens × 2 sequences \+ 10 %\); the most room left is 1\.00 MiB on cpu/)
    expect(lines().find(l => l.msg === 'memory budget')?.budgets).toEqual({ cpu: '1.00 MiB' })
    expect((ready.models as Array<{ name: string }>).map(m => m.name)).toEqual(['tiny-sd'])

    // what the mesh hears: only the model that fits
    const boot = (ready.addrs as string[])[0]!
    const peers = await runCli(['--home', homes[1]!, '--json', 'peers', '--bootstrap', boot, '--min', '1', '--wait-ms', '20000'], { env, timeoutMs: 40_000 })
    expect(peers.code, peers.stderr).toBe(0)
    const list = (JSON.parse(peers.stdout) as { miners: Array<{ address: string, models: Array<{ name: string }> }> }).miners
    expect(list).toHaveLength(1)
    expect(list[0]!.models.map(m => m.name)).toEqual(['tiny-sd'])

    c.kill('SIGTERM')
    expect(await Promise.race([exited, new Promise<string>(resolve => setTimeout(() => { resolve('timeout') }, 20_000))])).toBe(0)
  })
})
