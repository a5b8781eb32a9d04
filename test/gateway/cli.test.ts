import { describe, it, expect } from 'vitest'
import { spawn } from 'node:child_process'
import OpenAI from 'openai'
import { access } from 'node:fs/promises'
import { join } from 'node:path'
import { BIN, runCli, tempDir } from '../helpers.js'

/** The CLI end to end: `heurist up --json` brings the network up, an OpenAI client gets a completion, SIGINT stops it cleanly. */
describe('heurist up and gateway keys', () => {
  it('up --json prints one line {baseUrl, apiKey, rpcUrl}; the key works with the openai client; SIGINT exits 0', async () => {
    const { dir, cleanup } = await tempDir('heurist-up-')
    const child = spawn(process.execPath, [BIN, '--home', dir, '--json', 'up', '--miners', '2', '--port', '0', '--rpc-port', '0'], {
      env: { ...process.env, HEURIST_LOG_FORMAT: 'json', HEURIST_LOG_LEVEL: 'warn', HEURIST_INFERENCE_THREADS: '1' },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
    const exited = new Promise<number | null>(resolve => { child.on('close', code => { resolve(code) }) })
    const killer = setTimeout(() => { child.kill('SIGKILL') }, 110_000)
    try {
      const end = Date.now() + 90_000
      while (!stdout.includes('\n') && Date.now() < end && child.exitCode === null) await new Promise(resolve => setTimeout(resolve, 100))
      expect(stdout, stderr.slice(-2000)).toContain('\n')
      const ready = JSON.parse(stdout.split('\n')[0]!) as { baseUrl: string, apiKey: string, rpcUrl: string }
      // the contract: these three, ready to use (other areas may add fields to the line)
      expect(ready.baseUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1$/)
      expect(ready.apiKey).toMatch(/^hk-/)
      expect(ready.rpcUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+/)
      const client = new OpenAI({ apiKey: ready.apiKey, baseURL: ready.baseUrl, maxRetries: 0, timeout: 60_000 })
      const models = (await client.models.list()).data.map(m => m.id)
      expect(models).toContain('tiny-llama')
      const r = await client.chat.completions.create({ model: 'tiny-llama', messages: [{ role: 'user', content: 'Hello!' }], max_tokens: 8 })
      expect(r.choices[0]!.message.content!.length).toBeGreaterThan(0)
      expect(r.usage!.completion_tokens).toBe(8)
      // the chain is there too
      const chainId = await fetch(ready.rpcUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_chainId', params: [] }) })
      expect(((await chainId.json()) as { result: string }).result).toBe('0x7a69')
      child.kill('SIGINT')
      expect(await exited).toBe(0)
      // up removes what it wrote outside its folder: no devnet.json for a dead chain, no lock
      await expect(access(join(dir, 'devnet.json'))).rejects.toThrow()
      await expect(access(join(dir, 'up.lock'))).rejects.toThrow()
    } finally {
      clearTimeout(killer)
      if (child.exitCode === null) child.kill('SIGKILL')
      await cleanup()
    }
  }, 120_000)

  it('gateway keys create: prints a key once; a bad --credits exits 2 naming the flag; no chain needs --unpaid', async () => {
    const { dir, cleanup } = await tempDir('heurist-keys-')
    try {
      // with no chain the key would be backed by nothing: refused unless --unpaid says so
      const unbacked = await runCli(['--home', dir, '--json', 'gateway', 'keys', 'create', '--credits', '1.5'])
      expect(unbacked.code).toBe(2)
      expect(unbacked.stderr).toContain('--unpaid')
      expect(unbacked.stderr).not.toMatch(/start `heurist devnet`/)
      const ok = await runCli(['--home', dir, '--json', 'gateway', 'keys', 'create', '--credits', '1.5', '--unpaid'])
      expect(ok.code, ok.stderr).toBe(0)
      const out = JSON.parse(ok.stdout) as { apiKey: string, credits: string, backedBy: unknown }
      expect(out.apiKey).toMatch(/^hk-/)
      expect(out.credits).toBe('1500000000000000000')
      expect(out.backedBy).toBeNull() // no chain in this home
      const bad = await runCli(['--home', dir, 'gateway', 'keys', 'create', '--credits', 'lots'])
      expect(bad.code).toBe(2)
      expect(bad.stderr).toContain('--credits')
    } finally {
      await cleanup()
    }
  })
})
