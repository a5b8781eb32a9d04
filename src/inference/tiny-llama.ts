import { encodeGguf, GgufType, GGML_QK, GGML_TYPE_F32, GGML_TYPE_Q4_0, GGML_TYPE_Q8_0, type GgmlWriteType, type GgufTensorSpec, type GgufValue } from './gguf.js'

/**
 * Built-in tiny llama-architecture models, generated from a seed (no model can be downloaded
 * here, in CI or in tests). The vocabulary is the 256 bytes (`<0x0A>`, token type 6) plus a
 * few control tokens and `▁` (SentencePiece's space), so any text tokenizes. Weights are
 * seeded uniform noise, with two deliberate structures:
 * - residual dimension 0 carries a constant 1 through every layer (the attention and FFN
 *   output rows for it are zero), so after the final norm it is always positive;
 * - the output rows of control tokens, the space byte (spaces come out as `▁`), control bytes
 *   and bytes >= 0x80 weigh dimension 0 with -8, so the model practically never emits them.
 * The model therefore writes printable ASCII and never stops by itself: generation always
 * runs to max_tokens, and a detokenize → tokenize round trip gives back the same tokens
 * (what a validator teacher-forcing the output needs).
 */

export interface TinyLlamaSpec {
  name: string
  seed: number
  embd: number
  layers: number
  heads: number
  headsKv: number
  ff: number
  contextLength: number
  /**
   * Store the weights quantized (default F32). A quantized spec with the seed and shape of
   * another is that model's quantized copy: the `--cheat quantized-*` modes serve it.
   */
  quant?: TinyQuant
  /**
   * The vocabulary. Default `bytes` (262 tokens, SentencePiece-style). `bpe128k`: a GPT-2-style
   * byte-level BPE of 128,256 tokens with several end-of-generation tokens, the shape of Llama 3's
   * (see `tinyBpeVocabulary`); for measuring what a real vocabulary costs a validator.
   */
  vocab?: 'bytes' | 'bpe128k'
  /** An embedding model: llama.cpp pools the last layer's states over the input (mean). Default none (a text model). */
  pooling?: 'mean'
}

export type TinyQuant = 'q8_0' | 'q4_0'

export const tinyLlamaSpecs: TinyLlamaSpec[] = [
  { name: 'tiny-llama', seed: 1, embd: 64, layers: 2, heads: 4, headsKv: 4, ff: 128, contextLength: 1024 },
  { name: 'tiny-llama-b', seed: 2, embd: 96, layers: 3, heads: 4, headsKv: 2, ff: 192, contextLength: 1024 }
]

/**
 * A tiny model with a real-size vocabulary: 128,256 tokens (Llama 3's count), GPT-2-style
 * byte-level BPE, four end-of-generation tokens. Built on demand (the validation bench and the
 * tests that need it); about 33 MB, written at run time, never committed.
 */
export const tinyLlama128kSpec: TinyLlamaSpec = { name: 'tiny-llama-128k', seed: 3, embd: 32, layers: 1, heads: 2, headsKv: 2, ff: 64, contextLength: 1024, vocab: 'bpe128k' }

/**
 * The built-in tiny embedding model: the tiny-llama shape from its own seed, marked for mean
 * pooling, so llama.cpp's embedding context returns the mean of the last layer's states. Served
 * by `heurist up` on `/v1/embeddings`; its vectors mean nothing, deterministically.
 */
export const tinyEmbedSpec: TinyLlamaSpec = { name: 'tiny-embed', seed: 4, embd: 64, layers: 2, heads: 4, headsKv: 4, ff: 128, contextLength: 512, pooling: 'mean' }

/** The quantized copy of a tiny model's name (`tiny-llama` → `tiny-llama-q4`). */
export function quantizedSiblingName (name: string, quant: TinyQuant): string {
  return `${name}-${quant === 'q8_0' ? 'q8' : 'q4'}`
}

/**
 * Quantized siblings of the tiny models: same seed, same weights before quantization. Built on
 * demand (the quantized cheats, the bench, tests), not by `heurist up`.
 */
export const tinyQuantizedSpecs: TinyLlamaSpec[] = tinyLlamaSpecs.flatMap(spec =>
  (['q8_0', 'q4_0'] as const).map(quant => ({ ...spec, name: quantizedSiblingName(spec.name, quant), quant })))

/** ggml's general.file_type for an all-F32, mostly-Q8_0 or mostly-Q4_0 file. */
const FILE_TYPE: Record<TinyQuant | 'f32', number> = { f32: 0, q8_0: 7, q4_0: 2 }

/** ChatML, the template llama.cpp and node-llama-cpp both recognise. */
export const CHATML_TEMPLATE = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"

const SPECIALS = ['<unk>', '<s>', '</s>', '<|im_start|>', '<|im_end|>']
const BYTE_BASE = SPECIALS.length
const SPACE_PIECE = '\u2581'

/** Token type ids of llama.cpp's SentencePiece vocabulary. */
const TT_NORMAL = 1
const TT_UNKNOWN = 2
const TT_CONTROL = 3
const TT_BYTE = 6

export function tinyVocabulary (): { tokens: string[], types: number[] } {
  const tokens = [...SPECIALS]
  const types = [TT_UNKNOWN, TT_CONTROL, TT_CONTROL, TT_CONTROL, TT_CONTROL]
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`)
    types.push(TT_BYTE)
  }
  tokens.push(SPACE_PIECE)
  types.push(TT_NORMAL)
  return { tokens, types }
}

/** GPT-2's map from bytes to printable characters (byte-level BPE writes every byte as one of these). */
function gpt2ByteChars (): string[] {
  const keep = (b: number): boolean => (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF)
  const out: string[] = []
  let extra = 0
  for (let b = 0; b < 256; b++) out.push(String.fromCharCode(keep(b) ? b : 256 + extra++))
  return out
}

/** Output weight of the BPE model's end tokens on dimension 0: a job of 256 tokens ends by itself about half the time. */
const BPE_EOG_WEIGHT = 1.5

/** The end-of-generation tokens of the BPE vocabulary (as Llama 3.1 has: end of text, end of turn, end of message; and ChatML's). */
export const TINY_BPE_EOG = ['<|end_of_text|>', '<|eot_id|>', '<|eom_id|>', '<|im_end|>'] as const
const BPE_SPECIALS = ['<|begin_of_text|>', ...TINY_BPE_EOG, '<|im_start|>']
const BPE_SIZE = 128_256
const BPE_SPECIAL_BASE = 128_000

/**
 * A GPT-2-style byte-level BPE vocabulary of 128,256 tokens, built from rules (no download):
 * the 256 byte characters, then every pair of the 95 printable ASCII characters (space as `Ġ`),
 * then triples (a pair + one character) up to 128,000 tokens, each with its merge rule; then 256
 * special tokens (begin/end of text, end of turn, end of message, ChatML's two, reserved ones)
 * as Llama 3 lays them out. `outputAllowed` marks the tokens whose bytes are printable ASCII,
 * space or newline (the only ones the model writes, besides the end tokens).
 */
export function tinyBpeVocabulary (): { tokens: string[], types: number[], merges: string[], outputAllowed: boolean[], specials: Record<string, number> } {
  const byteChars = gpt2ByteChars()
  const tokens = [...byteChars]
  const types = tokens.map(() => TT_NORMAL)
  const outputAllowed = byteChars.map((_c, b) => b === 0x0A || (b >= 0x20 && b < 0x7F))
  const printable = [byteChars[0x20]!]
  for (let b = 0x21; b < 0x7F; b++) printable.push(byteChars[b]!)
  const merges: string[] = []
  const add = (left: string, right: string): void => {
    merges.push(`${left} ${right}`)
    tokens.push(left + right)
    types.push(TT_NORMAL)
    outputAllowed.push(true)
  }
  for (const a of printable) for (const b of printable) add(a, b)
  const pairs = tokens.slice(256)
  outer: for (const ab of pairs) {
    for (const c of printable) {
      if (tokens.length >= BPE_SPECIAL_BASE) break outer
      add(ab, c)
    }
  }
  const specials: Record<string, number> = {}
  for (let i = 0; tokens.length < BPE_SIZE; i++) {
    const name = BPE_SPECIALS[i] ?? `<|reserved_special_token_${i - BPE_SPECIALS.length}|>`
    specials[name] = tokens.length
    tokens.push(name)
    types.push(TT_CONTROL)
    outputAllowed.push(false)
  }
  return { tokens, types, merges, outputAllowed, specials }
}

/** mulberry32: small, fast, and the same on every platform. */
function rng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6D2B79F5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

function allowedOutput (tokenId: number): boolean {
  if (tokenId < BYTE_BASE) return false
  const b = tokenId - BYTE_BASE
  if (b === 256) return true // ▁
  return b === 0x0A || (b > 0x20 && b < 0x7F)
}

/** Builds the GGUF bytes of one tiny model: deterministic for a spec. */
export function buildTinyLlama (spec: TinyLlamaSpec): Buffer {
  const bpe = spec.vocab === 'bpe128k' ? tinyBpeVocabulary() : null
  const { tokens, types } = bpe ?? tinyVocabulary()
  const nVocab = tokens.length
  // output row weight on the constant dimension 0: 0 for tokens the model writes, −8 for those it
  // never does; the BPE model's end tokens get a positive weight, so its jobs end by themselves
  const eog = new Set(bpe === null ? [] : TINY_BPE_EOG.map(n => bpe.specials[n]!))
  const outputBias = (t: number): number => eog.has(t) ? BPE_EOG_WEIGHT : (bpe === null ? allowedOutput(t) : bpe.outputAllowed[t] === true) ? 0 : -8
  const { embd, ff, layers, heads, headsKv } = spec
  const headDim = embd / heads
  const embdKv = headDim * headsKv
  // the seed alone fixes the weights, so a quantized sibling starts from the same floats
  const rand = rng(spec.seed)
  const uniform = (n: number, scale: number): Float32Array => {
    const a = new Float32Array(n)
    for (let i = 0; i < n; i++) a[i] = (rand() * 2 - 1) * scale
    return a
  }
  const ones = (n: number): Float32Array => new Float32Array(n).fill(1)
  // rows of a ggml matrix [in, out] are `out` runs of `in` floats
  const zeroRow = (m: Float32Array, inDim: number, row: number): void => { m.fill(0, row * inDim, (row + 1) * inDim) }

  const tensors: GgufTensorSpec[] = []
  const tokEmbd = uniform(embd * nVocab, 0.5)
  for (let t = 0; t < nVocab; t++) tokEmbd[t * embd] = 1
  tensors.push({ name: 'token_embd.weight', dims: [embd, nVocab], data: tokEmbd })
  const proj = 1.5 / Math.sqrt(embd)
  for (let l = 0; l < layers; l++) {
    const p = `blk.${l}.`
    tensors.push({ name: p + 'attn_norm.weight', dims: [embd], data: ones(embd) })
    tensors.push({ name: p + 'attn_q.weight', dims: [embd, embd], data: uniform(embd * embd, proj) })
    tensors.push({ name: p + 'attn_k.weight', dims: [embd, embdKv], data: uniform(embd * embdKv, proj) })
    tensors.push({ name: p + 'attn_v.weight', dims: [embd, embdKv], data: uniform(embd * embdKv, proj) })
    const wo = uniform(embd * embd, proj / 2)
    zeroRow(wo, embd, 0)
    tensors.push({ name: p + 'attn_output.weight', dims: [embd, embd], data: wo })
    tensors.push({ name: p + 'ffn_norm.weight', dims: [embd], data: ones(embd) })
    tensors.push({ name: p + 'ffn_gate.weight', dims: [embd, ff], data: uniform(embd * ff, proj) })
    tensors.push({ name: p + 'ffn_up.weight', dims: [embd, ff], data: uniform(embd * ff, proj) })
    const down = uniform(ff * embd, 1.5 / Math.sqrt(ff) / 2)
    zeroRow(down, ff, 0)
    tensors.push({ name: p + 'ffn_down.weight', dims: [ff, embd], data: down })
  }
  tensors.push({ name: 'output_norm.weight', dims: [embd], data: ones(embd) })
  const out = uniform(embd * nVocab, 0.6)
  for (let t = 0; t < nVocab; t++) out[t * embd] = outputBias(t)
  tensors.push({ name: 'output.weight', dims: [embd, nVocab], data: out })

  const u32 = (value: number): GgufValue => ({ type: GgufType.UINT32, value })
  const metadata: Array<[string, GgufValue]> = [
    ['general.architecture', { type: GgufType.STRING, value: 'llama' }],
    ['general.name', { type: GgufType.STRING, value: spec.name }],
    ['general.description', { type: GgufType.STRING, value: `heurist built-in tiny model, seed ${spec.seed}; random weights, for tests and local devnets` }],
    ['general.file_type', u32(FILE_TYPE[spec.quant ?? 'f32'])],
    ['general.alignment', u32(32)],
    ['llama.context_length', u32(spec.contextLength)],
    ['llama.embedding_length', u32(embd)],
    ['llama.block_count', u32(layers)],
    ['llama.feed_forward_length', u32(ff)],
    ['llama.rope.dimension_count', u32(headDim)],
    ['llama.attention.head_count', u32(heads)],
    ['llama.attention.head_count_kv', u32(headsKv)],
    ['llama.attention.layer_norm_rms_epsilon', { type: GgufType.FLOAT32, value: 1e-5 }],
    ['llama.rope.freq_base', { type: GgufType.FLOAT32, value: 10000 }],
    ['llama.vocab_size', u32(nVocab)],
    ...(spec.pooling === 'mean' ? [['llama.pooling_type', u32(1)] as [string, GgufValue]] : []),
    ...(bpe === null
      ? [
          ['tokenizer.ggml.model', { type: GgufType.STRING, value: 'llama' }],
          ['tokenizer.ggml.tokens', { type: GgufType.ARRAY, itemType: GgufType.STRING, value: tokens }],
          ['tokenizer.ggml.scores', { type: GgufType.ARRAY, itemType: GgufType.FLOAT32, value: tokens.map(() => 0) }],
          ['tokenizer.ggml.token_type', { type: GgufType.ARRAY, itemType: GgufType.INT32, value: types }],
          ['tokenizer.ggml.unknown_token_id', u32(0)],
          ['tokenizer.ggml.bos_token_id', u32(1)],
          ['tokenizer.ggml.eos_token_id', u32(2)],
          ['tokenizer.ggml.add_bos_token', { type: GgufType.BOOL, value: true }],
          ['tokenizer.ggml.add_space_prefix', { type: GgufType.BOOL, value: false }]
        ] satisfies Array<[string, GgufValue]>
      : [
          ['tokenizer.ggml.model', { type: GgufType.STRING, value: 'gpt2' }],
          ['tokenizer.ggml.pre', { type: GgufType.STRING, value: 'gpt-2' }],
          ['tokenizer.ggml.tokens', { type: GgufType.ARRAY, itemType: GgufType.STRING, value: tokens }],
          ['tokenizer.ggml.token_type', { type: GgufType.ARRAY, itemType: GgufType.INT32, value: types }],
          ['tokenizer.ggml.merges', { type: GgufType.ARRAY, itemType: GgufType.STRING, value: bpe.merges }],
          ['tokenizer.ggml.bos_token_id', u32(bpe.specials['<|begin_of_text|>']!)],
          ['tokenizer.ggml.eos_token_id', u32(bpe.specials['<|end_of_text|>']!)],
          ['tokenizer.ggml.eot_token_id', u32(bpe.specials['<|eot_id|>']!)],
          ['tokenizer.ggml.eom_token_id', u32(bpe.specials['<|eom_id|>']!)],
          ['tokenizer.ggml.add_bos_token', { type: GgufType.BOOL, value: true }]
        ] satisfies Array<[string, GgufValue]>),
    ['tokenizer.ggml.add_eos_token', { type: GgufType.BOOL, value: false }],
    ['tokenizer.chat_template', { type: GgufType.STRING, value: CHATML_TEMPLATE }]
  ]
  // as llama.cpp's quantizer: 2-D weight matrices whose rows are whole blocks; norms stay F32
  const qtype: GgmlWriteType = spec.quant === undefined ? GGML_TYPE_F32 : spec.quant === 'q8_0' ? GGML_TYPE_Q8_0 : GGML_TYPE_Q4_0
  const stored = tensors.map(t => t.dims.length === 2 && (t.dims[0]! % GGML_QK) === 0 ? { ...t, type: qtype } : t)
  return encodeGguf(metadata, stored)
}
