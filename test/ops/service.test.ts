import { describe, it, expect } from 'vitest'
import { spawnSync } from 'node:child_process'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { BIN, runCli, tempDir } from '../helpers.js'

/** Debian's systemd checks the unit as systemd itself would load it (.ci/run installs it when missing). */
function verify (unitPath: string, user: boolean, runtimeDir: string): { status: number | null, out: string } {
  const r = spawnSync('systemd-analyze', [...(user ? ['--user'] : []), 'verify', unitPath], { encoding: 'utf8', env: { ...process.env, XDG_RUNTIME_DIR: runtimeDir, SYSTEMD_LOG_LEVEL: 'notice' }, timeout: 60_000 })
  if (r.error !== undefined) throw r.error
  return { status: r.status, out: `${r.stdout}${r.stderr}` }
}

describe('heurist service install', () => {
  it('writes a system unit for mine that systemd-analyze verify accepts: restart policy, JSON logs, password credential, HEURIST_HOME', async () => {
    const { dir, cleanup } = await tempDir('heurist-service-')
    try {
      const home = join(dir, 'home')
      const units = join(dir, 'units')
      const r = await runCli(['--home', home, '--json', 'service', 'install', '--unit-dir', units, '--run-as', 'root'])
      expect(r.code, r.stderr).toBe(0)
      const out = JSON.parse(r.stdout) as { path: string, unit: string, next: string[] }
      expect(out.unit).toBe('heurist-mine.service')
      expect(out.path).toBe(join(units, 'heurist-mine.service'))
      expect(out.next).toContain('systemctl enable --now heurist-mine.service')
      const text = await readFile(out.path, 'utf8')
      expect(text).toContain(`ExecStart=${process.execPath} ${BIN} mine --log-format json`)
      expect(text).toContain(`Environment=HEURIST_HOME=${home}`)
      expect(text).toContain(`LoadCredential=heurist-password:${join(home, 'password')}`)
      expect(text).toMatch(/^Restart=always$/m)
      expect(text).toMatch(/^StandardOutput=journal$/m)
      expect(text).not.toMatch(/PASSWORD=/) // the password itself is never in the unit
      const v = verify(out.path, false, dir)
      expect(v.out).toBe('')
      expect(v.status).toBe(0)
    } finally {
      await cleanup()
    }
  })

  it('writes a user unit for validate (password file by env) that systemd-analyze --user verify accepts', async () => {
    const { dir, cleanup } = await tempDir('heurist-service-user-')
    try {
      const runtime = join(dir, 'run')
      await mkdir(runtime, { mode: 0o700 })
      const r = await runCli(['--home', join(dir, 'home'), '--json', 'service', 'install', '--user', '--role', 'validate', '--unit-dir', dir, '--password-file', join(dir, 'pw')])
      expect(r.code, r.stderr).toBe(0)
      const path = (JSON.parse(r.stdout) as { path: string }).path
      const text = await readFile(path, 'utf8')
      expect(text).toContain(' validate --log-format json')
      expect(text).toContain(`Environment=HEURIST_PASSWORD_FILE=${join(dir, 'pw')}`)
      expect(text).toMatch(/^WantedBy=default\.target$/m)
      const v = verify(path, true, runtime)
      expect(v.out).toBe('')
      expect(v.status).toBe(0)
    } finally {
      await cleanup()
    }
  })

  it('the CLI reads the keystore password from the systemd credential and from HEURIST_PASSWORD_FILE', async () => {
    const { dir, cleanup } = await tempDir('heurist-service-pw-')
    try {
      const home = join(dir, 'home')
      const init = await runCli(['init', '--home', home, '--json', '--kdf-cost', '10'], { env: { HEURIST_PASSWORD: 'from-a-file' } })
      expect(init.code, init.stderr).toBe(0)
      const address = (JSON.parse(init.stdout) as { address: string }).address
      const creds = join(dir, 'creds')
      await mkdir(creds)
      await writeFile(join(creds, 'heurist-password'), 'from-a-file\n', { mode: 0o600 })
      const noPw = { HEURIST_PASSWORD: '' }
      const viaCred = await runCli(['whoami', '--home', home, '--json'], { env: { ...noPw, CREDENTIALS_DIRECTORY: creds } })
      expect(viaCred.code, viaCred.stderr).toBe(0)
      expect(viaCred.stdout).toContain(address)
      const viaFile = await runCli(['whoami', '--home', home, '--json'], { env: { ...noPw, HEURIST_PASSWORD_FILE: join(creds, 'heurist-password') } })
      expect(viaFile.code, viaFile.stderr).toBe(0)
      expect(viaFile.stdout).toContain(address)
      const missing = await runCli(['whoami', '--home', home], { env: { ...noPw, HEURIST_PASSWORD_FILE: join(dir, 'nope') } })
      expect(missing.code).toBe(2)
      expect(missing.stderr).toContain('HEURIST_PASSWORD_FILE')
    } finally {
      await cleanup()
    }
  })

  it('a bad role or a path systemd would misread is a usage error (exit 2)', async () => {
    const { dir, cleanup } = await tempDir('heurist-service-bad-')
    try {
      const role = await runCli(['--home', dir, 'service', 'install', '--role', 'miner', '--unit-dir', dir])
      expect(role.code).toBe(2)
      expect(role.stderr).toContain('--role')
      const spaced = await runCli(['--home', join(dir, 'my home'), 'service', 'install', '--unit-dir', dir])
      expect(spaced.code).toBe(2)
      expect(spaced.stderr).toContain('HEURIST_HOME')
    } finally {
      await cleanup()
    }
  })
})
