import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { join } from 'node:path'
import { rm } from 'node:fs/promises'
import sharp from 'sharp'
import { runCli, tempDir } from '../../helpers.js'
import { buildTinySd } from '../../../src/inference/image/index.js'

let home: string
let dir: string
let cleanup: () => Promise<void>

beforeAll(async () => {
  ({ dir, cleanup } = await tempDir('heurist-infer-image-'))
  home = join(dir, 'home')
})
afterAll(async () => { await cleanup() })

const infer = async (...args: string[]): Promise<Awaited<ReturnType<typeof runCli>>> => await runCli(['--home', home, 'infer', '--image', ...args], { timeoutMs: 60_000 })

describe('heurist infer --image', () => {
  it('same seed twice → same pixelSha256; another seed → another; the PNG has the asked size; --json fields', async () => {
    const out1 = join(dir, 'cat1.png')
    const a = await infer('--model', 'tiny-sd', '--seed', '1', '--steps', '20', '--width', '64', '--height', '64', '--out', out1, '--json', 'a cat')
    expect(a.code, a.stderr).toBe(0)
    const ja = JSON.parse(a.stdout) as Record<string, unknown>
    expect(Object.keys(ja).sort()).toEqual(['height', 'model', 'ms', 'pixelSha256', 'seed', 'width'])
    expect(ja).toMatchObject({ model: 'tiny-sd', seed: 1, width: 64, height: 64 })
    expect(ja.pixelSha256).toMatch(/^[0-9a-f]{64}$/)
    const b = await infer('--model', 'tiny-sd', '--seed', '1', '--steps', '20', '--width', '64', '--height', '64', '--out', join(dir, 'cat2.png'), '--json', 'a cat')
    expect(JSON.parse(b.stdout).pixelSha256).toBe(ja.pixelSha256)
    const c = await infer('--seed', '2', '--steps', '20', '--width', '64', '--height', '64', '--json', 'a cat')
    expect(c.code, c.stderr).toBe(0)
    expect(JSON.parse(c.stdout).pixelSha256).not.toBe(ja.pixelSha256)
    const meta = await sharp(out1).metadata()
    expect([meta.format, meta.width, meta.height]).toEqual(['png', 64, 64])
    const wide = await infer('--seed', '1', '--steps', '4', '--width', '128', '--height', '72', '--scheduler', 'ddim', '--out', join(dir, 'wide.png'), 'a cat')
    expect(wide.code, wide.stderr).toBe(0)
    expect(wide.stdout).toMatch(/wrote .*wide\.png: 128×72, seed 1, pixels sha256 [0-9a-f]{64}/)
    const wm = await sharp(join(dir, 'wide.png')).metadata()
    expect([wm.width, wm.height]).toEqual([128, 72])
  })

  it('bad parameters exit 2 with a one-line reason', async () => {
    for (const [args, re] of [
      [['--width', '60'], /width must be a multiple of 8/],
      [['--height', '2048'], /height must be a multiple of 8 from 8 to 1024/],
      [['--steps', '101'], /steps must be an integer from 1 to 100/],
      [['--scheduler', 'pndm'], /--scheduler: expected one of euler, ddim/],
      [['--guidance', 'lots'], /--guidance/],
      [['--seed', '-3'], /--seed/]
    ] as Array<[string[], RegExp]>) {
      const r = await infer(...args, 'a cat')
      expect(r.code, r.stderr).toBe(2)
      expect(r.stderr).toMatch(re)
    }
  })

  it('a model folder missing a file, or with unexpected tensor shapes, exits 1', async () => {
    const missing = await buildTinySd(join(dir, 'missing'))
    await rm(join(missing, 'vae_decoder', 'model.onnx'))
    const m = await infer('--model', missing, '--width', '64', '--height', '64', 'a cat')
    expect(m.code).toBe(1)
    expect(m.stderr).toMatch(/missing vae_decoder\/model\.onnx/)
    const bad = await buildTinySd(join(dir, 'bad-shape'), { latentChannels: 3 })
    const s = await infer('--model', bad, '--width', '64', '--height', '64', 'a cat')
    expect(s.code).toBe(1)
    expect(s.stderr).toMatch(/unet\/model\.onnx: sample has shape/)
  })

  it('an empty prompt is allowed and warned about', async () => {
    const r = await infer('--seed', '1', '--width', '64', '--height', '64', '--steps', '4', '--json', '')
    expect(r.code, r.stderr).toBe(0)
    expect(r.stderr).toMatch(/empty prompt/)
    expect(JSON.parse(r.stdout).pixelSha256).toMatch(/^[0-9a-f]{64}$/)
  })
})
