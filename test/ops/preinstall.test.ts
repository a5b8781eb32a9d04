import { describe, it, expect, beforeEach, afterEach } from 'vitest'
import { spawnSync } from 'node:child_process'
import { copyFileSync, mkdirSync, readFileSync, existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { tempDir } from '../helpers.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const ORT = dirname(createRequire(import.meta.url).resolve('onnxruntime-node/package.json'))
const ORT_SCRIPTS = ['install.js', 'install-utils.js', 'install-metadata.js', 'install-metadata-versions.js']

/** Env without the npm_* and ONNXRUNTIME_* values `npm test` passes down (the clone's .npmrc skip). */
function env (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k) && !/^ONNXRUNTIME_/i.test(k)) out[k] = v
  // onnxruntime-node's installer sends https through global-agent: a closed local port as the
  // proxy makes any download attempt fail at once, and nothing leaves this machine
  return { ...out, GLOBAL_AGENT_HTTPS_PROXY: 'http://127.0.0.1:9', NODE_PATH: join(ROOT, 'node_modules'), ...extra }
}

/**
 * scripts/preinstall.cjs against onnxruntime-node's real install script, laid out as npm
 * unpacks a global install (heurist/node_modules/onnxruntime-node), run the way npm runs them:
 * heurist's preinstall first, then onnxruntime-node's postinstall.
 */
describe('preinstall: onnxruntime-node\'s CUDA download is opt-in', () => {
  let dir: string
  let cleanup: () => Promise<void>
  let pkg: string
  let ortDir: string
  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir('heurist-preinstall-'))
    pkg = join(dir, 'heurist')
    ortDir = join(pkg, 'node_modules', 'onnxruntime-node')
    mkdirSync(join(pkg, 'scripts'), { recursive: true })
    mkdirSync(join(ortDir, 'script'), { recursive: true })
    copyFileSync(join(ROOT, 'scripts', 'preinstall.cjs'), join(pkg, 'scripts', 'preinstall.cjs'))
    copyFileSync(join(ORT, 'package.json'), join(ortDir, 'package.json'))
    for (const f of ORT_SCRIPTS) copyFileSync(join(ORT, 'script', f), join(ortDir, 'script', f))
  })
  afterEach(async () => { await cleanup() })

  const preinstall = (extra: NodeJS.ProcessEnv = {}): ReturnType<typeof spawnSync> =>
    spawnSync(process.execPath, [join(pkg, 'scripts', 'preinstall.cjs')], { cwd: dir, env: env(extra), encoding: 'utf8', timeout: 30_000 })
  const ortPostinstall = (): ReturnType<typeof spawnSync> =>
    spawnSync(process.execPath, [join(ortDir, 'script', 'install.js')], { cwd: ortDir, env: env(), encoding: 'utf8', timeout: 30_000 })
  const metadata = (): string => readFileSync(join(ortDir, 'script', 'install-metadata.js'), 'utf8')

  it.runIf(process.platform === 'linux' && process.arch === 'x64')('without it, onnxruntime-node\'s postinstall tries a download and fails; after it, the postinstall succeeds and fetches nothing', () => {
    const before = ortPostinstall()
    expect(before.status).not.toBe(0) // it went for api.nuget.org (through the dead proxy)

    const pre = preinstall()
    expect(pre.status, String(pre.stderr)).toBe(0)
    expect(String(pre.stderr)).toContain('ONNXRUNTIME_NODE_INSTALL=cuda12')
    const after = ortPostinstall()
    expect(after.status, String(after.stderr)).toBe(0)
    expect(String(after.stdout)).not.toContain('Downloading')
    expect(existsSync(join(ortDir, 'bin'))).toBe(false)
    // only the default requirement changed: the CUDA manifest is still there for an explicit opt-in
    expect(metadata()).toMatch(/'linux\/x64':\s*\[\]/)
    expect(metadata()).toContain("'linux/x64:cuda12': {")
  })

  it('an operator who opts in (ONNXRUNTIME_NODE_INSTALL=cuda12) gets onnxruntime-node untouched', () => {
    const shipped = metadata()
    const pre = preinstall({ ONNXRUNTIME_NODE_INSTALL: 'cuda12' })
    expect(pre.status).toBe(0)
    expect(String(pre.stderr)).toContain('ONNXRUNTIME_NODE_INSTALL=cuda12 is set')
    expect(metadata()).toBe(shipped)
  })

  it('npm install in a clone of heurist (heurist is the project) leaves onnxruntime-node alone', () => {
    const shipped = metadata()
    expect(preinstall({ npm_config_local_prefix: pkg }).status).toBe(0)
    expect(metadata()).toBe(shipped)
  })

  it('an onnxruntime-node whose metadata it does not recognise is left alone, with a line saying what to set', () => {
    const odd = 'module.exports = { other: true }\n'
    spawnSync(process.execPath, ['-e', `require('fs').writeFileSync(${JSON.stringify(join(ortDir, 'script', 'install-metadata.js'))}, ${JSON.stringify(odd)})`])
    const pre = preinstall()
    expect(pre.status).toBe(0)
    expect(String(pre.stderr)).toContain('ONNXRUNTIME_NODE_INSTALL=skip')
    expect(metadata()).toBe(odd)
  })
})
