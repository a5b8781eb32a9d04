import { z } from 'zod'
import { HeuristError } from '../../core/errors.js'

/**
 * CLIP's byte-level BPE tokenizer (openai/CLIP `simple_tokenizer.py`, as the SD 1.5 export's
 * `tokenizer/vocab.json` + `merges.txt` define it): lower-cased, whitespace-collapsed text,
 * split by CLIP's pattern, each piece mapped through GPT-2's byte→unicode table and merged by
 * rank, the last symbol of a word carrying `</w>`. The sequence is `<|startoftext|>`, at most
 * 75 tokens, `<|endoftext|>`, then padding to 77 with the pad token (`<|endoftext|>` in SD 1.5).
 * Not done: ftfy's mojibake repair and HTML unescaping (they do not change plain prompts).
 */

export const CONTEXT_LENGTH = 77
const MAX_VOCAB_BYTES = 16 * 1024 * 1024
const MAX_MERGES_BYTES = 16 * 1024 * 1024
const MAX_PROMPT_CHARS = 8192

const PATTERN = /<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+/giu

/** GPT-2's reversible byte → printable unicode character table. */
export function bytesToUnicode (): string[] {
  const bs: number[] = []
  for (let b = 33; b <= 126; b++) bs.push(b)
  for (let b = 161; b <= 172; b++) bs.push(b)
  for (let b = 174; b <= 255; b++) bs.push(b)
  const cs = [...bs]
  let n = 0
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) { bs.push(b); cs.push(256 + n); n++ }
  }
  const table: string[] = new Array<string>(256)
  bs.forEach((b, i) => { table[b] = String.fromCodePoint(cs[i] ?? 0) })
  return table
}

const BYTE_CHARS = bytesToUnicode()

/** The byte characters in the order CLIP's vocabulary lists them (printable bytes first). */
export function byteCharsInVocabOrder (): string[] {
  const printable: string[] = []
  const rest: string[] = []
  BYTE_CHARS.forEach((c, b) => { ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255) ? printable : rest).push(c) })
  return [...printable, ...rest]
}

/** Splits a prompt into CLIP's pre-tokens, each already in byte-unicode characters. */
export function preTokenize (text: string): string[] {
  const clean = text.replace(/\s+/g, ' ').trim().toLowerCase()
  const out: string[] = []
  for (const m of clean.matchAll(PATTERN)) {
    const bytes = new TextEncoder().encode(m[0])
    out.push(Array.from(bytes, b => BYTE_CHARS[b] ?? '').join(''))
  }
  return out
}

const vocabSchema = z.record(z.string().max(1024), z.number().int().min(0).max(10_000_000))

export class ClipTokenizer {
  readonly startId: number
  readonly endId: number
  readonly padId: number
  readonly vocabSize: number
  private readonly vocab: Map<string, number>
  private readonly ranks: Map<string, number>
  private readonly cache = new Map<string, string[]>()

  constructor (vocab: Record<string, number>, merges: Array<[string, string]>, padToken = '<|endoftext|>') {
    this.vocab = new Map(Object.entries(vocab))
    this.ranks = new Map(merges.map(([a, b], i) => [`${a} ${b}`, i]))
    const id = (t: string): number => {
      const v = this.vocab.get(t)
      if (v === undefined) throw new HeuristError('IMAGE_MODEL_BAD_TOKENIZER', `tokenizer vocab has no ${t}`)
      return v
    }
    this.startId = id('<|startoftext|>')
    this.endId = id('<|endoftext|>')
    this.padId = id(padToken)
    let max = 0
    for (const v of this.vocab.values()) if (v > max) max = v
    this.vocabSize = max + 1
  }

  /** Parses `vocab.json` and `merges.txt` (text), with size bounds and a schema. */
  static fromFiles (vocabJson: string, mergesTxt: string): ClipTokenizer {
    if (vocabJson.length > MAX_VOCAB_BYTES) throw new HeuristError('IMAGE_MODEL_BAD_TOKENIZER', 'tokenizer/vocab.json is over 16 MB')
    if (mergesTxt.length > MAX_MERGES_BYTES) throw new HeuristError('IMAGE_MODEL_BAD_TOKENIZER', 'tokenizer/merges.txt is over 16 MB')
    let raw: unknown
    try { raw = JSON.parse(vocabJson) } catch (e) {
      throw new HeuristError('IMAGE_MODEL_BAD_TOKENIZER', `tokenizer/vocab.json is not JSON: ${(e as Error).message}`)
    }
    const parsed = vocabSchema.safeParse(raw)
    if (!parsed.success) throw new HeuristError('IMAGE_MODEL_BAD_TOKENIZER', 'tokenizer/vocab.json must map token strings to integer ids')
    const merges: Array<[string, string]> = []
    for (const line of mergesTxt.split('\n')) {
      if (line.startsWith('#version') || line.trim() === '') continue
      const parts = line.replace(/\r$/, '').split(' ')
      if (parts.length !== 2 || parts[0] === '' || parts[1] === '') throw new HeuristError('IMAGE_MODEL_BAD_TOKENIZER', `tokenizer/merges.txt: bad line ${JSON.stringify(line.slice(0, 80))}`)
      merges.push([parts[0] as string, parts[1] as string])
    }
    return new ClipTokenizer(parsed.data, merges)
  }

  /** BPE of one pre-token: its vocabulary pieces. */
  bpe (token: string): string[] {
    const hit = this.cache.get(token)
    if (hit !== undefined) return hit
    const chars = Array.from(token)
    if (chars.length === 0) return []
    let word = [...chars.slice(0, -1), `${chars[chars.length - 1] ?? ''}</w>`]
    while (word.length > 1) {
      let best = -1
      let bestRank = Infinity
      for (let i = 0; i < word.length - 1; i++) {
        const r = this.ranks.get(`${word[i] ?? ''} ${word[i + 1] ?? ''}`)
        if (r !== undefined && r < bestRank) { bestRank = r; best = i }
      }
      if (best < 0) break
      const a = word[best] ?? ''
      const b = word[best + 1] ?? ''
      const next: string[] = []
      for (let i = 0; i < word.length;) {
        if (i < word.length - 1 && word[i] === a && word[i + 1] === b) { next.push(a + b); i += 2 } else { next.push(word[i] ?? ''); i++ }
      }
      word = next
    }
    if (this.cache.size < 10_000) this.cache.set(token, word)
    return word
  }

  /** Token ids of the text, without start/end markers (unknown pieces map to `<|endoftext|>`). */
  encode (text: string): number[] {
    if (text.length > MAX_PROMPT_CHARS) throw new HeuristError('IMAGE_PROMPT_TOO_LONG', `prompt is over ${MAX_PROMPT_CHARS} characters`, { usage: true })
    const ids: number[] = []
    for (const t of preTokenize(text)) {
      for (const piece of this.bpe(t)) ids.push(this.vocab.get(piece) ?? this.endId)
    }
    return ids
  }

  /** The 77 ids the text encoder takes: start, up to 75 tokens (truncated), end, padding. */
  encodeForModel (text: string): { ids: number[], truncated: boolean } {
    const body = this.encode(text)
    const truncated = body.length > CONTEXT_LENGTH - 2
    const ids = [this.startId, ...body.slice(0, CONTEXT_LENGTH - 2), this.endId]
    while (ids.length < CONTEXT_LENGTH) ids.push(this.padId)
    return { ids, truncated }
  }
}

/**
 * Trains a small BPE vocabulary on `corpus` the way CLIP's was laid out: the 256 byte
 * characters, the same with `</w>`, one entry per merge, then the two special tokens.
 * Merges are chosen by pair frequency, ties broken by the pair's text, so the result is
 * deterministic. Used for the built-in tiny models.
 */
export function trainTinyBpe (corpus: string, merges: number): { vocab: Record<string, number>, merges: Array<[string, string]> } {
  const words = new Map<string, number>()
  for (const t of preTokenize(corpus)) words.set(t, (words.get(t) ?? 0) + 1)
  let split = [...words.entries()].map(([w, n]) => {
    const cs = Array.from(w)
    return { syms: [...cs.slice(0, -1), `${cs[cs.length - 1] ?? ''}</w>`], n }
  })
  const chosen: Array<[string, string]> = []
  for (let m = 0; m < merges; m++) {
    const counts = new Map<string, number>()
    for (const { syms, n } of split) {
      for (let i = 0; i < syms.length - 1; i++) {
        const k = `${syms[i] ?? ''} ${syms[i + 1] ?? ''}`
        counts.set(k, (counts.get(k) ?? 0) + n)
      }
    }
    let best: string | undefined
    let bestN = 1
    for (const [k, n] of counts) if (n > bestN || (n === bestN && best !== undefined && k < best)) { best = k; bestN = n }
    if (best === undefined) break
    const [a, b] = best.split(' ') as [string, string]
    chosen.push([a, b])
    split = split.map(({ syms, n }) => {
      const next: string[] = []
      for (let i = 0; i < syms.length;) {
        if (i < syms.length - 1 && syms[i] === a && syms[i + 1] === b) { next.push(a + b); i += 2 } else { next.push(syms[i] ?? ''); i++ }
      }
      return { syms: next, n }
    })
  }
  const base = byteCharsInVocabOrder()
  const list = [...base, ...base.map(c => `${c}</w>`), ...chosen.map(([a, b]) => a + b), '<|startoftext|>', '<|endoftext|>']
  const vocab: Record<string, number> = {}
  list.forEach((t, i) => { if (!(t in vocab)) vocab[t] = i })
  return { vocab, merges: chosen }
}
