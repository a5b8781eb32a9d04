import { describe, it, expect } from 'vitest'
import { spawn } from 'node:child_process'
import { BIN, runCli, tempDir } from '../helpers.js'

const env = { HEURIST_PASSWORD: 'dash-pw', HEURIST_LOG_FORMAT: 'json', HEURIST_LOG_LEVEL: 'warn', HEURIST_P2P_LISTEN: '/ip4/127.0.0.1/tcp/0', HEURIST_P2P_DEVNET: 'true' }

describe('heurist gateway serves the dashboard', () => {
  it('--json names the dashboard URL; /api/summary answers for the gateway role; dashboard.enabled=false turns it off', async () => {
    const t = await tempDir('heurist-dash-cli-')
    try {
      expect((await runCli(['--home', t.dir, 'init', '--kdf-cost', '10'], { env })).code).toBe(0)
      for (const enabled of ['true', 'false']) {
        const child = spawn(process.execPath, [BIN, '--home', t.dir, '--json', 'gateway', '--port', '0', '--unpaid'], { env: { ...process.env, ...env, HEURIST_DASHBOARD_ENABLED: enabled }, stdio: ['ignore', 'pipe', 'pipe'] })
        let out = ''
        let err = ''
        child.stdout.on('data', (d: Buffer) => { out += d.toString() })
        child.stderr.on('data', (d: Buffer) => { err += d.toString() })
        const exited = new Promise<number | null>(resolve => { child.on('close', code => { resolve(code) }) })
        const killer = setTimeout(() => { child.kill('SIGKILL') }, 60_000)
        try {
          const end = Date.now() + 45_000
          while (!out.includes('\n') && Date.now() < end && child.exitCode === null) await new Promise(resolve => setTimeout(resolve, 100))
          expect(out, err.slice(-2000)).toContain('\n')
          const ready = JSON.parse(out.split('\n')[0]!) as { dashboard: string | null, address: string }
          if (enabled === 'false') {
            expect(ready.dashboard).toBeNull()
          } else {
            expect(ready.dashboard).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
            const page = await fetch(ready.dashboard!)
            expect(page.headers.get('content-security-policy')).toContain("default-src 'none'")
            expect(await page.text()).toContain('id="tps-chart"')
            const s = await (await fetch(`${ready.dashboard!}/api/summary`)).json() as { role: string, address: string, peers: unknown[], jobs: { served: number }, earnings: unknown[], slashes: unknown[], history: unknown[] }
            expect(s.role).toBe('gateway')
            expect(s.address).toBe(ready.address)
            expect(s.jobs.served).toBe(0)
            expect(s.earnings).toEqual([])
            expect(s.slashes).toEqual([])
            expect(s.history.length).toBeGreaterThanOrEqual(1)
          }
        } finally {
          child.kill('SIGTERM')
          expect(await exited).toBe(0)
          clearTimeout(killer)
        }
      }
    } finally {
      await t.cleanup()
    }
  }, 120_000)
})
