import { describe, it, expect } from 'vitest'
import { spawn } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { tempDir } from '../helpers.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

/**
 * The env of the npm and heurist processes: no npm_* variables inherited from `npm test` (they
 * carry this clone's .npmrc, onnxruntime-node-install=skip, which an operator installing the
 * tarball does not have), and no ONNXRUNTIME_* choice either.
 */
function cleanEnv (extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (/^npm_/i.test(k) || /^ONNXRUNTIME_/i.test(k) || /^HEURIST_/.test(k)) continue
    env[k] = v
  }
  return { ...env, ...extra }
}

interface Done { code: number | null, out: string }

function run (cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<Done> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout.on('data', (d: Buffer) => { out += d.toString() })
    child.stderr.on('data', (d: Buffer) => { out += d.toString() })
    const timer = setTimeout(() => { child.kill('SIGKILL') }, timeoutMs)
    child.on('error', reject)
    child.on('close', code => { clearTimeout(timer); resolve({ code, out }) })
  })
}

/**
 * The packed tarball installs globally from the npm registry alone and `heurist` runs from
 * PATH. Without scripts/preinstall.cjs, onnxruntime-node's postinstall fetches its CUDA
 * libraries from api.nuget.org: where that host is unreachable (CI) the install fails; where it
 * is reachable the CUDA library lands in the package, which the test also rules out.
 * Takes about a minute with npm's cache warm (the registry is asked only for what it lacks).
 */
describe('npm pack, then npm install -g from the tarball', () => {
  it('installs without the CUDA download and `heurist up --json` answers from the installed bin', async () => {
    const { dir, cleanup } = await tempDir('heurist-install-')
    const prefix = join(dir, 'prefix')
    const home = join(dir, 'home')
    const env = cleanEnv({ PATH: `${join(prefix, 'bin')}:${process.env.PATH ?? ''}` })
    try {
      // dist/ is built by `pretest`; --ignore-scripts keeps pack from building it again
      const pack = await run('npm', ['pack', '--ignore-scripts', '--pack-destination', dir], ROOT, env, 120_000)
      expect(pack.code, pack.out.slice(-2000)).toBe(0)
      const tgz = readdirSync(dir).find(f => f.endsWith('.tgz'))
      expect(tgz).toBeDefined()

      const t0 = Date.now()
      const install = await run('npm', ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', '--foreground-scripts', join(dir, tgz!)], dir, env, 420_000)
      expect(install.code, install.out.slice(-3000)).toBe(0)
      process.stderr.write(`[install test] npm install -g took ${((Date.now() - t0) / 1000).toFixed(1)} s\n`)
      const ort = join(prefix, 'lib', 'node_modules', 'heurist', 'node_modules', 'onnxruntime-node', 'bin', 'napi-v6', 'linux', 'x64')
      if (process.platform === 'linux' && process.arch === 'x64') {
        expect(existsSync(join(ort, 'libonnxruntime.so.1'))).toBe(true) // the CPU library, from the npm package
        expect(existsSync(join(ort, 'libonnxruntime_providers_cuda.so'))).toBe(false) // nothing fetched from elsewhere
      }

      const bin = join(prefix, 'bin', 'heurist')
      expect(existsSync(bin)).toBe(true)
      const up = spawn('heurist', ['--home', home, '--json', 'up', '--miners', '1', '--validators', '0', '--port', '0', '--rpc-port', '0'], {
        cwd: dir, env: { ...env, HEURIST_LOG_LEVEL: 'warn', HEURIST_INFERENCE_THREADS: '1' }, stdio: ['ignore', 'pipe', 'pipe']
      })
      let stdout = ''
      let stderr = ''
      up.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
      up.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
      const exited = new Promise<number | null>(resolve => { up.on('close', code => { resolve(code) }) })
      const killer = setTimeout(() => { up.kill('SIGKILL') }, 150_000)
      try {
        const end = Date.now() + 120_000
        while (!stdout.includes('\n') && Date.now() < end && up.exitCode === null) await new Promise(resolve => setTimeout(resolve, 100))
        expect(stdout, stderr.slice(-2000)).toContain('\n')
        const ready = JSON.parse(stdout.split('\n')[0]!) as { baseUrl: string, apiKey: string }
        const auth = { authorization: `Bearer ${ready.apiKey}`, 'content-type': 'application/json' }
        const models = await (await fetch(`${ready.baseUrl}/models`, { headers: auth })).json() as { data: Array<{ id: string }> }
        expect(models.data.map(m => m.id)).toEqual(expect.arrayContaining(['tiny-llama', 'tiny-sd']))
        // an image job runs onnxruntime-node's CPU library from the global install
        const img = await fetch(`${ready.baseUrl}/images/generations`, { method: 'POST', headers: auth, body: JSON.stringify({ model: 'tiny-sd', prompt: 'a red square', size: '64x64', response_format: 'b64_json', seed: 5, steps: 2 }) })
        expect(img.status).toBe(200)
        const png = Buffer.from(((await img.json()) as { data: Array<{ b64_json: string }> }).data[0]!.b64_json, 'base64')
        expect(png.subarray(1, 4).toString()).toBe('PNG')
        up.kill('SIGINT')
        expect(await exited).toBe(0)
      } finally {
        clearTimeout(killer)
        if (up.exitCode === null) up.kill('SIGKILL')
      }
    } finally {
      await cleanup()
    }
  }, 600_000)
})
