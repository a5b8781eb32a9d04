import { describe, it, expect, beforeAll, afterAll } from 'vitest'
import { writeFile, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import {
  buildTinyLlama, tinyLlamaSpecs, tinyQuantizedSpecs, readGguf, readGgufTensor, encodeGguf, dequantize, quantizeQ8_0, quantizeQ4_0,
  fp32ToFp16, fp16ToFp32, createLlamaEngine, GGML_TYPE_F32, GGML_TYPE_Q8_0, GGML_TYPE_Q4_0, type GgufInfo, type LlamaEngine, type RawDistribution
} from '../../src/inference/index.js'
import { isHeuristError } from '../../src/core/errors.js'
import { tempDir } from '../helpers.js'

// The ggml block formats, written out here from ggml's definitions (block_q8_0, block_q4_0).
const QK = 32
const Q8_BLOCK = 2 + QK // fp16 d, 32 int8
const Q4_BLOCK = 2 + QK / 2 // fp16 d, 16 bytes of nibbles
const align32 = (n: number): number => Math.ceil(n / 32) * 32

const spec = tinyLlamaSpecs.find(s => s.name === 'tiny-llama')!
const q8 = tinyQuantizedSpecs.find(s => s.name === 'tiny-llama-q8')!
const q4 = tinyQuantizedSpecs.find(s => s.name === 'tiny-llama-q4')!

describe('GGUF Q8_0 and Q4_0 (no llama.cpp)', () => {
  let dir: string
  let cleanup: () => Promise<void>
  const paths: Record<string, string> = {}
  const infos: Record<string, GgufInfo> = {}
  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir())
    for (const s of [spec, q8, q4]) {
      paths[s.name] = join(dir, `${s.name}.gguf`)
      await writeFile(paths[s.name]!, buildTinyLlama(s))
      infos[s.name] = await readGguf(paths[s.name]!)
    }
  })
  afterAll(async () => { await cleanup() })

  it('converts to fp16 with round-to-nearest-even, as ggml does', () => {
    expect(fp32ToFp16(1)).toBe(0x3c00)
    expect(fp32ToFp16(2)).toBe(0x4000)
    expect(fp32ToFp16(-0.5)).toBe(0xb800)
    expect(fp32ToFp16(65504)).toBe(0x7bff)
    expect(fp32ToFp16(1e6)).toBe(0x7c00)
    expect(fp32ToFp16(2 ** -24)).toBe(0x0001)
    expect(fp32ToFp16(1 + 2 ** -11)).toBe(0x3c00) // a tie: to the even mantissa
    expect(fp32ToFp16(1 + 3 * 2 ** -11)).toBe(0x3c02) // a tie: to the even mantissa, up
    expect(fp16ToFp32(0x3c01)).toBe(1 + 2 ** -10)
    expect(fp16ToFp32(0x0001)).toBe(2 ** -24)
  })

  it('lays out a Q8_0 block as fp16 d = max|x|/127, then round(x/d) as int8', () => {
    const x = Float32Array.from({ length: QK }, (_, j) => j - 12.7)
    const b = quantizeQ8_0(x)
    expect(b.length).toBe(Q8_BLOCK)
    const d = Math.fround(x[31]! / 127) // 31 - 12.7 is the largest magnitude
    expect(b.readUInt16LE(0)).toBe(fp32ToFp16(d))
    for (let j = 0; j < QK; j++) expect(b.readInt8(2 + j)).toBe(Math.round((j - 12.7) / d))
  })

  it('lays out a Q4_0 block as fp16 d = (largest by magnitude)/-8, low nibbles elements 0..15, high nibbles 16..31', () => {
    const x = Float32Array.from({ length: QK }, (_, j) => j - 16) // -16 is the largest: d = 2
    const b = quantizeQ4_0(x)
    expect(b.length).toBe(Q4_BLOCK)
    expect(b.readUInt16LE(0)).toBe(0x4000) // 2.0
    for (let j = 0; j < 16; j++) {
      const lo = Math.min(15, Math.max(0, Math.floor((j - 16) / 2 + 8.5)))
      const hi = Math.min(15, Math.max(0, Math.floor(j / 2 + 8.5)))
      expect(b[2 + j], `byte ${j}`).toBe(lo | (hi << 4))
    }
    const back = dequantize(GGML_TYPE_Q4_0, b, QK)
    expect(back[0]).toBe(-16)
    expect(back[31]).toBe(14) // 15 is past the grid's top, 7·d
  })

  it('writes quantized 2-D matrices (norms stay F32), and files of exactly the size the block formats give', async () => {
    const f32 = infos['tiny-llama']!
    for (const [s, type, block] of [[q8, GGML_TYPE_Q8_0, Q8_BLOCK], [q4, GGML_TYPE_Q4_0, Q4_BLOCK]] as const) {
      const g = infos[s.name]!
      const bytes = await readFile(paths[s.name]!)
      expect(g.metadata['general.file_type']).toBe(type === GGML_TYPE_Q8_0 ? 7 : 2)
      let data = 0
      for (const t of g.tensors) {
        const n = t.dims.reduce((a, c) => a * c, 1)
        const quantized = t.dims.length === 2 && t.dims[0]! % QK === 0
        expect(t.type, t.name).toBe(quantized ? type : GGML_TYPE_F32)
        if (t.name.endsWith('norm.weight')) expect(t.type).toBe(GGML_TYPE_F32)
        expect(t.offset, t.name).toBe(data)
        data += align32(quantized ? (n / QK) * block : n * 4)
      }
      expect(g.tensors.filter(t => t.type === type).length).toBe(2 + 7 * s.layers)
      // the header is the F32 file's (same keys, same value sizes), so the data starts at the same place
      expect(g.dataOffset).toBe(f32.dataOffset)
      expect(bytes.length).toBe(f32.dataOffset + data)
    }
  })

  it('dequantizes every weight to within half a quantization step of the original', async () => {
    for (const [s, type, maxQ] of [[q8, GGML_TYPE_Q8_0, 127], [q4, GGML_TYPE_Q4_0, 8]] as const) {
      const g = infos[s.name]!
      const raw = await readFile(paths[s.name]!)
      let checked = 0
      for (const t of g.tensors) {
        const orig = await readGgufTensor(paths['tiny-llama']!, infos['tiny-llama']!, t.name)
        const back = await readGgufTensor(paths[s.name]!, g, t.name)
        expect(back.length).toBe(orig.length)
        if (t.type === GGML_TYPE_F32) { expect(back).toEqual(orig); continue }
        expect(t.type).toBe(type)
        const block = type === GGML_TYPE_Q8_0 ? Q8_BLOCK : Q4_BLOCK
        for (let i = 0; i < orig.length / QK; i++) {
          // the step is the stored fp16 scale; ggml quantizes with the float32 scale, which
          // fp16 rounds by at most 2^-11 relative: that, times the largest |q|, is added
          const d = fp16ToFp32(raw.readUInt16LE(g.dataOffset + t.offset + i * block))
          const step = Math.abs(d)
          const slack = step * 2 ** -11 * maxQ * 1.0001 + 1e-7
          for (let j = 0; j < QK; j++) {
            const x = orig[i * QK + j]!
            const err = Math.abs(back[i * QK + j]! - x)
            // Q4_0's grid is -8d..7d: a weight past 7.5 d (the far end from the block's
            // largest) is clipped to 7d, within one step
            const clipped = type === GGML_TYPE_Q4_0 && d !== 0 && x / d > 7.5
            const bound = (clipped ? Math.abs(x - 7 * d) : step / 2) + slack
            expect(err, `${s.name} ${t.name}[${i * QK + j}]`).toBeLessThanOrEqual(bound)
            checked++
          }
        }
      }
      expect(checked).toBeGreaterThan(50_000)
    }
  })

  it('refuses odd-sized and truncated quantized tensors with typed errors', async () => {
    const row48 = encodeErr(() => encodeGguf([], [{ name: 'w', dims: [48, 2], data: new Float32Array(96), type: GGML_TYPE_Q8_0 }]))
    expect(isHeuristError(row48, 'INFERENCE_GGUF_WRITE')).toBe(true)
    expect(encodeErr(() => quantizeQ4_0(new Float32Array(33)))).toSatisfy((e: unknown) => isHeuristError(e, 'INFERENCE_GGUF_WRITE'))
    expect(encodeErr(() => dequantize(GGML_TYPE_Q8_0, new Uint8Array(Q8_BLOCK - 1), QK))).toSatisfy((e: unknown) => isHeuristError(e, 'INFERENCE_BAD_GGUF'))
    expect(encodeErr(() => dequantize(GGML_TYPE_Q4_0, new Uint8Array(Q4_BLOCK * 2), 33))).toSatisfy((e: unknown) => isHeuristError(e, 'INFERENCE_BAD_GGUF'))
    expect(encodeErr(() => dequantize(12, new Uint8Array(1000), 256))).toSatisfy((e: unknown) => isHeuristError(e, 'INFERENCE_GGUF_TYPE'))
    // a file cut inside the last quantized tensor: the reader refuses it
    const full = await readFile(paths[q4.name]!)
    const cut = join(dir, 'cut.gguf')
    await writeFile(cut, full.subarray(0, full.length - 40))
    const e = await readGguf(cut).then(() => null, (err: unknown) => err)
    expect(isHeuristError(e, 'INFERENCE_BAD_GGUF')).toBe(true)
  })
})

function encodeErr (f: () => unknown): unknown {
  try { f() } catch (e) { return e }
  return null
}

// Real llama.cpp, one thread: it loads the quantized files and generates from them.
describe('quantized tiny models in llama.cpp', () => {
  let cleanup: () => Promise<void>
  let engine: LlamaEngine
  const ids: Record<string, string> = {}
  beforeAll(async () => {
    const d = await tempDir()
    cleanup = d.cleanup
    engine = createLlamaEngine({ gpu: 'cpu', threads: 1, parallel: 1, maxQueue: 8 })
    for (const s of [spec, q8, q4]) {
      const path = join(d.dir, `${s.name}.gguf`)
      await writeFile(path, buildTinyLlama(s))
      ids[s.name] = (await engine.load(path, { id: `id-${s.name}`, name: s.name })).id
    }
    // tiny-llama with its weights replaced by the Q4_0 file's, dequantized by our reader: if
    // llama.cpp reads the blocks as we wrote them, it computes (nearly) the same as on this
    const f32Path = join(d.dir, 'tiny-llama.gguf')
    const f32 = await readGguf(f32Path)
    const q4Path = join(d.dir, 'tiny-llama-q4.gguf')
    const q4Info = await readGguf(q4Path)
    const bytes = Buffer.from(await readFile(f32Path))
    for (const t of f32.tensors) {
      const w = await readGgufTensor(q4Path, q4Info, t.name)
      Buffer.from(w.buffer, w.byteOffset, w.byteLength).copy(bytes, f32.dataOffset + t.offset)
    }
    await writeFile(join(d.dir, 'deq.gguf'), bytes)
    ids.deq = (await engine.load(join(d.dir, 'deq.gguf'), { id: 'id-deq', name: 'deq' })).id
  })
  afterAll(async () => {
    await engine?.stop()
    await cleanup?.()
  })

  it('generates greedily from Q8_0 and Q4_0, with next-token distributions near the F32 model\'s, Q8_0 nearer', async () => {
    const sampling = { seed: 1, temperature: 0, topP: 1, topK: 0, maxTokens: 32, stop: [] }
    const ref = await engine.generate({ modelId: ids['tiny-llama']!, input: 'prompt number 7:', sampling })
    expect(ref.tokens).toHaveLength(32)
    const tv: Record<string, number> = {}
    for (const s of [q8, q4]) {
      const r = await engine.generate({ modelId: ids[s.name]!, input: 'prompt number 7:', sampling })
      expect(r.tokens, s.name).toHaveLength(32)
      expect(r.text.length, s.name).toBeGreaterThan(0)
      // teacher-force the F32 model's greedy output through both: how far apart are the distributions?
      const a = (await engine.tokenDistributions(ids['tiny-llama']!, 'prompt number 7:', ref.tokens)).distributions
      const b = (await engine.tokenDistributions(ids[s.name]!, 'prompt number 7:', ref.tokens)).distributions
      tv[s.name] = a.reduce((sum, da, i) => sum + totalVariation(da, b[i]!), 0) / a.length
    }
    expect(tv['tiny-llama-q8']).toBeGreaterThan(0)
    expect(tv['tiny-llama-q8']).toBeLessThan(tv['tiny-llama-q4']!)
    expect(tv['tiny-llama-q4']).toBeLessThan(0.5)
  })

  it('reads the Q4_0 blocks as written: its distributions match F32 weights dequantized by our reader far better than the originals', async () => {
    const sampling = { seed: 3, temperature: 1, topP: 1, topK: 0, maxTokens: 32, stop: [] }
    const r = await engine.generate({ modelId: ids['tiny-llama-q4']!, input: 'question 9', sampling })
    const q = (await engine.tokenDistributions(ids['tiny-llama-q4']!, 'question 9', r.tokens)).distributions
    const deq = (await engine.tokenDistributions(ids.deq!, 'question 9', r.tokens)).distributions
    const orig = (await engine.tokenDistributions(ids['tiny-llama']!, 'question 9', r.tokens)).distributions
    const mean = (other: RawDistribution[]): number => q.reduce((sum, dq, i) => sum + totalVariation(dq, other[i]!), 0) / q.length
    // llama.cpp rounds activations to 8 bits for a Q4_0 product, so not zero; a misread layout
    // (nibble order, scale) would put the Q4_0 model nowhere near the dequantized one
    expect(mean(deq)).toBeLessThan(mean(orig) / 3)
  })
})

function totalVariation (a: RawDistribution, b: RawDistribution): number {
  const p = new Map<number, number>()
  a.tokens.forEach((t, i) => p.set(t, a.probs[i]!))
  const q = new Map<number, number>()
  b.tokens.forEach((t, i) => q.set(t, b.probs[i]!))
  let s = 0
  for (const t of new Set([...p.keys(), ...q.keys()])) s += Math.abs((p.get(t) ?? 0) - (q.get(t) ?? 0))
  return s / 2
}
