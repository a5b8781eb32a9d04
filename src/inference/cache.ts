import { createHash, randomBytes } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { cp, mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { basename, join, relative, resolve, sep } from 'node:path'
import { z } from 'zod'
import { HeuristError, usageError } from '../core/errors.js'
import { looksLikeGguf, readGguf, type GgufInfo } from './gguf.js'
import type { ModelInfo, ModelKind } from './types.js'

/**
 * The model cache: content-addressed by sha256, under the home folder (`models/`).
 *   blobs/<id>        the weights: a file (GGUF, ...) or a folder (an SD ONNX layout)
 *   meta/<id>.json    name, kind, size, source, what `inspect` needs
 *   partial/<h>.part  downloads in progress (h = sha256 of the URL), resumed by `pull`
 *   tmp/              builds and copies before their atomic rename into blobs/
 * A file model's id is the sha256 of the file; a folder model's id is the sha256 of its
 * manifest (see `folderId`). Names resolve to ids; the most recently added entry of a name
 * wins. There is no shared index file: every write is one file renamed into place, so two
 * processes can add models at once.
 */

export interface CachedModel extends ModelInfo {
  /** Absolute path of the weights (file or folder). */
  path: string
  format: 'gguf' | 'file' | 'folder'
  sizeBytes: number
  addedAt: string
  /** URL it was pulled from, or `builtin` for the generated tiny models. */
  source: string
  /** False for a path given directly (not in the cache). */
  cached: boolean
}

const metaSchema = z.object({
  id: z.string().regex(/^[0-9a-f]{64}$/),
  name: z.string().min(1).max(256),
  kind: z.enum(['llm', 'image']),
  contextSize: z.number().int().min(0),
  memoryBytes: z.number().int().min(0),
  format: z.enum(['gguf', 'file', 'folder']),
  sizeBytes: z.number().int().min(0),
  addedAt: z.string().max(64),
  source: z.string().max(4096)
})
type Meta = z.infer<typeof metaSchema>

const NAME = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$/

export interface AddOptions {
  name: string
  kind: ModelKind
  /** Move the source into the cache instead of copying it (it must be on the same filesystem or it is copied). */
  move?: boolean
  source?: string
  /** The file's sha256 when the caller has just computed it (a checked pull): not hashed again. */
  sha256?: string
}

export interface PullProgress {
  receivedBytes: number
  /** null when the server sends no length. */
  totalBytes: number | null
  /** Bytes already on disk from an earlier, interrupted pull. */
  resumedFromBytes: number
}

export interface PullOptions {
  /** Expected sha256 (hex); a mismatch removes the download and throws `INFERENCE_CHECKSUM_MISMATCH`. */
  sha256?: string
  name?: string
  kind?: ModelKind
  onProgress?: (p: PullProgress) => void
  signal?: AbortSignal
  /** Largest download accepted. Default 256 GiB. */
  maxBytes?: number
}

export interface PullFolderOptions extends Pick<PullOptions, 'signal' | 'onProgress' | 'maxBytes'> {
  /** The folder id the manifest must hash to (`folderId` of the folder it lists). */
  id: string
  name: string
}

/** A folder model as a list of files: what an image pod's URI points at. */
export interface FolderManifest { files: Array<{ path: string, size: number, sha256: string }> }

const MAX_MANIFEST_BYTES = 1024 * 1024
/** A relative path of plain segments: no `..`, no leading `/`, no backslashes, no empty segments. */
const SAFE_PATH = /^(?!.*(^|\/)\.{1,2}(\/|$))[A-Za-z0-9._+-]+(\/[A-Za-z0-9._+-]+){0,7}$/
const manifestSchema = z.object({
  files: z.array(z.object({
    path: z.string().max(512).regex(SAFE_PATH, 'a relative path of plain segments'),
    size: z.number().int().min(0).max(2 ** 50),
    sha256: z.string().regex(/^[0-9a-f]{64}$/)
  }).strict()).min(1).max(4096)
}).strict()

/** The folder id a manifest commits to: the `folderId` formula over its (sha256, path) lines. */
export function manifestId (m: FolderManifest): string {
  const files = [...m.files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
  const h = createHash('sha256')
  for (const f of files) h.update(`${f.sha256} ${f.path}\n`)
  return h.digest('hex')
}

/** The manifest of a folder (what a deployer publishes beside the files); its `manifestId` is the folder's `folderId`. */
export async function folderManifest (dir: string): Promise<FolderManifest> {
  const files = (await walk(dir)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
  const out: FolderManifest['files'] = []
  for (const f of files) {
    const p = join(dir, ...f.split('/'))
    out.push({ path: f, size: (await stat(p)).size, sha256: await sha256OfFile(p) })
  }
  return { files: out }
}

async function readBounded (res: Response, max: number): Promise<Uint8Array> {
  const chunks: Uint8Array[] = []
  let n = 0
  if (res.body !== null) {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      n += chunk.length
      if (n > max) throw new HeuristError('INFERENCE_BAD_MANIFEST', `the manifest is over ${max} bytes`)
      chunks.push(chunk)
    }
  }
  return Buffer.concat(chunks)
}

/** sha256 of a file, streamed. */
export async function sha256OfFile (path: string): Promise<string> {
  const h = createHash('sha256')
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer)
  return h.digest('hex')
}

async function walk (root: string, dir = root): Promise<string[]> {
  const out: string[] = []
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name)
    if (e.isDirectory()) out.push(...await walk(root, p))
    else if (e.isFile()) out.push(relative(root, p).split(sep).join('/'))
  }
  return out
}

/**
 * A folder model's id: sha256 over its manifest, one line per file, sorted by relative path
 * (`/`-separated, byte order): `<sha256 of the file> <relative path>\n`.
 */
export async function folderId (dir: string): Promise<string> {
  const files = (await walk(dir)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
  const h = createHash('sha256')
  for (const f of files) h.update(`${await sha256OfFile(join(dir, ...f.split('/')))} ${f}\n`)
  return h.digest('hex')
}

async function sizeOf (path: string): Promise<number> {
  const s = await stat(path)
  if (!s.isDirectory()) return s.size
  let total = 0
  for (const f of await walk(path)) total += (await stat(join(path, ...f.split('/')))).size
  return total
}

async function exists (path: string): Promise<boolean> {
  try { await stat(path); return true } catch { return false }
}

/** Model facts from GGUF metadata, without loading the weights. */
export interface GgufSummary {
  architecture: string
  name: string
  parameters: number
  contextLength: number
  embeddingLength: number
  layers: number
  heads: number
  headsKv: number
  vocabSize: number
  chatTemplate: boolean
  sizeBytes: number
  /** Weights + an f16 KV cache for min(context, 4096) tokens + 10 % for compute buffers. */
  estimatedMemoryBytes: number
}

export function summarizeGguf (g: GgufInfo): GgufSummary {
  const md = g.metadata
  const arch = typeof md['general.architecture'] === 'string' ? md['general.architecture'] : 'unknown'
  const num = (k: string): number => { const v = md[`${arch}.${k}`]; return typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : 0 }
  const tokens = md['tokenizer.ggml.tokens']
  const vocabSize = Array.isArray(tokens) ? tokens.length : tokens !== undefined && typeof tokens === 'object' && 'arrayLength' in tokens ? tokens.arrayLength : num('vocab_size')
  const parameters = g.tensors.reduce((a, t) => a + t.dims.reduce((x, y) => x * y, 1), 0)
  const contextLength = num('context_length')
  const embd = num('embedding_length')
  const layers = num('block_count')
  const heads = num('attention.head_count')
  const headsKv = num('attention.head_count_kv') || heads
  const embdKv = heads > 0 ? embd / heads * headsKv : embd
  const kv = 2 * layers * Math.min(contextLength || 4096, 4096) * embdKv * 2
  return {
    architecture: arch,
    name: typeof md['general.name'] === 'string' ? md['general.name'] : '',
    parameters,
    contextLength,
    embeddingLength: embd,
    layers,
    heads,
    headsKv,
    vocabSize,
    chatTemplate: typeof md['tokenizer.chat_template'] === 'string',
    sizeBytes: g.fileSize,
    estimatedMemoryBytes: Math.round((g.fileSize + kv) * 1.1)
  }
}

export class ModelCache {
  private constructor (readonly dir: string) {}

  /** Opens (creating if needed) the cache in `dir`. */
  static async open (dir: string): Promise<ModelCache> {
    const c = new ModelCache(resolve(dir))
    for (const d of ['blobs', 'meta', 'partial', 'tmp']) await mkdir(join(c.dir, d), { recursive: true })
    return c
  }

  private blob (id: string): string { return join(this.dir, 'blobs', id) }
  private metaPath (id: string): string { return join(this.dir, 'meta', `${id}.json`) }

  /** A fresh folder under tmp/ (same filesystem as blobs/, so a rename from it is atomic). */
  async tempDir (): Promise<string> {
    const d = join(this.dir, 'tmp', `${Date.now()}-${randomBytes(6).toString('hex')}`)
    await mkdir(d, { recursive: true })
    return d
  }

  private async readMeta (file: string): Promise<Meta | null> {
    try {
      const text = await readFile(file, 'utf8')
      if (text.length > 64 * 1024) return null
      const parsed = metaSchema.safeParse(JSON.parse(text))
      return parsed.success ? parsed.data : null
    } catch {
      return null
    }
  }

  private entry (m: Meta): CachedModel {
    return { ...m, path: this.blob(m.id), cached: true }
  }

  /** Every model in the cache, newest first. Entries whose blob is gone are left out. */
  async list (): Promise<CachedModel[]> {
    const out: CachedModel[] = []
    for (const f of await readdir(join(this.dir, 'meta'))) {
      if (!f.endsWith('.json')) continue
      const m = await this.readMeta(join(this.dir, 'meta', f))
      if (m !== null && await exists(this.blob(m.id))) out.push(this.entry(m))
    }
    return out.sort((a, b) => (a.addedAt < b.addedAt ? 1 : a.addedAt > b.addedAt ? -1 : a.name.localeCompare(b.name)))
  }

  /**
   * Finds a model by sha256 id, an id prefix of 8+ hex digits, a name, or a path to a model
   * file or folder outside the cache (hashed on the spot). Unknown → `INFERENCE_UNKNOWN_MODEL`.
   */
  async resolve (ref: string): Promise<CachedModel> {
    if (ref.length === 0 || ref.length > 4096) throw usageError('INFERENCE_UNKNOWN_MODEL', 'empty or overlong model reference')
    const all = await this.list()
    const byName = all.find(m => m.name === ref)
    if (byName !== undefined) return byName
    if (/^[0-9a-f]{8,64}$/.test(ref)) {
      const hits = all.filter(m => m.id.startsWith(ref))
      if (hits.length === 1) return hits[0]!
      if (hits.length > 1) throw usageError('INFERENCE_AMBIGUOUS_MODEL', `model id prefix ${ref} matches ${hits.length} models; give more digits`)
    }
    if (ref.includes('/') || ref.includes(sep) || ref.endsWith('.gguf') || await exists(ref)) {
      if (!await exists(ref)) throw usageError('INFERENCE_UNKNOWN_MODEL', `no model file at ${ref}`)
      return await this.describePath(resolve(ref))
    }
    const names = [...new Set(all.map(m => m.name))].sort()
    throw usageError('INFERENCE_UNKNOWN_MODEL', `unknown model ${JSON.stringify(ref)}; the cache has ${names.length === 0 ? 'no models (run `heurist models make-tiny`)' : names.join(', ')}`, { ref })
  }

  /** Describes a model file or folder outside the cache (not added). */
  async describePath (path: string): Promise<CachedModel> {
    const s = await stat(path)
    if (s.isDirectory()) {
      const size = await sizeOf(path)
      return { id: await folderId(path), name: basename(path), kind: 'image', contextSize: 0, memoryBytes: size, format: 'folder', sizeBytes: size, addedAt: s.mtime.toISOString(), source: path, path, cached: false }
    }
    const facts = await this.facts(path, 'llm')
    return { id: await sha256OfFile(path), name: basename(path).replace(/\.gguf$/i, ''), addedAt: s.mtime.toISOString(), source: path, path, cached: false, ...facts }
  }

  private async facts (path: string, kind: ModelKind): Promise<Pick<Meta, 'kind' | 'contextSize' | 'memoryBytes' | 'format' | 'sizeBytes'>> {
    const s = await stat(path)
    if (s.isDirectory()) { const size = await sizeOf(path); return { kind, contextSize: 0, memoryBytes: size, format: 'folder', sizeBytes: size } }
    if (await looksLikeGguf(path)) {
      const g = summarizeGguf(await readGguf(path))
      return { kind: 'llm', contextSize: Math.min(g.contextLength, 4096), memoryBytes: g.estimatedMemoryBytes, format: 'gguf', sizeBytes: s.size }
    }
    return { kind, contextSize: 0, memoryBytes: s.size, format: 'file', sizeBytes: s.size }
  }

  /**
   * Downloads `url` into its partial file, resuming from the bytes already there with a Range
   * request (a server that ignores it starts over), bounded by `maxBytes`. Returns the path.
   */
  private async download (u: URL, url: string, maxBytes: number, options: Pick<PullOptions, 'signal' | 'onProgress'>): Promise<string> {
    const part = this.partialPath(url)
    let have = (await stat(part).catch(() => null))?.size ?? 0

    let res: Response
    try {
      res = await fetch(u, { headers: have > 0 ? { range: `bytes=${have}-` } : {}, signal: options.signal, redirect: 'follow' })
    } catch (e) {
      throw new HeuristError('INFERENCE_PULL_FAILED', `cannot download ${url}: ${(e as Error).message}`, { cause: e })
    }
    let total: number | null = null
    const len = res.headers.get('content-length')
    if (res.status === 416 && have > 0) {
      // the partial file is already complete
      await res.body?.cancel()
      total = have
    } else if (res.status === 206 || res.status === 200) {
      if (res.status === 200) have = 0 // the server ignored the range: start over
      total = len !== null && /^\d+$/.test(len) ? have + Number(len) : null
      if (total !== null && total > maxBytes) { await res.body?.cancel(); throw new HeuristError('INFERENCE_PULL_TOO_LARGE', `${url} is ${total} bytes, over the limit of ${maxBytes}`) }
      const fh = await open(part, have > 0 ? 'a' : 'w')
      let received = have
      let lastReport = 0
      const report = (force = false): void => {
        const now = Date.now()
        if (!force && now - lastReport < 100) return
        lastReport = now
        options.onProgress?.({ receivedBytes: received, totalBytes: total, resumedFromBytes: have })
      }
      try {
        report(true)
        if (res.body !== null) {
          for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
            received += chunk.length
            if (received > maxBytes) throw new HeuristError('INFERENCE_PULL_TOO_LARGE', `${url} is over the limit of ${maxBytes} bytes`)
            await fh.write(chunk)
            report()
          }
        }
        report(true)
      } catch (e) {
        if (e instanceof HeuristError) throw e
        throw new HeuristError('INFERENCE_PULL_FAILED', `download of ${url} was interrupted at ${received} bytes (run the same pull again to resume): ${(e as Error).message}`, { cause: e })
      } finally {
        await fh.close()
      }
      if (total !== null && received !== total) throw new HeuristError('INFERENCE_PULL_FAILED', `download of ${url} stopped at ${received} of ${total} bytes (run the same pull again to resume)`)
    } else {
      await res.body?.cancel()
      throw new HeuristError('INFERENCE_PULL_FAILED', `cannot download ${url}: HTTP ${res.status}`)
    }
    return part
  }

  /**
   * Pulls a folder model (an image model: text_encoder/, unet/, …) from a manifest URL: a JSON
   * list of files, each with its relative path, size and sha256 (`folderManifest`), fetched
   * relative to the manifest's URL. The manifest must hash to `id` (the folder id, the same
   * formula as `folderId`) before any file is fetched; each file is pulled with resume (its
   * partial bytes stay in partial/ when interrupted) and checked against its sha256; the
   * assembled folder enters the cache by rename.
   */
  async pullFolder (manifestUrl: string, options: PullFolderOptions): Promise<CachedModel> {
    let u: URL
    try { u = new URL(manifestUrl) } catch { throw usageError('INFERENCE_BAD_URL', `not a URL: ${manifestUrl}`) }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw usageError('INFERENCE_BAD_URL', `only http and https URLs can be pulled, got ${u.protocol}`)
    const id = options.id.toLowerCase()
    if (!/^[0-9a-f]{64}$/.test(id)) throw usageError('INFERENCE_BAD_SHA256', `a folder id is 64 hex digits, got ${JSON.stringify(options.id)}`)
    const have = (await this.list()).find(m => m.id === id)
    if (have !== undefined) return have
    const maxBytes = options.maxBytes ?? 256 * 1024 ** 3
    // the manifest: small, bounded, and it must be the one the id commits to
    let text: string
    try {
      const res = await fetch(u, { signal: options.signal, redirect: 'follow' })
      if (res.status !== 200) { await res.body?.cancel(); throw new Error(`HTTP ${res.status}`) }
      const buf = await readBounded(res, MAX_MANIFEST_BYTES)
      text = new TextDecoder().decode(buf)
    } catch (e) {
      if (e instanceof HeuristError) throw e
      throw new HeuristError('INFERENCE_PULL_FAILED', `cannot download the manifest ${manifestUrl}: ${(e as Error).message}`, { cause: e })
    }
    let manifest: FolderManifest
    try {
      const parsed = manifestSchema.safeParse(JSON.parse(text))
      if (!parsed.success) throw new Error(parsed.error.issues[0]?.message ?? 'bad manifest')
      manifest = parsed.data
    } catch (e) {
      throw new HeuristError('INFERENCE_BAD_MANIFEST', `${manifestUrl} is not a folder manifest ({ files: [{ path, size, sha256 }] }): ${(e as Error).message}`)
    }
    const paths = new Set<string>()
    for (const f of manifest.files) {
      if (paths.has(f.path)) throw new HeuristError('INFERENCE_BAD_MANIFEST', `${manifestUrl} lists ${f.path} twice`)
      paths.add(f.path)
    }
    const got = manifestId(manifest)
    if (got !== id) throw new HeuristError('INFERENCE_CHECKSUM_MISMATCH', `the manifest ${manifestUrl} hashes to folder id ${got}, expected ${id}`)
    const total = manifest.files.reduce((a, f) => a + f.size, 0)
    if (total > maxBytes) throw new HeuristError('INFERENCE_PULL_TOO_LARGE', `${manifestUrl} lists ${total} bytes, over the limit of ${maxBytes}`)
    const staging = join(await this.tempDir(), 'folder')
    try {
      for (const f of manifest.files) {
        const fileUrl = new URL(f.path, u)
        const part = await this.download(fileUrl, fileUrl.href, f.size, options)
        const size = (await stat(part)).size
        const sha = await sha256OfFile(part)
        if (size !== f.size || sha !== f.sha256) {
          await rm(part, { force: true })
          throw new HeuristError('INFERENCE_CHECKSUM_MISMATCH', `${fileUrl.href} is ${size} bytes with sha256 ${sha}, the manifest says ${f.size} bytes with ${f.sha256}; the download was removed`)
        }
        const dest = join(staging, ...f.path.split('/'))
        await mkdir(join(dest, '..'), { recursive: true })
        await rename(part, dest)
      }
      return await this.add(staging, { name: options.name, kind: 'image', move: true, source: manifestUrl })
    } finally {
      await rm(staging, { recursive: true, force: true })
    }
  }

  /** Adds a file or folder under a name (copy, or move with `move`). Adding the same content again only updates its name. */
  async add (path: string, options: AddOptions): Promise<CachedModel> {
    if (!NAME.test(options.name)) throw usageError('INFERENCE_BAD_MODEL_NAME', `model name ${JSON.stringify(options.name)}: letters, digits, . _ + - (at most 128, not starting with a symbol)`)
    const src = resolve(path)
    const s = await stat(src).catch(() => null)
    if (s === null) throw usageError('INFERENCE_UNKNOWN_MODEL', `no file or folder at ${path}`)
    const facts = await this.facts(src, options.kind)
    const id = s.isDirectory() ? await folderId(src) : options.sha256 ?? await sha256OfFile(src)
    const dest = this.blob(id)
    if (await exists(dest)) {
      if (options.move === true) await rm(src, { recursive: true, force: true })
    } else {
      let staged = src
      if (options.move !== true) {
        staged = join(await this.tempDir(), 'blob')
        await cp(src, staged, { recursive: true })
      }
      try {
        await rename(staged, dest)
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code
        if (code === 'EXDEV') {
          const t = join(await this.tempDir(), 'blob')
          await cp(staged, t, { recursive: true })
          await rename(t, dest)
          await rm(staged, { recursive: true, force: true })
        } else if ((code === 'ENOTEMPTY' || code === 'EEXIST') && await exists(dest)) {
          await rm(staged, { recursive: true, force: true }) // another process added the same content
        } else {
          throw e
        }
      }
    }
    const meta: Meta = { id, name: options.name, ...facts, kind: facts.format === 'gguf' ? 'llm' : options.kind, addedAt: new Date().toISOString(), source: options.source ?? src }
    await this.writeMeta(meta)
    return this.entry(meta)
  }

  private async writeMeta (meta: Meta): Promise<void> {
    const t = join(this.dir, 'tmp', `${meta.id}.${randomBytes(6).toString('hex')}.json`)
    await writeFile(t, JSON.stringify(meta, null, 2) + '\n')
    await rename(t, this.metaPath(meta.id))
  }

  /** Removes a model (by id, id prefix or name). */
  async remove (ref: string): Promise<CachedModel> {
    const m = await this.resolve(ref)
    if (!m.cached) throw usageError('INFERENCE_UNKNOWN_MODEL', `${ref} is not in the cache`)
    await rm(this.metaPath(m.id), { force: true })
    await rm(m.path, { recursive: true, force: true })
    return m
  }

  /** The partial-download file for a URL. */
  partialPath (url: string): string {
    return join(this.dir, 'partial', createHash('sha256').update(url).digest('hex') + '.part')
  }

  /**
   * Downloads a model file over HTTP(S) into the cache. An interrupted pull leaves its bytes in
   * partial/ and the next pull of the same URL resumes with a Range request. With `sha256`
   * the finished file is checked; a mismatch removes it. The file enters blobs/ by rename.
   */
  async pull (url: string, options: PullOptions = {}): Promise<CachedModel> {
    let u: URL
    try { u = new URL(url) } catch { throw usageError('INFERENCE_BAD_URL', `not a URL: ${url}`) }
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw usageError('INFERENCE_BAD_URL', `only http and https URLs can be pulled, got ${u.protocol}`)
    const expected = options.sha256?.toLowerCase()
    if (expected !== undefined && !/^[0-9a-f]{64}$/.test(expected)) throw usageError('INFERENCE_BAD_SHA256', `--sha256 must be 64 hex digits, got ${JSON.stringify(options.sha256)}`)
    const maxBytes = options.maxBytes ?? 256 * 1024 ** 3
    const name = options.name ?? (basename(u.pathname).replace(/\.[A-Za-z0-9]+$/, '') || 'model')
    const part = await this.download(u, url, maxBytes, options)
    if (expected !== undefined) {
      const got = await sha256OfFile(part)
      if (got !== expected) {
        await rm(part, { force: true })
        throw new HeuristError('INFERENCE_CHECKSUM_MISMATCH', `sha256 of ${url} is ${got}, expected ${expected}; the download was removed`)
      }
    }
    if (!await looksLikeGguf(part) && options.kind === undefined) {
      // keep the bytes so that a pull with --kind can reuse them
      throw usageError('INFERENCE_UNKNOWN_FORMAT', `${url} is not a GGUF file; say what it is with a kind`)
    }
    if (await looksLikeGguf(part)) await readGguf(part).catch(async (e: unknown) => { await rm(part, { force: true }); throw e })
    return await this.add(part, { name, kind: options.kind ?? 'llm', move: true, source: url, sha256: expected })
  }
}
