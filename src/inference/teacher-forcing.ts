import type { ControlledEvaluateInputItem, LlamaContextSequence, LlamaModel, Token } from 'node-llama-cpp'

/** A next-token distribution at temperature 1, most likely first (possibly only its head, renormalized). */
export interface RawDistribution { tokens: Int32Array, probs: Float64Array }

export interface TeacherForceOptions {
  /** Sampler calls in flight at once. Default 4: libuv's worker threads (UV_THREADPOOL_SIZE). */
  lanes: number
  /** Use the fast path when available. Default true; false runs `controlledEvaluate` (tests compare the two). */
  native: boolean
}

export const defaultTeacherForceOptions: TeacherForceOptions = { lanes: 4, native: true }

/**
 * A grammar's state at each read position (`tokens.length - first` of them, native
 * AddonGrammarEvaluationState handles): the distribution at a position is then the grammar's
 * mask applied before the chain, as a constrained miner samples it. Forbidden tokens are left
 * out of the result. Only the native path can do it.
 */
export type GrammarStates = readonly unknown[]

/**
 * Teacher forcing: decodes `tokens` in batches (`batchesOf`) and reads the next-token distribution after
 * every position from `first` on (the sampler chain temperature 1 → top-k `topK` (0 = whole
 * vocabulary) → top-p 1, exactly as `controlledEvaluate` with `generateNext.probabilities`).
 *
 * Why not just `controlledEvaluate`: it reads the positions one native call after another
 * (each waits for the previous one, through one sampler) and builds a Map per position; on
 * small models those round trips to llama.cpp's worker threads cost more than the decode
 * itself. Here one decode is followed by `lanes` chains of native sampler calls in flight at
 * once, each with its own sampler, reading the flat result straight into typed arrays. The
 * numbers are the same (same native sampler, same chain, same float arithmetic).
 *
 * That path uses node-llama-cpp 3.x internals (the sequence's decode queue and the native
 * sampler binding). They are feature-checked first; when anything is missing or a call
 * fails before decoding, the public `controlledEvaluate` path runs instead, so an upgrade that
 * changes them costs speed, never results. The caller must hold the sequence exclusively.
 */
export async function teacherForce (sequence: LlamaContextSequence, model: LlamaModel, tokens: readonly number[], first: number, topK: number, options: Partial<TeacherForceOptions> = {}, grammar?: GrammarStates): Promise<RawDistribution[]> {
  const o = { ...defaultTeacherForceOptions, ...options }
  const plan = decodePlan(model)
  const fast = first >= 0 && (o.native || grammar !== undefined) ? nativeAccess(sequence, model) : null
  if (fast !== null) {
    const r = await viaNative(fast, tokens, first, topK, Math.max(1, Math.floor(o.lanes)), plan, grammar)
    if (r !== null) return r
  }
  if (grammar !== undefined) throw new Error('teacher forcing under a grammar needs node-llama-cpp internals this version lacks')
  return await viaControlledEvaluate(sequence, tokens, first, topK, plan)
}

/** Whether this node-llama-cpp offers what the fast path needs (tests and `doctor`-style checks). */
export function fastTeacherForcing (sequence: LlamaContextSequence, model: LlamaModel): boolean {
  return nativeAccess(sequence, model) !== null
}

async function viaControlledEvaluate (sequence: LlamaContextSequence, tokens: readonly number[], first: number, topK: number, plan: DecodePlan): Promise<RawDistribution[]> {
  const gen = { probabilities: true, options: { temperature: 1, topK, topP: 1 } }
  const out: RawDistribution[] = []
  await publicBatches(sequence, tokens, first, plan, () => gen, next => {
    const probs = next?.probabilities ?? new Map<Token, number>()
    out.push({ tokens: Int32Array.from(probs.keys()), probs: Float64Array.from(probs.values()) })
  })
  return out
}

type GenerateNext = NonNullable<NonNullable<Extract<ControlledEvaluateInputItem, unknown[]>[1]>['generateNext']>
interface NextResult { probabilities?: Map<Token, number>, logits?: Map<Token, number>, totalLogitWeight?: number }

/**
 * The public path: `controlledEvaluate` over the same batches as the fast path (so the same
 * numbers), reading position `at` (0 = `first`) with `gen(at)`; `read` gets each position's
 * result in order. Memory: one batch's results at a time.
 */
async function publicBatches (sequence: LlamaContextSequence, tokens: readonly number[], first: number, plan: DecodePlan, gen: (at: number) => GenerateNext, read: (next: NextResult | undefined) => void): Promise<void> {
  // an empty prompt (first = −1): nothing was decoded before the first token, so nothing is read there
  for (let i = first; i < 0; i++) read(undefined)
  for (const b of batchesOf(plan, tokens.length, first)) {
    const items: ControlledEvaluateInputItem[] = []
    for (let i = b.start; i < b.end; i++) items.push(i >= first ? [tokens[i] as Token, { generateNext: gen(i - first) }] : tokens[i] as Token)
    const res = await sequence.controlledEvaluate(items)
    for (let i = Math.max(b.start, first); i < b.end; i++) read(res[i - b.start]?.next as NextResult | undefined)
  }
}

interface NativeSampler { applyConfig: (config: unknown) => void, dispose: () => void }

interface NativeAccess {
  decode: (tokens: Token[], logits: boolean[], mapper: (batchLogitIndex: number, tokenIndex: number) => undefined, afterBatch: (stateLength: number) => Promise<void>) => Promise<unknown>
  sample: (batchLogitIndex: number, sampler: NativeSampler, args?: unknown[]) => Promise<unknown>
  newSampler: () => NativeSampler
  samplerConfig: (topK: number, temperature?: number) => unknown
}

type Obj = Record<string, unknown>
const isObj = (x: unknown): x is Obj => typeof x === 'object' && x !== null
const isFn = (x: unknown): x is (...args: unknown[]) => unknown => typeof x === 'function'

/** The internals the fast path needs, or null when this node-llama-cpp does not have them. */
function nativeAccess (sequence: LlamaContextSequence, model: LlamaModel): NativeAccess | null {
  const seq = sequence as unknown as Obj
  const context = seq.context as unknown
  if (!isObj(context)) return null
  const ctx = context._ctx
  const llama = context._llama
  const nativeModel = (model as unknown as Obj)._model
  const bindings = isObj(llama) ? llama._bindings : undefined
  const Sampler = isObj(bindings) ? bindings.AddonSampler : undefined
  const decodeTokens = seq._decodeTokens
  const resolveConfig = seq._resolveSamplerConfig
  const shift = seq._contextShift
  const afterBatch = seq._takeIntervalCheckpointIfNeededAfterBatch
  if (!isObj(ctx) || !isFn(ctx.sampleToken) || !isFn(Sampler) || nativeModel === undefined || !isFn(decodeTokens) || !isFn(resolveConfig) || !isObj(shift)) return null
  const sampleToken = ctx.sampleToken
  return {
    decode: async (tokens, logits, mapper, after) => await decodeTokens.call(sequence, tokens, logits, 5, seq._tokenMeter, { size: shift.size, strategy: shift.strategy }, mapper, async (len: number) => {
      await after(len)
      if (isFn(afterBatch)) await afterBatch.call(sequence, len)
    }),
    sample: async (batchLogitIndex, sampler, args = [true, false, false, false]) => await sampleToken.call(ctx, batchLogitIndex, sampler, ...args),
    newSampler: () => Reflect.construct(Sampler, [nativeModel]) as NativeSampler,
    samplerConfig: (topK, temperature = 1) => resolveConfig.call(sequence, { temperature, topK, topP: 1 })
  }
}

/**
 * Rows per decode call stay below this. llama.cpp's CPU flash-attention kernel reads fewer
 * than 64 query rows one at a time, as it does for the miner's one-token decodes, and 64 or
 * more as tiles, which round differently: teacher-forced probabilities then drift from the
 * miner's own by up to 2.4e-3 (mean 2.3e-4; 10,000 positions of tiny-llama), beyond the check's
 * 1e-3 allowance, against 6.4e-4 (mean 8e-6) below it.
 */
export const DECODE_ROWS_BELOW = 64

interface DecodePlan {
  /** Positions with logits per decode call. */
  chunk: number
}

function decodePlan (model: LlamaModel): DecodePlan {
  return { chunk: Math.min(positionsPerDecode(vocabularySize(model)), DECODE_ROWS_BELOW - 1) }
}

/** One decode call: tokens [start, end). */
interface Batch { start: number, end: number }

/**
 * The decode calls of one teacher forcing; both paths make the same ones, so they give the
 * same numbers. A prompt of 64 tokens or more is decoded alone, tiled as the miner decoded it;
 * otherwise every batch has fewer than 64 rows and at most `chunk` positions read.
 */
function batchesOf (plan: DecodePlan, n: number, first: number): Batch[] {
  const out: Batch[] = []
  let start = 0
  if (first + 1 >= DECODE_ROWS_BELOW) { out.push({ start: 0, end: Math.min(n, first + 1) }); start = first + 1 }
  while (start < n) {
    const end = Math.min(n, Math.max(first, start) + plan.chunk, start + DECODE_ROWS_BELOW - 1)
    out.push({ start, end })
    start = end
  }
  return out
}

/** One lane of native sampler calls: its own samplers, and how it reads one position. */
interface Lane<T> { read: (batchLogitIndex: number, at: number) => Promise<T>, dispose: () => void }

/** Positions whose logits one decode call asks for at least (and at most on a vocabulary of 131,072 tokens or more). */
export const TEACHER_FORCE_CHUNK = 16

/**
 * Logits one decode call may ask llama.cpp to keep: a float per vocabulary entry for each
 * position with logits, so positions × vocabulary is bounded (2^21 floats, 8 MiB: 16
 * positions of a 128k vocabulary). On a small vocabulary `DECODE_ROWS_BELOW` binds first.
 */
export const TEACHER_FORCE_LOGITS = 2 ** 21

/** The vocabulary's size from the model's file (public API); undefined when it does not say. */
export function vocabularySize (model: LlamaModel): number | undefined {
  const n = (model.fileInfo.metadata as { tokenizer?: { ggml?: { tokens?: unknown } } } | undefined)?.tokenizer?.ggml?.tokens
  return Array.isArray(n) && n.length > 0 ? n.length : undefined
}

/**
 * Up to this vocabulary, the compact path sorts the whole distribution in one native call per
 * position (a sort of 4,096 floats costs less than a second round trip to llama.cpp's threads).
 */
export const SINGLE_READ_VOCABULARY = 4096

/** Positions with logits per decode call for a vocabulary (`TEACHER_FORCE_LOGITS` floats at most, never fewer than `TEACHER_FORCE_CHUNK` positions). */
export function positionsPerDecode (vocabulary: number | undefined): number {
  return vocabulary === undefined ? TEACHER_FORCE_CHUNK : Math.max(TEACHER_FORCE_CHUNK, Math.floor(TEACHER_FORCE_LOGITS / vocabulary))
}

async function viaNative (n: NativeAccess, tokens: readonly number[], first: number, topK: number, lanes: number, plan: DecodePlan, grammar?: GrammarStates): Promise<RawDistribution[] | null> {
  return await decodeInLanes(n, tokens, first, lanes, plan, () => {
    const sampler = n.newSampler()
    let config: unknown
    try { config = n.samplerConfig(topK); sampler.applyConfig(config) } catch (e) { sampler.dispose(); throw e }
    return {
      read: async (batchLogitIndex, at) => {
        // a lane reads one position at a time, so its sampler can carry that position's grammar state
        const state = grammar?.[at]
        if (state !== undefined) sampler.applyConfig({ ...(config as object), grammarEvaluationState: state })
        return parseProbabilities(await n.sample(batchLogitIndex, sampler), grammar !== undefined)
      },
      dispose: () => sampler.dispose()
    }
  })
}

function parseProbabilities (raw: unknown, grammar: boolean): RawDistribution {
  const flat = Array.isArray(raw) ? raw[1] : undefined
  if (!Array.isArray(flat)) throw new Error('unexpected sampleToken result')
  let m = flat.length >> 1
  // under a grammar, the tokens it forbids come back with probability 0: left out
  if (grammar) while (m > 0 && !((flat[2 * m - 1] as number) > 0)) m--
  const tk = new Int32Array(m)
  const pr = new Float64Array(m)
  for (let j = 0; j < m; j++) { tk[j] = flat[2 * j] as number; pr[j] = flat[2 * j + 1] as number }
  return { tokens: tk, probs: pr }
}

/**
 * Decodes `tokens` in the plan's batches (`batchesOf`) and
 * reads every position from `first` on through `lanes` lanes in flight at once. Null when the
 * lanes cannot be set up (the caller falls back to the public path).
 */
async function decodeInLanes<T> (n: NativeAccess, tokens: readonly number[], first: number, lanes: number, plan: DecodePlan, makeLane: () => Lane<T>): Promise<T[] | null> {
  const made: Array<Lane<T>> = []
  try {
    for (let i = 0; i < lanes; i++) made.push(makeLane())
  } catch {
    for (const l of made) l.dispose()
    return null
  }
  const out: Array<T | undefined> = new Array(tokens.length - first)
  const chains: Array<Promise<void>> = made.map(async () => {})
  let pending: Array<Promise<void>> = []
  let next = 0
  let failure: unknown
  try {
    // the batch's logits stay valid until the next decode: `afterBatch` holds it until every read is done
    for (const b of batchesOf(plan, tokens.length, first)) {
      if (failure !== undefined) break
      const chunk = tokens.slice(b.start, b.end)
      const logits = chunk.map((_t, i) => b.start + i >= first)
      await n.decode(chunk as Token[], logits, (batchLogitIndex, tokenIndex) => {
        const lane = next++ % made.length
        const at = b.start + tokenIndex - first
        const p = chains[lane]!.then(async () => { out[at] = await made[lane]!.read(batchLogitIndex, at) }).catch((e: unknown) => { failure ??= e })
        chains[lane] = p
        pending.push(p)
        return undefined
      }, async () => {
        const now = pending
        pending = []
        await Promise.all(now)
      })
      await Promise.all(pending)
    }
  } finally {
    await Promise.all(chains)
    for (const l of made) l.dispose()
  }
  if (failure !== undefined) throw failure
  if (out.some(d => d === undefined)) throw new Error('teacher forcing: a position was not read')
  return out as T[]
}

/**
 * A next-token distribution in O(`top`) memory, for a vocabulary too large to copy per
 * position: the `top` most likely tokens with their raw logits (most likely first), the raw
 * logits of a few `extra` tokens wherever they rank (the token actually drawn next, the end
 * tokens), and the normalizers over the whole vocabulary: `lse` = log Σ exp(logit) and, when a
 * temperature T ≠ 1 was asked for, `lseT` = log Σ exp(logit / T). With those, the sampler's
 * probability of any listed token is exact, and so is the total of the rest (see llm-check.ts).
 */
export interface CompactDistribution {
  tokens: Int32Array
  logits: Float64Array
  extraTokens: Int32Array
  extraLogits: Float64Array
  lse: number
  lseT?: number
}

export interface CompactRequest {
  /** Most likely tokens kept per position. */
  top: number
  /** Temperature for `lseT` (omitted or 1: not computed). */
  temperature?: number
  /** Tokens whose logits are read at every position, besides the next output token. */
  extra: readonly number[]
}

/**
 * Teacher forcing that keeps O(`top`) numbers per position (`CompactDistribution`): the sums
 * over the vocabulary are taken inside llama.cpp, and only the head crosses to JavaScript, on
 * the fast path and on the public fallback alike (see `compactViaControlledEvaluate`).
 */
export async function teacherForceCompact (sequence: LlamaContextSequence, model: LlamaModel, tokens: readonly number[], first: number, req: CompactRequest, options: Partial<TeacherForceOptions> = {}): Promise<CompactDistribution[]> {
  const o = { ...defaultTeacherForceOptions, ...options }
  const top = Math.max(1, Math.floor(req.top))
  const extraAt = (at: number): number[] => {
    const next = tokens[first + at + 1]
    return next === undefined ? [...req.extra] : [next, ...req.extra]
  }
  const tempered = req.temperature !== undefined && req.temperature > 0 && req.temperature !== 1
  const plan = decodePlan(model)
  const fast = first >= 0 && o.native ? nativeAccess(sequence, model) : null
  if (fast !== null) {
    const vocabulary = vocabularySize(model)
    // a small vocabulary is sorted whole in one native call per position (head, listed logits
    // and the sum together); a large one takes two, the head through a top-k sampler (a partial
    // sort) and the sums through a chain without top-k; at another temperature one more for its sum
    const single = vocabulary !== undefined && vocabulary <= SINGLE_READ_VOCABULARY
    const noTopK = (config: unknown): unknown => { if (isObj(config)) { const c = { ...config }; delete c.topK; return c } return config }
    const r = await decodeInLanes(fast, tokens, first, Math.max(1, Math.floor(o.lanes)), plan, () => {
      const made: NativeSampler[] = []
      const sampler = (config: unknown): NativeSampler => { const x = fast.newSampler(); made.push(x); x.applyConfig(config); return x }
      const dispose = (): void => { for (const x of made) x.dispose() }
      try {
        const head = single ? null : sampler(fast.samplerConfig(top))
        const sums = sampler(noTopK(fast.samplerConfig(0)))
        const temp = tempered ? sampler(noTopK(fast.samplerConfig(0, req.temperature))) : null
        return {
          read: async (batchLogitIndex, at) => {
            const extra = extraAt(at)
            let d: CompactDistribution
            if (head === null) {
              const b = await fast.sample(batchLogitIndex, sums, [false, false, [extra, false, false, false, top], true])
              d = parseCompact(b, b, Math.min(top, vocabulary ?? top), extra)
            } else {
              const a = await fast.sample(batchLogitIndex, head, [false, false, [[], false, false, false, top], false])
              const b = await fast.sample(batchLogitIndex, sums, [false, false, [extra, false, false, false, 0], true])
              d = parseCompact(a, b, top, extra)
            }
            if (temp !== null) d.lseT = (d.logits[0] ?? 0) / req.temperature! + Math.log(weightOf(await fast.sample(batchLogitIndex, temp, [false, false, [[], false, false, false, 0], true])))
            return d
          },
          dispose
        }
      } catch (e) { dispose(); throw e }
    })
    if (r !== null) return r
  }
  return await compactViaControlledEvaluate(sequence, tokens, first, top, extraAt, tempered ? req.temperature : undefined, plan)
}

/**
 * The compact path through the public API, O(`top`) numbers per position as well: each
 * position asks `controlledEvaluate` for the `top` highest logits, the listed tokens' logits and
 * Σ exp(logit − max) (llama.cpp sorts the whole vocabulary for the head there: O(V log V) time
 * per position, O(V) native scratch, nothing O(V) kept). At another temperature the job is
 * decoded a second time for that temperature's sum (one position takes one sampler chain).
 */
async function compactViaControlledEvaluate (sequence: LlamaContextSequence, tokens: readonly number[], first: number, top: number, extraAt: (at: number) => number[], temperature: number | undefined, plan: DecodePlan): Promise<CompactDistribution[]> {
  const begin = sequence.nextTokenIndex
  const out: CompactDistribution[] = []
  let at = 0
  await publicBatches(sequence, tokens, first, plan, i => ({ logits: { filter: { tokens: extraAt(i) as Token[], includeTop: top } }, totalLogitWeight: true, options: { temperature: 1, topK: 0, topP: 1 } }), next => {
    // before an empty prompt's first token: no distribution (every token outside it)
    out.push(first + at < 0 ? { tokens: new Int32Array(0), logits: new Float64Array(0), extraTokens: new Int32Array(0), extraLogits: new Float64Array(0), lse: -Infinity } : compactFromMap(next, top, extraAt(at)))
    at++
  })
  if (temperature !== undefined) {
    await sequence.eraseContextTokenRanges([{ start: begin, end: sequence.nextTokenIndex }])
    at = 0
    await publicBatches(sequence, tokens, first, plan, () => ({ totalLogitWeight: true, options: { temperature, topK: 0, topP: 1 } }), next => {
      const d = out[at++]
      if (d !== undefined && d.tokens.length === 0) return
      const w = next?.totalLogitWeight
      if (d === undefined || typeof w !== 'number' || !(w > 0) || !Number.isFinite(w)) throw new Error('unexpected controlledEvaluate result')
      d.lseT = (d.logits[0] ?? 0) / temperature + Math.log(w)
    })
  }
  return out
}

/** One position from `controlledEvaluate`: its logits map is the head (most likely first), then the listed tokens not in it. */
function compactFromMap (next: NextResult | undefined, top: number, extra: readonly number[]): CompactDistribution {
  const map = next?.logits
  const w = next?.totalLogitWeight
  if (map === undefined || map.size === 0 || typeof w !== 'number' || !(w > 0) || !Number.isFinite(w)) throw new Error('unexpected controlledEvaluate result')
  // a vocabulary smaller than `top` is all head (and the listed tokens are in it)
  const h = Math.min(top, map.size)
  const tokens = new Int32Array(h)
  const logits = new Float64Array(h)
  let j = 0
  for (const [t, l] of map) { if (j >= h) break; tokens[j] = t; logits[j] = l; j++ }
  const et: number[] = []
  const el: number[] = []
  for (const t of extra) { const l = map.get(t as Token); if (l !== undefined && !et.includes(t)) { et.push(t); el.push(l) } }
  return { tokens, logits, extraTokens: Int32Array.from(et), extraLogits: Float64Array.from(el), lse: (logits[0] ?? 0) + Math.log(w) }
}

function weightOf (raw: unknown): number {
  const weight = Array.isArray(raw) ? raw[4] : undefined
  if (typeof weight !== 'number' || !(weight > 0) || !Number.isFinite(weight)) throw new Error('unexpected sampleToken result')
  return weight
}

/**
 * Head call ([.., .., .., head logits flat]) and sums call ([.., .., .., listed logits flat, Σ
 * exp(logit − max)]) → compact. One call can be both (`headRaw === sumsRaw`): its list is then
 * the `top` head entries followed by the listed ones.
 */
function parseCompact (headRaw: unknown, sumsRaw: unknown, top: number, extra: readonly number[]): CompactDistribution {
  const flat = Array.isArray(headRaw) ? headRaw[3] : undefined
  const listed = Array.isArray(sumsRaw) ? sumsRaw[3] : undefined
  const weight = weightOf(sumsRaw)
  if (!Array.isArray(flat) || !Array.isArray(listed) || flat.length < 2) throw new Error('unexpected sampleToken result')
  const one = headRaw === sumsRaw
  if (one && flat.length < 2 * top) throw new Error('unexpected sampleToken result')
  const h = Math.min(top, flat.length >> 1)
  const tokens = new Int32Array(h)
  const logits = new Float64Array(h)
  for (let j = 0; j < h; j++) { tokens[j] = flat[2 * j] as number; logits[j] = flat[2 * j + 1] as number }
  const et: number[] = []
  const el: number[] = []
  for (const t of extra) {
    if (et.includes(t)) continue
    for (let j = one ? 2 * h : 0; j + 1 < listed.length; j += 2) if (listed[j] === t) { et.push(t); el.push(listed[j + 1] as number); break }
  }
  // the weight is Σ exp(logit − max) over the vocabulary; the max is the head's first logit
  return { tokens, logits, extraTokens: Int32Array.from(et), extraLogits: Float64Array.from(el), lse: (logits[0] ?? 0) + Math.log(weight) }
}

/** A whole distribution (probabilities at temperature 1) reduced to the compact form. */
export function compactOf (d: RawDistribution, top: number, extra: readonly number[], temperature?: number): CompactDistribution {
  const h = Math.min(top, d.probs.length)
  const logit = (i: number): number => Math.log(Math.max(d.probs[i] ?? 0, 1e-300))
  const et: number[] = []
  const el: number[] = []
  for (const t of extra) {
    if (et.includes(t)) continue
    const i = d.tokens.indexOf(t)
    if (i >= 0) { et.push(t); el.push(logit(i)) }
  }
  let total = 0
  let totalT = 0
  const T = temperature !== undefined && temperature > 0 ? temperature : 1
  for (let i = 0; i < d.probs.length; i++) { total += d.probs[i] ?? 0; totalT += Math.exp(logit(i) / T) }
  return {
    tokens: d.tokens.slice(0, h),
    logits: Float64Array.from({ length: h }, (_x, i) => logit(i)),
    extraTokens: Int32Array.from(et),
    extraLogits: Float64Array.from(el),
    lse: Math.log(total),
    ...(T !== 1 ? { lseT: Math.log(totalT) } : {})
  }
}
