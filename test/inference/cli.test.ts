import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { createServer, type Server } from 'node:http'
import { createHash } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import { buildTinyLlama, tinyLlamaSpecs } from '../../src/inference/index.js'
import { runCli, tempDir } from '../helpers.js'

// The built CLI as a user runs it (`npm test` builds first). One thread: the suite shares 2 cores.
describe('heurist models / infer', () => {
  let dir: string
  let cleanup: () => Promise<void>
  let env: NodeJS.ProcessEnv
  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir())
    env = { HEURIST_HOME: dir, HEURIST_INFERENCE_THREADS: '1', HEURIST_INFERENCE_GPU: 'cpu' }
  })
  afterAll(async () => { await cleanup() })

  it('make-tiny, then infer --json twice gives the same text', async () => {
    const made = await runCli(['models', 'make-tiny', '--json'], { env })
    expect(made.code, made.stderr).toBe(0)
    const names = (JSON.parse(made.stdout) as { models: Array<{ name: string, id: string }> }).models.map(m => m.name)
    expect(names).toEqual(expect.arrayContaining(['tiny-llama', 'tiny-llama-b']))
    const args = ['infer', '--model', 'tiny-llama', '--seed', '7', '--max-tokens', '32', '--json', 'hello']
    const r1 = await runCli(args, { env })
    const r2 = await runCli(args, { env })
    expect(r1.code, r1.stderr).toBe(0)
    const j1 = JSON.parse(r1.stdout) as Record<string, unknown>
    const j2 = JSON.parse(r2.stdout) as Record<string, unknown>
    expect(Object.keys(j1)).toEqual(expect.arrayContaining(['model', 'text', 'tokens', 'seed', 'ttftMs', 'tokensPerSecond']))
    expect(j1).toMatchObject({ model: 'tiny-llama', tokens: 32, seed: 7 })
    expect(typeof j1.text).toBe('string')
    expect(j2.text).toBe(j1.text)
    // without --json the text streams to stdout
    const plain = await runCli(args.filter(a => a !== '--json'), { env })
    expect(plain.stdout).toBe(`${String(j1.text)}\n`)
  })

  it('list and inspect read the cache and GGUF metadata', async () => {
    const list = await runCli(['models', 'list', '--json'], { env })
    expect(list.code).toBe(0)
    expect((JSON.parse(list.stdout) as { models: unknown[] }).models.length).toBeGreaterThanOrEqual(2)
    const ins = await runCli(['models', 'inspect', 'tiny-llama-b', '--json'], { env })
    expect(ins.code, ins.stderr).toBe(0)
    expect(JSON.parse(ins.stdout)).toMatchObject({ name: 'tiny-llama-b', architecture: 'llama', contextLength: 1024, layers: 3, embeddingLength: 96 })
  })

  it('models manifest lists a folder\'s files with their sha256, and its id is the folder\'s cache id', async () => {
    const { buildTinySd, folderId, sha256OfFile } = await import('../../src/inference/index.js')
    const sd = await buildTinySd(join(dir, 'sd-manifest'), { seed: 77, externalData: true })
    const out = join(dir, 'sd-manifest.json')
    const r = await runCli(['models', 'manifest', sd, '--out', out, '--json'], { env })
    expect(r.code, r.stderr).toBe(0)
    const j = JSON.parse(r.stdout) as { id: string, files: number }
    expect(j.id).toBe(await folderId(sd))
    const m = JSON.parse(await readFile(out, 'utf8')) as { files: Array<{ path: string, size: number, sha256: string }> }
    expect(m.files.map(f => f.path)).toEqual(expect.arrayContaining(['unet/model.onnx', 'unet/model.onnx_data', 'tokenizer/vocab.json']))
    expect(j.files).toBe(m.files.length)
    const unet = m.files.find(f => f.path === 'unet/model.onnx_data')!
    expect(unet.sha256).toBe(await sha256OfFile(join(sd, 'unet', 'model.onnx_data')))
    const notDir = await runCli(['models', 'manifest', out], { env })
    expect(notDir.code).toBe(2)
  })

  it('a truncated GGUF, a wrong magic or an unknown model give a one-line error, no native crash', async () => {
    const good = buildTinyLlama(tinyLlamaSpecs[0]!)
    const trunc = join(dir, 'trunc.gguf')
    await writeFile(trunc, good.subarray(0, 100_000))
    const r = await runCli(['infer', '--model', trunc, '--seed', '1', 'hi'], { env })
    expect(r.code).toBe(1)
    expect(r.stderr.trim().split('\n')).toHaveLength(1)
    expect(r.stderr).toMatch(/not a valid GGUF file: truncated/)
    const magic = join(dir, 'magic.gguf')
    await writeFile(magic, Buffer.concat([Buffer.from('XXXX'), good.subarray(4)]))
    const m = await runCli(['infer', '--model', magic, 'hi'], { env })
    expect(m.code).toBe(1)
    expect(m.stderr).toMatch(/wrong magic/)
    const u = await runCli(['infer', '--model', 'nope', 'hi'], { env })
    expect(u.code).toBe(2)
    expect(u.stderr).toMatch(/unknown model "nope"/)
    const long = await runCli(['infer', '--model', 'tiny-llama', 'x'.repeat(3000)], { env })
    expect(long.code).toBe(2)
    expect(long.stderr).toMatch(/policy: reject/)
  })

  describe('pull', () => {
    let server: Server
    let base: string
    const model = buildTinyLlama(tinyLlamaSpecs[1]!)
    beforeAll(async () => {
      server = createServer((_req, res) => { res.writeHead(200, { 'content-length': String(model.length) }).end(model) })
      await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    })
    afterAll(async () => { await new Promise(resolve => server.close(resolve)) })

    it('prints plain progress lines off a TTY and verifies the checksum', async () => {
      const sha = createHash('sha256').update(model).digest('hex')
      const ok = await runCli(['models', 'pull', `${base}/b.gguf`, '--sha256', sha, '--name', 'pulled-b'], { env })
      expect(ok.code, ok.stderr).toBe(0)
      expect(ok.stderr).toMatch(/pull: 100% /)
      expect(ok.stdout).toMatch(new RegExp(`pulled pulled-b ${sha}`))
      expect(await readFile(join(dir, 'models', 'blobs', sha))).toEqual(model)
      const bad = await runCli(['models', 'pull', `${base}/c.gguf`, '--sha256', '0'.repeat(64)], { env })
      expect(bad.code).toBe(1)
      expect(bad.stderr).toMatch(/sha256 of .* expected 0{64}; the download was removed/)
      const rm = await runCli(['models', 'rm', 'pulled-b'], { env })
      expect(rm.code).toBe(0)
    })
  })
})
