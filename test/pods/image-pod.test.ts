import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import OpenAI from 'openai'
import sharp from 'sharp'
import { buildTinySd, folderId, folderManifest, manifestId, ModelCache, pixelSha256 } from '../../src/inference/index.js'
import { deployPod } from '../../src/pods/index.js'
import { isHeuristError } from '../../src/core/errors.js'
import { tempDir } from '../helpers.js'
import { until } from '../p2p/util.js'
import { startPodNet, hostsOf, weightsServer, type PodNet } from './fixture.js'

/**
 * Image pods on real parts: a tiny SD folder published as a manifest of files (each with its
 * sha256) over HTTP on 127.0.0.1, the pod on the EDR devnet's PodRegistry, miners that pull
 * the folder and load it into onnxruntime when the gateway reports demand, and the gateway's
 * OpenAI images endpoint.
 */
async function publish (w: { put: (p: string, b: Buffer) => void, url: (p: string) => string }, dir: string, at: string): Promise<{ id: string, url: string }> {
  const manifest = await folderManifest(dir)
  for (const f of manifest.files) w.put(`${at}/${f.path}`, await readFile(join(dir, ...f.path.split('/'))))
  w.put(`${at}/manifest.json`, Buffer.from(JSON.stringify(manifest)))
  return { id: manifestId(manifest), url: w.url(`${at}/manifest.json`) }
}

describe('folder manifests: pulled file by file, each checked, the folder id committed by the manifest', () => {
  it('pulls a folder whose manifest hashes to the id, resumes a file cut short, and refuses a wrong file or a manifest for another id', async () => {
    const t = await tempDir('heurist-folder-pull-')
    const w = await weightsServer()
    try {
      const src = await buildTinySd(join(t.dir, 'src'), { seed: 21, externalData: true })
      const { id, url } = await publish(w, src, '/sd')
      expect(id).toBe(await folderId(src))
      const cache = await ModelCache.open(join(t.dir, 'cache'))
      // the manifest for another id is refused before any file is fetched
      const other = await cache.pullFolder(url, { id: 'ab'.repeat(32), name: 'x' }).then(() => null, (e: unknown) => e)
      expect(isHeuristError(other) && other.code).toBe('INFERENCE_CHECKSUM_MISMATCH')
      expect(w.hits.get('/sd/unet/model.onnx_data')).toBeUndefined()
      // a file that is not the one the manifest names: refused, named, removed
      const unet = await readFile(join(src, 'unet', 'model.onnx_data'))
      w.put('/sd/unet/model.onnx_data', Buffer.from(unet.map(b => b ^ 1)))
      const bad = await cache.pullFolder(url, { id, name: 'sd' }).then(() => null, (e: unknown) => e)
      expect(isHeuristError(bad) && bad.code).toBe('INFERENCE_CHECKSUM_MISMATCH')
      expect((bad as Error).message).toContain('unet/model.onnx_data')
      w.put('/sd/unet/model.onnx_data', unet)
      // half of a file already there (an interrupted pull): the next pull resumes it with a Range request
      const fileUrl = w.url('/sd/unet/model.onnx_data')
      const { writeFile } = await import('node:fs/promises')
      await writeFile(cache.partialPath(fileUrl), unet.subarray(0, unet.length >> 1))
      const got = await cache.pullFolder(url, { id, name: 'sd' })
      expect(got).toMatchObject({ id, kind: 'image', format: 'folder' })
      expect(await folderId(got.path)).toBe(id)
      expect(await readFile(join(got.path, 'unet', 'model.onnx_data'))).toEqual(unet)
      expect(w.ranges).toEqual([{ path: '/sd/unet/model.onnx_data', from: unet.length >> 1 }])
      // a path that climbs out of the folder is not a manifest
      w.put('/evil/manifest.json', Buffer.from(JSON.stringify({ files: [{ path: '../x', size: 1, sha256: 'ab'.repeat(32) }] })))
      const evil = await cache.pullFolder(w.url('/evil/manifest.json'), { id: 'cd'.repeat(32), name: 'e' }).then(() => null, (e: unknown) => e)
      expect(isHeuristError(evil) && evil.code).toBe('INFERENCE_BAD_MANIFEST')
    } finally {
      await w.close()
      await t.cleanup()
    }
  })
})

describe('an image pod: deployed, pulled and served', () => {
  let net: PodNet
  let cleanup: () => Promise<void>

  beforeAll(async () => {
    const t = await tempDir('heurist-image-pod-')
    cleanup = t.cleanup
    net = await startPodNet(t.dir, { miners: 2 })
  }, 120_000)
  afterAll(async () => {
    await net?.stop()
    await cleanup?.()
  })

  it('a request for the pod makes a miner pull the folder and load it; the image comes back and matches a local run', async () => {
    const t = await tempDir('heurist-image-pod-src-')
    try {
      const src = await buildTinySd(join(t.dir, 'sd'), { seed: 33 })
      const { id, url } = await publish(net.weights, src, '/pods/sd33')
      const deployer = net.devnet.accounts[6]!
      await deployPod(await net.chainOf(deployer), { sha256: id, kind: 'image', minVramMb: 0, revenueBps: 1000, name: 'sd-pod', uri: url })
      for (const m of net.miners) await m.host.directory.refresh()
      await net.gatewayDirectory.refresh()
      expect(hostsOf(net, id)).toHaveLength(0)

      const { apiKey } = await net.gateway.accounts.create(10n ** 17n)
      const client = new OpenAI({ apiKey, baseURL: `${net.gateway.gateway.url}/v1`, maxRetries: 0, timeout: 90_000 })
      const r = await client.images.generate({ model: 'sd-pod', prompt: 'a red square', size: '64x64', response_format: 'b64_json', seed: 5, steps: 3 } as never)
      const png = Buffer.from(r.data![0]!.b64_json!, 'base64')
      const raw = await sharp(png).removeAlpha().raw().toBuffer({ resolveWithObject: true })
      expect(raw.info.width).toBe(64)

      const hosts = hostsOf(net, id)
      expect(hosts.length).toBeGreaterThanOrEqual(1)
      expect(hosts[0]!.host.manager.models().find(m => m.id === id)?.kind).toBe('image')
      // every file was pulled by each miner that pulled the pod, the manifest once each
      const pulled = net.miners.filter(m => m.host.manager.events.some(e => e.pod === id && e.event === 'pulling')).length
      expect(net.weights.hits.get('/pods/sd33/manifest.json')).toBe(pulled)
      expect(net.weights.hits.get('/pods/sd33/unet/model.onnx')).toBe(pulled)

      // the same pixels as this folder run locally with the same request (1 thread both)
      const { createImageEngine } = await import('../../src/inference/index.js')
      const local = createImageEngine({ threads: 1, executionProvider: 'cpu' })
      try {
        const m = await local.load(src)
        const g = await m.generate({ modelId: m.info.id, prompt: 'a red square', negativePrompt: '', width: 64, height: 64, steps: 3, guidanceScale: 7.5, seed: 5, scheduler: 'euler' })
        expect(pixelSha256(new Uint8Array(raw.data))).toBe(g.pixelSha256)
      } finally {
        await local.dispose()
      }
      expect(await until(() => net.gateway.node.peerTable.miners(id).length >= 1, 10_000, 100)).toBe(true)
    } finally {
      await t.cleanup()
    }
  }, 150_000)
})
