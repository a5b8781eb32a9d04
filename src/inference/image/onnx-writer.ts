/**
 * A small ONNX writer: the protobuf wire format of the ModelProto subset our tiny graphs need
 * (graph, nodes, attributes, initializers as raw little-endian data, typed inputs and outputs),
 * encoded by hand so no ONNX package is needed. Field numbers are those of onnx/onnx.proto3.
 */

/** ONNX TensorProto.DataType values. */
export const OnnxType = { float: 1, uint8: 2, int32: 6, int64: 7, float16: 10 } as const
export type OnnxElemType = keyof typeof OnnxType

/** A dimension: a fixed size or a symbolic name (`batch`, `height`). */
export type Dim = number | string

export interface ValueInfo { name: string, type: OnnxElemType, shape: Dim[] }

export type AttrValue = { f: number } | { i: number } | { s: string } | { floats: number[] } | { ints: number[] }
export interface OnnxNode { op: string, inputs: string[], outputs: string[], name?: string, attrs?: Record<string, AttrValue> }

export interface Initializer { name: string, type: 'float' | 'float16' | 'int64' | 'int32', dims: number[], data: Float32Array | BigInt64Array | Int32Array | Uint16Array }

/**
 * Where initializers go: inside the model file (default), or in one external data file beside
 * it (`location`, as large exports ship `model.onnx_data`), each tensor at an offset aligned to
 * `align` bytes. `encodeOnnxModelWithExternalData` returns both files.
 */
export interface ExternalDataOptions {
  location: string
  align?: number
  /**
   * Tensors smaller than this stay inline (default 1024, onnx.save's size_threshold): shape
   * constants must, since onnxruntime's shape inference does not read external data.
   */
  minBytes?: number
}

export interface OnnxGraph {
  name: string
  nodes: OnnxNode[]
  initializers: Initializer[]
  inputs: ValueInfo[]
  outputs: ValueInfo[]
}

/** Growable byte sink with protobuf primitives. */
class Writer {
  private buf = new Uint8Array(1024)
  private len = 0

  private ensure (n: number): void {
    if (this.len + n <= this.buf.length) return
    let size = this.buf.length * 2
    while (size < this.len + n) size *= 2
    const next = new Uint8Array(size)
    next.set(this.buf.subarray(0, this.len))
    this.buf = next
  }

  varint (value: number | bigint): void {
    // Negative int64 values take ten bytes (two's complement), as protobuf specifies.
    let v = BigInt.asUintN(64, BigInt(value))
    this.ensure(10)
    while (v >= 0x80n) {
      this.buf[this.len++] = Number(v & 0x7fn) | 0x80
      v >>= 7n
    }
    this.buf[this.len++] = Number(v)
  }

  tag (field: number, wire: number): void { this.varint((field << 3) | wire) }

  bytes (field: number, data: Uint8Array): void {
    this.tag(field, 2)
    this.varint(data.length)
    this.ensure(data.length)
    this.buf.set(data, this.len)
    this.len += data.length
  }

  string (field: number, s: string): void { this.bytes(field, new TextEncoder().encode(s)) }
  int (field: number, v: number | bigint): void { this.tag(field, 0); this.varint(v) }
  message (field: number, build: (w: Writer) => void): void {
    const w = new Writer()
    build(w)
    this.bytes(field, w.finish())
  }

  float (field: number, v: number): void {
    this.tag(field, 5)
    this.ensure(4)
    new DataView(this.buf.buffer, this.buf.byteOffset).setFloat32(this.len, v, true)
    this.len += 4
  }

  finish (): Uint8Array { return this.buf.slice(0, this.len) }
}

const ATTR = { FLOAT: 1, INT: 2, STRING: 3, FLOATS: 6, INTS: 7 } as const

function writeValueInfo (w: Writer, field: number, v: ValueInfo): void {
  w.message(field, vi => {
    vi.string(1, v.name)
    vi.message(2, tp => {
      tp.message(1, tt => {
        tt.int(1, OnnxType[v.type])
        tt.message(2, shape => {
          for (const d of v.shape) {
            shape.message(1, dim => { if (typeof d === 'number') dim.int(1, d); else dim.string(2, d) })
          }
        })
      })
    })
  })
}

function writeAttr (w: Writer, name: string, a: AttrValue): void {
  w.message(5, at => {
    at.string(1, name)
    if ('f' in a) { at.float(2, a.f); at.int(20, ATTR.FLOAT) } else if ('i' in a) { at.int(3, a.i); at.int(20, ATTR.INT) } else if ('s' in a) { at.bytes(4, new TextEncoder().encode(a.s)); at.int(20, ATTR.STRING) } else if ('floats' in a) { for (const f of a.floats) at.float(7, f); at.int(20, ATTR.FLOATS) } else { for (const i of a.ints) at.int(8, i); at.int(20, ATTR.INTS) }
  })
}

const bytesOf = (t: Initializer): Uint8Array => new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength)

function writeInitializer (w: Writer, t: Initializer, external: { location: string, offset: number } | null): void {
  w.message(5, tp => {
    for (const d of t.dims) tp.int(1, d)
    tp.int(2, OnnxType[t.type])
    tp.string(8, t.name)
    if (external === null) {
      // raw_data is little-endian; every platform node runs on here is little-endian.
      tp.bytes(9, bytesOf(t))
    } else {
      // external_data (13): StringStringEntryProto key (1) / value (2); data_location (14) = EXTERNAL
      const entry = (k: string, v: string): void => { tp.message(13, e => { e.string(1, k); e.string(2, v) }) }
      entry('location', external.location)
      entry('offset', String(external.offset))
      entry('length', String(t.data.byteLength))
      tp.int(14, 1)
    }
  })
}

/** Encodes a ModelProto (IR version 8, default-domain opset `opset`, 17 unless told). */
export function encodeOnnxModel (graph: OnnxGraph, opset = 17): Uint8Array {
  return encode(graph, opset, null).model
}

/** Encodes a ModelProto whose initializers live in one external data file (see `ExternalDataOptions`). */
export function encodeOnnxModelWithExternalData (graph: OnnxGraph, external: ExternalDataOptions, opset = 17): { model: Uint8Array, data: Uint8Array } {
  return encode(graph, opset, external) as { model: Uint8Array, data: Uint8Array }
}

function encode (graph: OnnxGraph, opset: number, external: ExternalDataOptions | null): { model: Uint8Array, data: Uint8Array | null } {
  const align = external?.align ?? 64
  const minBytes = external?.minBytes ?? 1024
  // offset in the data file per initializer, -1 = inline
  const offsets: number[] = []
  let size = 0
  for (const t of graph.initializers) {
    if (external === null || t.data.byteLength < minBytes) { offsets.push(-1); continue }
    size = Math.ceil(size / align) * align
    offsets.push(size)
    size += t.data.byteLength
  }
  let data: Uint8Array | null = null
  if (external !== null) {
    data = new Uint8Array(size)
    graph.initializers.forEach((t, i) => { if ((offsets[i] ?? -1) >= 0) data?.set(bytesOf(t), offsets[i] ?? 0) })
  }
  const w = new Writer()
  w.int(1, 8)
  w.string(2, 'heurist-tiny')
  w.string(3, '1')
  w.message(7, g => {
    graph.nodes.forEach((n, idx) => {
      g.message(1, nw => {
        for (const i of n.inputs) nw.string(1, i)
        for (const o of n.outputs) nw.string(2, o)
        nw.string(3, n.name ?? `${n.op}_${idx}`)
        nw.string(4, n.op)
        for (const [k, v] of Object.entries(n.attrs ?? {})) writeAttr(nw, k, v)
      })
    })
    g.string(2, graph.name)
    graph.initializers.forEach((t, i) => {
      const offset = offsets[i] ?? -1
      writeInitializer(g, t, external === null || offset < 0 ? null : { location: external.location, offset })
    })
    for (const v of graph.inputs) writeValueInfo(g, 11, v)
    for (const v of graph.outputs) writeValueInfo(g, 12, v)
  })
  w.message(8, os => { os.string(1, ''); os.int(2, opset) })
  return { model: w.finish(), data }
}
