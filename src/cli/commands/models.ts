import { Command, Option } from 'commander'
import { loadContext, type CommandContext } from '../context.js'
import { usageError } from '../../core/errors.js'
import { stat, writeFile } from 'node:fs/promises'
import { ModelCache, ensureTinyModels, folderManifest, manifestId, readGguf, summarizeGguf, looksLikeGguf, type CachedModel, type PullProgress } from '../../inference/index.js'

function fmtBytes (n: number): string {
  if (n < 1024) return `${n} B`
  const units = ['KiB', 'MiB', 'GiB', 'TiB']
  let v = n / 1024
  let i = 0
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++ }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`
}

function row (m: CachedModel): Record<string, unknown> {
  return { id: m.id, name: m.name, kind: m.kind, format: m.format, sizeBytes: m.sizeBytes, contextSize: m.contextSize, memoryBytes: m.memoryBytes, source: m.source, addedAt: m.addedAt, path: m.path }
}

function table (models: CachedModel[]): string {
  if (models.length === 0) return 'no models in the cache (run `heurist models make-tiny` or `heurist models pull <url>`)'
  const lines = [`${'NAME'.padEnd(16)} ${'ID'.padEnd(12)} ${'KIND'.padEnd(5)} ${'SIZE'.padStart(9)}  SOURCE`]
  for (const m of models) lines.push(`${m.name.padEnd(16)} ${m.id.slice(0, 12)} ${m.kind.padEnd(5)} ${fmtBytes(m.sizeBytes).padStart(9)}  ${m.source}`)
  return lines.join('\n')
}

/** Progress for long downloads: a redrawn bar on a TTY, a plain line every 10 % (or 5 s) otherwise. */
function progressPrinter (stream: NodeJS.WriteStream): { update: (p: PullProgress) => void, done: () => void } {
  const tty = stream.isTTY === true
  let lastPct = -10
  let lastAt = 0
  let drew = false
  return {
    update (p) {
      const pct = p.totalBytes !== null && p.totalBytes > 0 ? Math.floor(p.receivedBytes / p.totalBytes * 100) : null
      const size = `${fmtBytes(p.receivedBytes)}${p.totalBytes !== null ? ` / ${fmtBytes(p.totalBytes)}` : ''}${p.resumedFromBytes > 0 ? ` (resumed at ${fmtBytes(p.resumedFromBytes)})` : ''}`
      if (tty) {
        const width = 30
        const filled = pct === null ? 0 : Math.round(pct / 100 * width)
        stream.write(`\r[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${pct === null ? '  ?' : String(pct).padStart(3)}% ${size}   `)
        drew = true
        return
      }
      const now = Date.now()
      if ((pct !== null && pct >= lastPct + 10) || now - lastAt > 5000 || (pct === 100 && lastPct !== 100)) {
        lastPct = pct ?? lastPct
        lastAt = now
        stream.write(`pull: ${pct === null ? '' : `${pct}% `}${size}\n`)
      }
    },
    // idempotent: called after a pull and again on the way out
    done () { if (tty && drew) { stream.write('\n'); drew = false } }
  }
}

async function cacheOf (ctx: CommandContext): Promise<ModelCache> {
  return await ModelCache.open(ctx.paths.models)
}

export function registerModels (program: Command): void {
  const models = program.command('models').description('the model cache: list, pull, remove, inspect, make the built-in tiny models')

  models.command('list')
    .description('models in the cache (name, sha256 id, kind, size, source)')
    .action(async (_opts: unknown, cmd: Command) => {
      const ctx = await loadContext(cmd)
      const list = await (await cacheOf(ctx)).list()
      ctx.print({ models: list.map(row) }, () => table(list))
    })

  models.command('make-tiny')
    .description('generate the built-in tiny models (deterministic, from a seed) into the cache')
    .action(async (_opts: unknown, cmd: Command) => {
      const ctx = await loadContext(cmd)
      const made = await ensureTinyModels(ctx.paths.models, {
        force: true,
        onProgress: (name, done, total) => { if (!ctx.json && process.stderr.isTTY === true) process.stderr.write(`made ${name} (${done}/${total})\n`) }
      })
      ctx.print({ models: made.map(row) }, () => table(made))
    })

  models.command('pull')
    .description('download a model over HTTP(S) into the cache (resumes, verifies --sha256)')
    .argument('<url>', 'http(s) URL of a GGUF file (or another file with --kind)')
    .option('--sha256 <hex>', 'expected sha256 of the file; a mismatch removes the download (exit 1)')
    .option('--name <name>', 'name in the cache (default: the URL\'s file name)')
    .addOption(new Option('--kind <kind>', 'model kind when the file is not GGUF').choices(['llm', 'image']))
    .action(async (url: string, opts: { sha256?: string, name?: string, kind?: 'llm' | 'image' }, cmd: Command) => {
      const ctx = await loadContext(cmd)
      const cache = await cacheOf(ctx)
      const progress = progressPrinter(process.stderr)
      const ac = new AbortController()
      const onSignal = (): void => { ac.abort() }
      process.once('SIGINT', onSignal)
      try {
        const m = await cache.pull(url, { sha256: opts.sha256, name: opts.name, kind: opts.kind, signal: ac.signal, onProgress: p => { progress.update(p) } })
        progress.done()
        ctx.print(row(m), r => `pulled ${r.name} ${r.id} (${fmtBytes(r.sizeBytes)})`)
      } finally {
        progress.done()
        process.off('SIGINT', onSignal)
      }
    })

  models.command('rm')
    .description('remove a model from the cache')
    .argument('<ref>', 'name, sha256 id or id prefix')
    .action(async (ref: string, _opts: unknown, cmd: Command) => {
      const ctx = await loadContext(cmd)
      const m = await (await cacheOf(ctx)).remove(ref)
      ctx.print({ removed: m.id, name: m.name }, r => `removed ${r.name} ${r.removed}`)
    })

  models.command('manifest')
    .description('write the manifest of a model folder (an image model): each file with its size and sha256, for publishing it as an image pod')
    .argument('<dir>', 'the model folder (text_encoder/, unet/, vae_decoder/, tokenizer/)')
    .option('--out <file>', 'write the manifest to this file (default: print it)')
    .action(async (dir: string, opts: { out?: string }, cmd: Command) => {
      const ctx = await loadContext(cmd)
      const s = await stat(dir).catch(() => null)
      if (s === null || !s.isDirectory()) throw usageError('INFERENCE_UNKNOWN_MODEL', `${dir} is not a folder`)
      const manifest = await folderManifest(dir)
      if (manifest.files.length > 4096) throw usageError('INFERENCE_BAD_MANIFEST', `${dir} has ${manifest.files.length} files, over the 4096 a manifest may list`)
      const id = manifestId(manifest)
      if (opts.out !== undefined) await writeFile(opts.out, JSON.stringify(manifest, null, 2) + '\n')
      // the pod id is the folder id; publish the files beside the manifest, at their paths relative to it
      ctx.print({ id, files: manifest.files.length, sizeBytes: manifest.files.reduce((a, f) => a + f.size, 0), ...(opts.out === undefined ? { manifest } : { out: opts.out }) },
        r => opts.out === undefined ? JSON.stringify(manifest, null, 2) : `folder id ${String(r.id)} (${String(r.files)} files); manifest written to ${opts.out}\npublish the files beside it at their relative paths, then: heurist pod deploy --kind image --sha256 ${String(r.id)} --model <manifest URL>`)
    })

  models.command('inspect')
    .description('read a model\'s metadata (architecture, parameters, context, estimated memory) without loading the weights')
    .argument('<ref>', 'name, sha256 id, or a path to a model file')
    .action(async (ref: string, _opts: unknown, cmd: Command) => {
      const ctx = await loadContext(cmd)
      const m = await (await cacheOf(ctx)).resolve(ref)
      if (m.format === 'folder' || !await looksLikeGguf(m.path)) {
        if (m.format !== 'folder') throw usageError('INFERENCE_BAD_GGUF', `${m.path} is not a GGUF file (wrong magic)`)
        ctx.print(row(m), r => `${r.name} ${r.id}\nkind ${r.kind}, folder of ${fmtBytes(r.sizeBytes)}`)
        return
      }
      const s = summarizeGguf(await readGguf(m.path))
      const out = { ...s, id: m.id, name: m.name, ggufName: s.name, path: m.path }
      ctx.print(out, () => [
        `${m.name}  ${m.id}`,
        `architecture   ${s.architecture}`,
        `parameters     ${s.parameters.toLocaleString('en-US')}`,
        `context        ${s.contextLength} tokens`,
        `layers         ${s.layers} (embedding ${s.embeddingLength}, heads ${s.heads}/${s.headsKv} kv)`,
        `vocabulary     ${s.vocabSize} tokens${s.chatTemplate ? ', chat template' : ''}`,
        `file           ${fmtBytes(s.sizeBytes)}`,
        `memory (est.)  ${fmtBytes(s.estimatedMemoryBytes)}`
      ].join('\n'))
    })
}
