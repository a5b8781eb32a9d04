import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { writeFile, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { buildTinyLlama, tinyLlamaSpecs, readGguf, summarizeGguf, tinyVocabulary, encodeGguf, GgufType } from '../../src/inference/index.js'
import { isHeuristError } from '../../src/core/errors.js'
import { tempDir } from '../helpers.js'

describe('GGUF writer and tiny llama models (no llama.cpp)', () => {
  let dir: string
  let cleanup: () => Promise<void>
  beforeAll(async () => { ({ dir, cleanup } = await tempDir()) })
  afterAll(async () => { await cleanup() })

  it('builds the same bytes from the same spec, and different models from different specs', () => {
    const a1 = buildTinyLlama(tinyLlamaSpecs[0]!)
    const a2 = buildTinyLlama(tinyLlamaSpecs[0]!)
    const b = buildTinyLlama(tinyLlamaSpecs[1]!)
    expect(a1.equals(a2)).toBe(true)
    expect(a1.equals(b)).toBe(false)
    expect(tinyLlamaSpecs.map(s => s.name)).toEqual(expect.arrayContaining(['tiny-llama', 'tiny-llama-b']))
  })

  it('writes what llama.cpp needs: byte tokens <0x0A> of type 6, [n_embd, n_vocab] embeddings, 32-byte aligned data', async () => {
    const path = join(dir, 'a.gguf')
    await writeFile(path, buildTinyLlama(tinyLlamaSpecs[0]!))
    const g = await readGguf(path)
    const tokens = g.metadata['tokenizer.ggml.tokens'] as string[]
    const types = g.metadata['tokenizer.ggml.token_type'] as number[]
    const nl = tokens.indexOf('<0x0A>')
    expect(nl).toBeGreaterThan(0)
    expect(types[nl]).toBe(6)
    expect(tokens).toContain('<0xFF>')
    expect(g.metadata['general.architecture']).toBe('llama')
    expect(typeof g.metadata['tokenizer.chat_template']).toBe('string')
    const embd = g.tensors.find(t => t.name === 'token_embd.weight')!
    expect(embd.dims).toEqual([64, tokens.length])
    expect(g.dataOffset % 32).toBe(0)
    for (const t of g.tensors) expect(t.offset % 32).toBe(0)
    const s = summarizeGguf(g)
    expect(s).toMatchObject({ architecture: 'llama', contextLength: 1024, embeddingLength: 64, layers: 2, vocabSize: tinyVocabulary().tokens.length, chatTemplate: true })
    expect(s.parameters).toBeGreaterThan(50_000)
    expect(s.estimatedMemoryBytes).toBeGreaterThan(s.sizeBytes)
  })

  it('rejects a truncated file, a wrong magic and absurd counts with INFERENCE_BAD_GGUF', async () => {
    const full = await readFile(join(dir, 'a.gguf'))
    const cases: Array<[string, Buffer, RegExp]> = [
      ['trunc-data.gguf', full.subarray(0, full.length - 1000), /truncated/],
      ['trunc-header.gguf', full.subarray(0, 100), /truncated/],
      ['magic.gguf', Buffer.concat([Buffer.from('GGML'), full.subarray(4)]), /wrong magic/],
      ['tiny.gguf', Buffer.from('GGUF'), /only 4 bytes/]
    ]
    const huge = Buffer.from(full)
    huge.writeBigUInt64LE(2n ** 60n, 8) // tensor count
    cases.push(['huge.gguf', huge, /exceeds the limit/])
    for (const [name, bytes, why] of cases) {
      const p = join(dir, name)
      await writeFile(p, bytes)
      const e = await readGguf(p).then(() => null, (err: unknown) => err)
      expect(isHeuristError(e, 'INFERENCE_BAD_GGUF'), name).toBe(true)
      expect((e as Error).message, name).toMatch(why)
    }
  })

  it('round-trips metadata of every scalar type', async () => {
    const buf = encodeGguf([
      ['a.u32', { type: GgufType.UINT32, value: 7 }],
      ['a.f32', { type: GgufType.FLOAT32, value: 0.5 }],
      ['a.bool', { type: GgufType.BOOL, value: true }],
      ['a.str', { type: GgufType.STRING, value: 'héllo' }],
      ['a.u64', { type: GgufType.UINT64, value: 2n ** 40n }],
      ['a.arr', { type: GgufType.ARRAY, itemType: GgufType.INT32, value: [1, -2, 3] }]
    ], [{ name: 't', dims: [2, 3], data: new Float32Array(6) }])
    const p = join(dir, 'meta.gguf')
    await writeFile(p, buf)
    const g = await readGguf(p)
    expect(g.metadata).toMatchObject({ 'a.u32': 7, 'a.f32': 0.5, 'a.bool': true, 'a.str': 'héllo', 'a.u64': 2n ** 40n, 'a.arr': [1, -2, 3] })
    expect(g.tensors).toEqual([{ name: 't', dims: [2, 3], type: 0, offset: 0 }])
  })
})
