import { writeFile, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { ModelCache, type CachedModel } from './cache.js'
import { buildTinyLlama, tinyEmbedSpec, tinyLlama128kSpec, tinyLlamaSpecs, tinyQuantizedSpecs } from './tiny-llama.js'
import { tinySdBuilders } from './image/tiny-sd.js'
import type { ModelKind } from './types.js'

/**
 * The registry of built-in tiny models. `heurist models make-tiny`, `heurist up` and the tests
 * run every builder here; other kinds (the image pipeline's `tiny-sd`) append theirs.
 */
export interface TinyModelBuilder {
  name: string
  kind: ModelKind
  /** Writes the model into `dir` (deterministically) and returns the path of the file or folder written. */
  build: (dir: string) => Promise<string>
  /** Built only when asked for by name (the quantized siblings, for the quantized cheats). Default false. */
  onDemand?: boolean
}

export const tinyModelBuilders: TinyModelBuilder[] = [...tinyLlamaSpecs, tinyEmbedSpec, ...tinyQuantizedSpecs, tinyLlama128kSpec].map(spec => ({
  name: spec.name,
  kind: 'llm' as const,
  ...(spec.quant !== undefined || spec.vocab === 'bpe128k' ? { onDemand: true } : {}),
  async build (dir: string): Promise<string> {
    const path = join(dir, `${spec.name}.gguf`)
    await writeFile(path, buildTinyLlama(spec))
    return path
  }
}))
tinyModelBuilders.push(...tinySdBuilders)

export interface EnsureTinyOptions {
  /** Rebuild and re-register even when a built-in model of that name is there. Default false. */
  force?: boolean
  /** Only these builders (by name). Default all but the on-demand ones. */
  names?: string[]
  onProgress?: (name: string, done: number, total: number) => void
}

/**
 * Builds the tiny models into the cache at `cacheDir` and registers them under their names.
 * Without `force`, a name already registered as built-in is kept. Safe when several processes
 * do it at once: each builds in its own temp folder, and content lands by atomic rename.
 */
export async function ensureTinyModels (cacheDir: string, options: EnsureTinyOptions = {}): Promise<CachedModel[]> {
  const cache = await ModelCache.open(cacheDir)
  const builders = tinyModelBuilders.filter(b => options.names === undefined ? b.onDemand !== true : options.names.includes(b.name))
  const present = options.force === true ? [] : (await cache.list()).filter(m => m.source === 'builtin')
  const out: CachedModel[] = []
  let done = 0
  for (const b of builders) {
    const have = present.find(m => m.name === b.name)
    if (have !== undefined) {
      out.push(have)
    } else {
      const tmp = await cache.tempDir()
      try {
        const path = await b.build(tmp)
        out.push(await cache.add(path, { name: b.name, kind: b.kind, move: true, source: 'builtin' }))
      } finally {
        await rm(tmp, { recursive: true, force: true })
      }
    }
    options.onProgress?.(b.name, ++done, builders.length)
  }
  return out
}
