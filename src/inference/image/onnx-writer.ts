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

export interface Initializer { name: string, type: 'float' | 'int64' | 'int32', dims: number[], data: Float32Array | BigInt64Array | Int32Array }

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

function writeInitializer (w: Writer, t: Initializer): void {
  w.message(5, tp => {
    for (const d of t.dims) tp.int(1, d)
    tp.int(2, OnnxType[t.type])
    tp.string(8, t.name)
    // raw_data is little-endian; every platform node runs on here is little-endian.
    tp.bytes(9, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength))
  })
}

/** Encodes a ModelProto (IR version 8, default-domain opset `opset`, 17 unless told). */
export function encodeOnnxModel (graph: OnnxGraph, opset = 17): Uint8Array {
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
    for (const t of graph.initializers) writeInitializer(g, t)
    for (const v of graph.inputs) writeValueInfo(g, 11, v)
    for (const v of graph.outputs) writeValueInfo(g, 12, v)
  })
  w.message(8, os => { os.string(1, ''); os.int(2, opset) })
  return w.finish()
}
