import { open } from 'node:fs/promises'
import { HeuristError } from '../core/errors.js'
import { fp32ToFp16, fp16ToFp32 } from './float16.js'

/**
 * GGUF (v3) writer and a bounded reader. The writer produces the built-in tiny models; the
 * reader checks a file before llama.cpp sees it (magic, version, bounds, truncation) and
 * reads metadata for `models inspect` without touching the weights. Every count and length
 * read from the file is bounded, so a hostile or broken file gives a typed error, never a
 * crash or a huge allocation.
 */

export const GGUF_MAGIC = 0x46554747 // "GGUF" little-endian
export const GGUF_DEFAULT_ALIGNMENT = 32

export enum GgufType {
  UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12
}

/** ggml tensor types we write (F32, Q8_0, Q4_0) and the block sizes of those we may read. */
export const GGML_TYPE_F32 = 0
export const GGML_TYPE_Q4_0 = 2
export const GGML_TYPE_Q8_0 = 8
export type GgmlWriteType = typeof GGML_TYPE_F32 | typeof GGML_TYPE_Q4_0 | typeof GGML_TYPE_Q8_0
/** Elements per block of Q8_0 and Q4_0 (ggml's QK8_0 and QK4_0). */
export const GGML_QK = 32
/** ggml type → [block bytes, elements per block], for the size check of a file's tensors. */
const GGML_BLOCK: Record<number, [number, number]> = {
  0: [4, 1], 1: [2, 1], 2: [18, 32], 3: [20, 32], 6: [22, 32], 7: [24, 32], 8: [34, 32], 9: [36, 32],
  10: [84, 256], 11: [110, 256], 12: [144, 256], 13: [176, 256], 14: [210, 256], 15: [292, 256],
  16: [66, 256], 17: [74, 256], 18: [98, 256], 19: [50, 256], 20: [18, 32], 21: [110, 256], 22: [82, 256],
  23: [136, 256], 24: [1, 1], 25: [2, 1], 26: [4, 1], 27: [8, 1], 28: [8, 1], 29: [56, 256], 30: [2, 1],
  34: [54, 256], 35: [66, 256], 39: [17, 32]
}

export type GgufValue =
  | { type: GgufType.UINT32 | GgufType.INT32 | GgufType.FLOAT32 | GgufType.UINT8 | GgufType.INT8 | GgufType.UINT16 | GgufType.INT16 | GgufType.FLOAT64, value: number }
  | { type: GgufType.UINT64 | GgufType.INT64, value: bigint }
  | { type: GgufType.BOOL, value: boolean }
  | { type: GgufType.STRING, value: string }
  | { type: GgufType.ARRAY, itemType: GgufType, value: Array<number | bigint | boolean | string> }

export interface GgufTensorSpec {
  name: string
  /** ggml order: innermost dimension first (`[n_embd, n_vocab]` for token_embd). */
  dims: number[]
  data: Float32Array
  /** How the data is stored. Default F32. Q8_0 and Q4_0 need a row length (dims[0]) that is a multiple of 32. */
  type?: GgmlWriteType
}

/** Bytes a tensor of `n` elements takes in a ggml type (from the block table), or null for an unknown type. */
export function ggmlTensorBytes (type: number, n: number): number | null {
  const block = GGML_BLOCK[type]
  return block === undefined ? null : Math.ceil(n / block[1]) * block[0]
}

// ---------------------------------------------------------------------------- quantization

const fr = Math.fround
/** C's roundf: halves away from zero. */
const roundf = (x: number): number => Math.sign(x) * Math.floor(Math.abs(x) + 0.5)

/**
 * ggml's quantize_row_q8_0_ref: per block of 32, d = max|x| / 127 and q = roundf(x / d) as int8;
 * a block is the fp16 d then the 32 int8. Arithmetic in float32 as ggml's reference does.
 */
export function quantizeQ8_0 (x: Float32Array): Buffer {
  if (x.length % GGML_QK !== 0) throw new HeuristError('INFERENCE_GGUF_WRITE', `Q8_0 needs a multiple of ${GGML_QK} elements, got ${x.length}`)
  const nb = x.length / GGML_QK
  const out = Buffer.alloc(nb * 34)
  for (let i = 0; i < nb; i++) {
    let amax = 0
    for (let j = 0; j < GGML_QK; j++) amax = Math.max(amax, Math.abs(x[i * GGML_QK + j]!))
    const d = fr(amax / 127)
    const id = d !== 0 ? fr(1 / d) : 0
    out.writeUInt16LE(fp32ToFp16(d), i * 34)
    for (let j = 0; j < GGML_QK; j++) out.writeInt8(roundf(fr(x[i * GGML_QK + j]! * id)), i * 34 + 2 + j)
  }
  return out
}

/**
 * ggml's quantize_row_q4_0_ref: per block of 32, d = (the value of largest magnitude) / -8 and
 * q = min(15, trunc(x / d + 8.5)); a block is the fp16 d then 16 bytes whose low nibbles hold
 * elements 0..15 and high nibbles elements 16..31.
 */
export function quantizeQ4_0 (x: Float32Array): Buffer {
  if (x.length % GGML_QK !== 0) throw new HeuristError('INFERENCE_GGUF_WRITE', `Q4_0 needs a multiple of ${GGML_QK} elements, got ${x.length}`)
  const nb = x.length / GGML_QK
  const out = Buffer.alloc(nb * 18)
  const half = GGML_QK / 2
  for (let i = 0; i < nb; i++) {
    let amax = 0
    let max = 0
    for (let j = 0; j < GGML_QK; j++) {
      const v = x[i * GGML_QK + j]!
      if (amax < Math.abs(v)) { amax = Math.abs(v); max = v }
    }
    const d = fr(max / -8)
    const id = d !== 0 ? fr(1 / d) : 0
    out.writeUInt16LE(fp32ToFp16(d), i * 18)
    const q = (v: number): number => Math.min(15, Math.trunc(fr(fr(v * id) + 8.5)))
    for (let j = 0; j < half; j++) {
      out[i * 18 + 2 + j] = q(x[i * GGML_QK + j]!) | (q(x[i * GGML_QK + half + j]!) << 4)
    }
  }
  return out
}

/** The weights a tensor's bytes stand for (F32, Q8_0 or Q4_0), as ggml's dequantize_row_* computes them. */
export function dequantize (type: number, bytes: Uint8Array, n: number): Float32Array {
  const need = ggmlTensorBytes(type, n)
  if (need === null || (type !== GGML_TYPE_F32 && type !== GGML_TYPE_Q8_0 && type !== GGML_TYPE_Q4_0)) {
    throw new HeuristError('INFERENCE_GGUF_TYPE', `cannot dequantize ggml type ${type}`)
  }
  if (type !== GGML_TYPE_F32 && n % GGML_QK !== 0) throw new HeuristError('INFERENCE_BAD_GGUF', `a ${n}-element tensor is not whole blocks of ${GGML_QK}`)
  if (bytes.length < need) throw new HeuristError('INFERENCE_BAD_GGUF', `tensor data truncated: ${bytes.length} bytes, ${n} elements of type ${type} need ${need}`)
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, need)
  const out = new Float32Array(n)
  if (type === GGML_TYPE_F32) {
    for (let i = 0; i < n; i++) out[i] = b.readFloatLE(i * 4)
  } else if (type === GGML_TYPE_Q8_0) {
    for (let i = 0; i < n / GGML_QK; i++) {
      const d = fp16ToFp32(b.readUInt16LE(i * 34))
      for (let j = 0; j < GGML_QK; j++) out[i * GGML_QK + j] = d * b.readInt8(i * 34 + 2 + j)
    }
  } else {
    const half = GGML_QK / 2
    for (let i = 0; i < n / GGML_QK; i++) {
      const d = fp16ToFp32(b.readUInt16LE(i * 18))
      for (let j = 0; j < half; j++) {
        const q = b[i * 18 + 2 + j]!
        out[i * GGML_QK + j] = ((q & 0x0f) - 8) * d
        out[i * GGML_QK + half + j] = ((q >> 4) - 8) * d
      }
    }
  }
  return out
}

/** A tensor's bytes in its storage type. */
function encodeTensor (t: GgufTensorSpec): Buffer {
  const type = t.type ?? GGML_TYPE_F32
  if (type === GGML_TYPE_F32) return Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength)
  const row = t.dims[0] ?? 0
  if (row % GGML_QK !== 0) throw new HeuristError('INFERENCE_GGUF_WRITE', `tensor ${t.name}: a quantized row must be a multiple of ${GGML_QK} elements, got ${row}`)
  return type === GGML_TYPE_Q8_0 ? quantizeQ8_0(t.data) : quantizeQ4_0(t.data)
}

// ---------------------------------------------------------------------------- writer

class ByteWriter {
  private chunks: Buffer[] = []
  length = 0
  push (b: Buffer): void { this.chunks.push(b); this.length += b.length }
  u32 (n: number): void { const b = Buffer.alloc(4); b.writeUInt32LE(n); this.push(b) }
  i32 (n: number): void { const b = Buffer.alloc(4); b.writeInt32LE(n); this.push(b) }
  u64 (n: number | bigint): void { const b = Buffer.alloc(8); b.writeBigUInt64LE(BigInt(n)); this.push(b) }
  f32 (n: number): void { const b = Buffer.alloc(4); b.writeFloatLE(n); this.push(b) }
  str (s: string): void { const b = Buffer.from(s, 'utf8'); this.u64(b.length); this.push(b) }
  pad (align: number): void { const r = this.length % align; if (r !== 0) this.push(Buffer.alloc(align - r)) }
  buffer (): Buffer { return Buffer.concat(this.chunks) }
}

function writeScalar (w: ByteWriter, type: GgufType, v: number | bigint | boolean | string): void {
  switch (type) {
    case GgufType.UINT8: w.push(Buffer.from([Number(v)])); break
    case GgufType.INT8: { const b = Buffer.alloc(1); b.writeInt8(Number(v)); w.push(b); break }
    case GgufType.UINT16: { const b = Buffer.alloc(2); b.writeUInt16LE(Number(v)); w.push(b); break }
    case GgufType.INT16: { const b = Buffer.alloc(2); b.writeInt16LE(Number(v)); w.push(b); break }
    case GgufType.UINT32: w.u32(Number(v)); break
    case GgufType.INT32: w.i32(Number(v)); break
    case GgufType.FLOAT32: w.f32(Number(v)); break
    case GgufType.FLOAT64: { const b = Buffer.alloc(8); b.writeDoubleLE(Number(v)); w.push(b); break }
    case GgufType.UINT64: w.u64(BigInt(v as bigint | number)); break
    case GgufType.INT64: { const b = Buffer.alloc(8); b.writeBigInt64LE(BigInt(v as bigint | number)); w.push(b); break }
    case GgufType.BOOL: w.push(Buffer.from([v === true ? 1 : 0])); break
    case GgufType.STRING: w.str(String(v)); break
    default: throw new HeuristError('INFERENCE_GGUF_WRITE', `cannot write GGUF scalar of type ${String(type)}`)
  }
}

/** Serializes a GGUF v3 file: header, metadata, tensor infos, then each tensor's data (F32, Q8_0 or Q4_0) aligned to 32 bytes. */
export function encodeGguf (metadata: Array<[string, GgufValue]>, tensors: GgufTensorSpec[]): Buffer {
  const align = GGUF_DEFAULT_ALIGNMENT
  const w = new ByteWriter()
  w.u32(GGUF_MAGIC)
  w.u32(3)
  w.u64(tensors.length)
  w.u64(metadata.length)
  for (const [key, v] of metadata) {
    w.str(key)
    w.u32(v.type)
    if (v.type === GgufType.ARRAY) {
      w.u32(v.itemType)
      w.u64(v.value.length)
      for (const item of v.value) writeScalar(w, v.itemType, item)
    } else {
      writeScalar(w, v.type, v.value)
    }
  }
  // offsets are relative to the start of the data section, each aligned
  let offset = 0
  const offsets: number[] = []
  const datas: Buffer[] = []
  for (const t of tensors) {
    const n = t.dims.reduce((a, b) => a * b, 1)
    if (n !== t.data.length) throw new HeuristError('INFERENCE_GGUF_WRITE', `tensor ${t.name}: dims give ${n} elements, data has ${t.data.length}`)
    const data = encodeTensor(t)
    datas.push(data)
    w.str(t.name)
    w.u32(t.dims.length)
    for (const d of t.dims) w.u64(d)
    w.u32(t.type ?? GGML_TYPE_F32)
    w.u64(offset)
    offsets.push(offset)
    offset += data.length
    offset = Math.ceil(offset / align) * align
  }
  w.pad(align)
  const dataStart = w.length
  for (let i = 0; i < tensors.length; i++) {
    const target = dataStart + offsets[i]!
    if (w.length < target) w.push(Buffer.alloc(target - w.length))
    w.push(datas[i]!)
  }
  w.pad(align)
  return w.buffer()
}

// ---------------------------------------------------------------------------- reader

export interface GgufTensorInfo { name: string, dims: number[], type: number, offset: number }

export interface GgufInfo {
  version: number
  metadata: Record<string, number | bigint | boolean | string | Array<number | bigint | boolean | string> | { arrayLength: number }>
  tensors: GgufTensorInfo[]
  /** Absolute byte offset of the data section. */
  dataOffset: number
  /** Bytes the tensors need, from the data section's start (0 if a tensor type is unknown). */
  dataBytes: number
  fileSize: number
}

/** Bounds of the reader: generous for real models, small enough that garbage cannot exhaust memory. */
export interface GgufReadOptions {
  /** Metadata entries. Default 4096. */
  maxKeys?: number
  /** Tensors. Default 65536. */
  maxTensors?: number
  /** Bytes of any one string. Default 16 MiB (chat templates can be long). */
  maxString?: number
  /** Array elements kept in memory; longer arrays are skipped and reported by length. Default 1024. */
  keepArray?: number
  /** Max bytes of header read. Default 256 MiB (a 256k vocabulary fits). */
  maxHeader?: number
}

function bad (path: string, why: string): HeuristError {
  return new HeuristError('INFERENCE_BAD_GGUF', `${path} is not a valid GGUF file: ${why}`, { details: { path } })
}

/** Reads a GGUF header and metadata (never the weights), checking that the file is complete. */
export async function readGguf (path: string, options: GgufReadOptions = {}): Promise<GgufInfo> {
  const maxKeys = options.maxKeys ?? 4096
  const maxTensors = options.maxTensors ?? 65536
  const maxString = options.maxString ?? 16 * 1024 * 1024
  const keepArray = options.keepArray ?? 1024
  const maxHeader = options.maxHeader ?? 256 * 1024 * 1024
  let fh
  try {
    fh = await open(path, 'r')
  } catch (e) {
    throw new HeuristError('INFERENCE_MODEL_UNREADABLE', `cannot read ${path}: ${(e as Error).message}`, { details: { path } })
  }
  try {
    const fileSize = (await fh.stat()).size
    // buffered cursor over the file
    let buf = Buffer.alloc(0)
    let bufStart = 0
    let pos = 0
    const need = async (n: number): Promise<void> => {
      if (pos + n > fileSize) throw bad(path, `truncated at byte ${pos} (file is ${fileSize} bytes)`)
      if (pos + n > maxHeader) throw bad(path, `header larger than ${maxHeader} bytes`)
      if (pos >= bufStart && pos + n <= bufStart + buf.length) return
      const size = Math.max(n, 1 << 20)
      const b = Buffer.alloc(Math.min(size, fileSize - pos))
      await fh.read(b, 0, b.length, pos)
      buf = b
      bufStart = pos
    }
    const u8 = async (): Promise<number> => { await need(1); const v = buf.readUInt8(pos - bufStart); pos += 1; return v }
    const u32 = async (): Promise<number> => { await need(4); const v = buf.readUInt32LE(pos - bufStart); pos += 4; return v }
    const u64 = async (): Promise<bigint> => { await need(8); const v = buf.readBigUInt64LE(pos - bufStart); pos += 8; return v }
    const smallU64 = async (what: string, max: number): Promise<number> => {
      const v = await u64()
      if (v > BigInt(max)) throw bad(path, `${what} ${v} exceeds the limit ${max}`)
      return Number(v)
    }
    const str = async (): Promise<string> => {
      const n = await smallU64('string length', maxString)
      await need(n)
      const s = buf.toString('utf8', pos - bufStart, pos - bufStart + n)
      pos += n
      return s
    }
    const scalar = async (type: number): Promise<number | bigint | boolean | string> => {
      switch (type) {
        case GgufType.UINT8: return await u8()
        case GgufType.INT8: { await need(1); const v = buf.readInt8(pos - bufStart); pos += 1; return v }
        case GgufType.UINT16: { await need(2); const v = buf.readUInt16LE(pos - bufStart); pos += 2; return v }
        case GgufType.INT16: { await need(2); const v = buf.readInt16LE(pos - bufStart); pos += 2; return v }
        case GgufType.UINT32: return await u32()
        case GgufType.INT32: { await need(4); const v = buf.readInt32LE(pos - bufStart); pos += 4; return v }
        case GgufType.FLOAT32: { await need(4); const v = buf.readFloatLE(pos - bufStart); pos += 4; return v }
        case GgufType.FLOAT64: { await need(8); const v = buf.readDoubleLE(pos - bufStart); pos += 8; return v }
        case GgufType.UINT64: return await u64()
        case GgufType.INT64: { await need(8); const v = buf.readBigInt64LE(pos - bufStart); pos += 8; return v }
        case GgufType.BOOL: return (await u8()) !== 0
        case GgufType.STRING: return await str()
        default: throw bad(path, `unknown metadata value type ${type}`)
      }
    }
    if (fileSize < 24) throw bad(path, `only ${fileSize} bytes`)
    if (await u32() !== GGUF_MAGIC) throw bad(path, 'wrong magic (expected "GGUF")')
    const version = await u32()
    if (version !== 2 && version !== 3) throw bad(path, `unsupported version ${version}`)
    const nTensors = await smallU64('tensor count', maxTensors)
    const nKeys = await smallU64('metadata count', maxKeys)
    const metadata: GgufInfo['metadata'] = {}
    for (let i = 0; i < nKeys; i++) {
      const key = await str()
      const type = await u32()
      if (type === GgufType.ARRAY) {
        const itemType = await u32()
        if (itemType === GgufType.ARRAY) throw bad(path, `nested array in ${key}`)
        const len = await smallU64(`array length of ${key}`, 1 << 26)
        const items: Array<number | bigint | boolean | string> = []
        for (let j = 0; j < len; j++) {
          const v = await scalar(itemType)
          if (len <= keepArray) items.push(v)
        }
        metadata[key] = len <= keepArray ? items : { arrayLength: len }
      } else {
        metadata[key] = await scalar(type)
      }
    }
    const tensors: GgufTensorInfo[] = []
    for (let i = 0; i < nTensors; i++) {
      const name = await str()
      const nd = await u32()
      if (nd < 1 || nd > 4) throw bad(path, `tensor ${name} has ${nd} dimensions`)
      const dims: number[] = []
      for (let d = 0; d < nd; d++) dims.push(await smallU64(`dimension of ${name}`, 2 ** 40))
      const type = await u32()
      const offset = await smallU64(`offset of ${name}`, Number.MAX_SAFE_INTEGER)
      tensors.push({ name, dims, type, offset })
    }
    const alignRaw = metadata['general.alignment']
    const align = typeof alignRaw === 'number' && alignRaw > 0 && alignRaw <= 65536 ? alignRaw : GGUF_DEFAULT_ALIGNMENT
    const dataOffset = Math.ceil(pos / align) * align
    let dataBytes = 0
    for (const t of tensors) {
      const block = GGML_BLOCK[t.type]
      if (block === undefined) { dataBytes = 0; break }
      const n = t.dims.reduce((a, b) => a * b, 1)
      const end = t.offset + Math.ceil(n / block[1]) * block[0]
      if (end > dataBytes) dataBytes = end
    }
    if (dataOffset + dataBytes > fileSize) throw bad(path, `truncated: tensors need ${dataOffset + dataBytes} bytes, the file has ${fileSize}`)
    return { version, metadata, tensors, dataOffset, dataBytes, fileSize }
  } finally {
    await fh.close()
  }
}

/** Reads one tensor's weights from a checked file (`readGguf`'s info), dequantized to float. */
export async function readGgufTensor (path: string, info: GgufInfo, name: string): Promise<Float32Array> {
  const t = info.tensors.find(x => x.name === name)
  if (t === undefined) throw new HeuristError('INFERENCE_GGUF_NO_TENSOR', `${path} has no tensor ${name}`, { details: { path } })
  const n = t.dims.reduce((a, b) => a * b, 1)
  const bytes = ggmlTensorBytes(t.type, n)
  if (bytes === null) throw new HeuristError('INFERENCE_GGUF_TYPE', `tensor ${name} has ggml type ${t.type}, which this reader does not dequantize`, { details: { path } })
  if (bytes > 1 << 30) throw bad(path, `tensor ${name} is over 1 GiB`)
  const fh = await open(path, 'r')
  try {
    const b = Buffer.alloc(bytes)
    const { bytesRead } = await fh.read(b, 0, bytes, info.dataOffset + t.offset)
    if (bytesRead < bytes) throw bad(path, `tensor ${name} truncated: ${bytesRead} of ${bytes} bytes`)
    return dequantize(t.type, b, n)
  } finally {
    await fh.close()
  }
}

/** True when the file starts with the GGUF magic (a cheap sniff; `readGguf` does the real check). */
export async function looksLikeGguf (path: string): Promise<boolean> {
  let fh
  try {
    fh = await open(path, 'r')
    const b = Buffer.alloc(4)
    const { bytesRead } = await fh.read(b, 0, 4, 0)
    return bytesRead === 4 && b.readUInt32LE(0) === GGUF_MAGIC
  } catch {
    return false
  } finally {
    await fh?.close()
  }
}
