import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { createServer, type Server } from 'node:http'
import { createHash } from 'node:crypto'
import { mkdir, readFile, stat, writeFile, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import type { AddressInfo } from 'node:net'
import { ModelCache, ensureTinyModels, folderId, buildTinyLlama, tinyLlamaSpecs, type PullProgress } from '../../src/inference/index.js'
import { isHeuristError } from '../../src/core/errors.js'
import { tempDir } from '../helpers.js'

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex')

describe('model cache', () => {
  let dir: string
  let cleanup: () => Promise<void>
  beforeAll(async () => { ({ dir, cleanup } = await tempDir()) })
  afterAll(async () => { await cleanup() })

  it('registers the tiny models by sha256, resolves names, id prefixes and paths, and removes', async () => {
    const cdir = join(dir, 'c1')
    const made = await ensureTinyModels(cdir, { names: ['tiny-llama', 'tiny-llama-b'] })
    const cache = await ModelCache.open(cdir)
    const a = made[0]!
    expect(a.id).toBe(sha(await readFile(a.path)))
    expect(a.id).toBe(sha(buildTinyLlama(tinyLlamaSpecs[0]!)))
    expect((await cache.resolve('tiny-llama')).id).toBe(a.id)
    expect((await cache.resolve(a.id.slice(0, 10))).name).toBe('tiny-llama')
    const outside = join(dir, 'x.gguf')
    await writeFile(outside, await readFile(a.path))
    expect(await cache.resolve(outside)).toMatchObject({ id: a.id, cached: false, kind: 'llm', contextSize: 1024 })
    const unknown = await cache.resolve('no-such-model').then(() => null, (e: unknown) => e)
    expect(isHeuristError(unknown, 'INFERENCE_UNKNOWN_MODEL')).toBe(true)
    expect((unknown as Error).message).toMatch(/tiny-llama/)
    expect((await cache.list()).map(m => m.name).sort()).toEqual(['tiny-llama', 'tiny-llama-b'])
    await cache.remove('tiny-llama-b')
    expect((await cache.list()).map(m => m.name)).toEqual(['tiny-llama'])
  })

  it('builds the same ids when two processes make the tiny models at once, fast', async () => {
    const cdir = join(dir, 'c2')
    const t0 = performance.now()
    const [x, y] = await Promise.all([
      ensureTinyModels(cdir, { names: ['tiny-llama', 'tiny-llama-b'], force: true }),
      ensureTinyModels(cdir, { names: ['tiny-llama', 'tiny-llama-b'], force: true })
    ])
    expect(performance.now() - t0).toBeLessThan(2000)
    expect(x.map(m => m.id)).toEqual(y.map(m => m.id))
    const cache = await ModelCache.open(cdir)
    expect((await cache.list()).length).toBe(2)
    expect(await readdir(join(cdir, 'blobs'))).toHaveLength(2)
  })

  it('adds a folder model with an id over its sorted manifest', async () => {
    const f = join(dir, 'folder')
    await mkdir(join(f, 'unet'), { recursive: true })
    await writeFile(join(f, 'unet', 'model.onnx'), 'u')
    await writeFile(join(f, 'a.json'), '{}')
    const manifest = `${sha(Buffer.from('{}'))} a.json\n${sha(Buffer.from('u'))} unet/model.onnx\n`
    expect(await folderId(f)).toBe(sha(Buffer.from(manifest)))
    const cache = await ModelCache.open(join(dir, 'c3'))
    const m = await cache.add(f, { name: 'my-sd', kind: 'image' })
    expect(m).toMatchObject({ id: sha(Buffer.from(manifest)), kind: 'image', format: 'folder', sizeBytes: 3 })
    expect((await stat(join(m.path, 'unet', 'model.onnx'))).isFile()).toBe(true)
    const bad = await cache.add(f, { name: '../evil', kind: 'image' }).then(() => null, (e: unknown) => e)
    expect(isHeuristError(bad, 'INFERENCE_BAD_MODEL_NAME')).toBe(true)
  })
})

describe('models pull against a local HTTP server', () => {
  let dir: string
  let cleanup: () => Promise<void>
  let server: Server
  let base: string
  const model = buildTinyLlama(tinyLlamaSpecs[0]!)
  const requests: Array<{ url: string, range: string | undefined }> = []
  let cutNext = false

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir())
    server = createServer((req, res) => {
      const range = req.headers.range
      requests.push({ url: req.url ?? '', range })
      if (req.url === '/missing.gguf') { res.writeHead(404).end(); return }
      let start = 0
      const m = /^bytes=(\d+)-$/.exec(range ?? '')
      if (m !== null) start = Number(m[1])
      const body = model.subarray(start)
      res.writeHead(m !== null ? 206 : 200, { 'content-length': String(body.length), ...(m !== null ? { 'content-range': `bytes ${start}-${model.length - 1}/${model.length}` } : {}) })
      if (cutNext) {
        // send a third of the file, then drop the connection
        cutNext = false
        res.write(body.subarray(0, Math.floor(body.length / 3)), () => { setTimeout(() => { res.socket?.destroy() }, 20) })
        return
      }
      res.end(body)
    })
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve))
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  })
  afterAll(async () => {
    server.closeAllConnections()
    await new Promise(resolve => server.close(resolve))
    await cleanup()
  })

  it('downloads with progress, verifies sha256 and lands in the cache', async () => {
    const cache = await ModelCache.open(join(dir, 'p1'))
    const seen: PullProgress[] = []
    const m = await cache.pull(`${base}/tiny.gguf`, { sha256: sha(model), onProgress: p => seen.push(p) })
    expect(m).toMatchObject({ id: sha(model), name: 'tiny', kind: 'llm', format: 'gguf', source: `${base}/tiny.gguf` })
    expect(seen.at(-1)).toMatchObject({ receivedBytes: model.length, totalBytes: model.length })
    expect(seen[0]!.receivedBytes).toBe(0)
    expect(await readdir(join(dir, 'p1', 'partial'))).toEqual([])
  })

  it('resumes an interrupted pull with a Range request', async () => {
    const cache = await ModelCache.open(join(dir, 'p2'))
    const url = `${base}/resume.gguf`
    cutNext = true
    const e = await cache.pull(url).then(() => null, (err: unknown) => err)
    expect(isHeuristError(e, 'INFERENCE_PULL_FAILED')).toBe(true)
    expect((e as Error).message).toMatch(/again to resume/)
    const partial = (await stat(cache.partialPath(url))).size
    expect(partial).toBeGreaterThan(0)
    expect(partial).toBeLessThan(model.length)
    const seen: PullProgress[] = []
    const m = await cache.pull(url, { sha256: sha(model), onProgress: p => seen.push(p) })
    expect(m.id).toBe(sha(model))
    expect(requests.filter(r => r.url === '/resume.gguf').map(r => r.range)).toEqual([undefined, `bytes=${partial}-`])
    expect(seen[0]).toMatchObject({ resumedFromBytes: partial, totalBytes: model.length })
  })

  it('removes the download when the sha256 does not match', async () => {
    const cache = await ModelCache.open(join(dir, 'p3'))
    const url = `${base}/wrong.gguf`
    const e = await cache.pull(url, { sha256: 'ab'.repeat(32) }).then(() => null, (err: unknown) => err)
    expect(isHeuristError(e, 'INFERENCE_CHECKSUM_MISMATCH')).toBe(true)
    expect((e as Error).message).toMatch(/removed/)
    await expect(stat(cache.partialPath(url))).rejects.toThrow()
    expect(await cache.list()).toEqual([])
  })

  it('answers an HTTP error and a bad URL clearly', async () => {
    const cache = await ModelCache.open(join(dir, 'p4'))
    const e = await cache.pull(`${base}/missing.gguf`).then(() => null, (err: unknown) => err)
    expect((e as Error).message).toMatch(/HTTP 404/)
    const u = await cache.pull('ftp://example.com/x').then(() => null, (err: unknown) => err)
    expect(isHeuristError(u, 'INFERENCE_BAD_URL')).toBe(true)
  })
})
