import { describe, it, expect, afterAll } from 'vitest'
import { spawn, type ChildProcess } from 'node:child_process'
import { verifyTypedData } from 'ethers'
import { BIN, runCli, tempDir } from '../helpers.js'
import { ReceiptTypes, heuristDomain } from '../../src/core/typed-data.js'
import { receiptFromWire } from '../../src/p2p/index.js'

const env = { HEURIST_PASSWORD: 'e2e-pw', HEURIST_INFERENCE_THREADS: '1', HEURIST_LOG_FORMAT: 'json', HEURIST_MINE_ADVERT_INTERVAL_MS: '1000' }

interface Miner { child: ChildProcess, stderr: () => string, ready: { address: string, peerId: string, addrs: string[] }, exited: Promise<number | null> }

/** Starts `heurist mine` and waits (bounded) for its "miner ready" log line. */
async function startMiner (home: string, extra: string[]): Promise<Miner> {
  const child = spawn(process.execPath, [BIN, '--home', home, 'mine', '--listen', '/ip4/127.0.0.1/tcp/0', '--models', 'tiny-llama', ...extra], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let err = ''
  child.stderr!.on('data', (d: Buffer) => { err += d.toString() })
  child.stdout!.resume()
  const exited = new Promise<number | null>(resolve => { child.on('close', code => { resolve(code) }) })
  const ready = await new Promise<Miner['ready']>((resolve, reject) => {
    const timer = setTimeout(() => { reject(new Error(`miner not ready in 60 s: ${err}`)) }, 60_000)
    const check = (): void => {
      for (const line of err.split('\n')) {
        if (!line.includes('"miner ready"')) continue
        clearTimeout(timer)
        child.stderr!.off('data', check)
        resolve(JSON.parse(line) as Miner['ready'])
        return
      }
    }
    child.stderr!.on('data', check)
    child.on('close', () => { clearTimeout(timer); reject(new Error(`miner exited: ${err}`)) })
  })
  return { child, stderr: () => err, ready, exited }
}

describe('two heurist miners and a client, as separate processes on 127.0.0.1', () => {
  const miners: Miner[] = []
  const cleanups: Array<() => Promise<void>> = []
  afterAll(async () => {
    for (const m of miners) if (m.child.exitCode === null) m.child.kill('SIGKILL')
    for (const c of cleanups) await c()
  })

  it('infer --network gets text and a receipt signed by the serving miner; peers --json lists both; SIGTERM exits 0', async () => {
    const homes: string[] = []
    for (let i = 0; i < 3; i++) {
      const t = await tempDir()
      cleanups.push(t.cleanup)
      homes.push(t.dir)
      const r = await runCli(['--home', t.dir, 'init', '--kdf-cost', '10'], { env })
      expect(r.code, r.stderr).toBe(0)
    }
    miners.push(await startMiner(homes[0]!, []))
    const boot = miners[0]!.ready.addrs[0]!
    miners.push(await startMiner(homes[1]!, ['--bootstrap', boot]))

    const inf = await runCli(['--home', homes[2]!, '--json', 'infer', '--network', '--bootstrap', boot, 'hello mesh', '--max-tokens', '16', '--seed', '5'], { env, timeoutMs: 60_000 })
    expect(inf.code, inf.stderr).toBe(0)
    const out = JSON.parse(inf.stdout) as { text: string, miner: string, receipt: { receipt: Record<string, string>, signature: string }, receiptValid: boolean }
    expect(out.text.length).toBeGreaterThan(0)
    expect(out.receiptValid).toBe(true)
    const minerAddrs = miners.map(m => m.ready.address)
    expect(minerAddrs).toContain(out.miner)
    // check the signature independently of our verifier: plain ethers over the shared types
    const signer = verifyTypedData(heuristDomain(0, '0x0000000000000000000000000000000000000000'), ReceiptTypes, receiptFromWire(out.receipt.receipt as never), out.receipt.signature)
    expect(signer).toBe(out.miner)

    const peers = await runCli(['--home', homes[2]!, '--json', 'peers', '--bootstrap', boot, '--min', '2', '--wait-ms', '20000'], { env, timeoutMs: 40_000 })
    expect(peers.code, peers.stderr).toBe(0)
    const list = (JSON.parse(peers.stdout) as { miners: Array<{ address: string, peerId: string, models: Array<{ name: string }> }> }).miners
    expect(list.map(m => m.address).sort()).toEqual([...minerAddrs].sort())
    for (const m of list) {
      expect(m.models.map(x => x.name)).toContain('tiny-llama')
      expect(m.peerId).toBe(miners.find(x => x.ready.address === m.address)!.ready.peerId)
    }

    for (const m of miners) m.child.kill('SIGTERM')
    const codes = await Promise.all(miners.map(async m => await Promise.race([m.exited, new Promise<string>(resolve => setTimeout(() => { resolve('timeout') }, 20_000))])))
    expect(codes).toEqual([0, 0])
    expect(miners[0]!.stderr()).toContain('miner stopped')
  })
})
