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
 * Teacher forcing: decodes `tokens` in one batch and reads the next-token distribution after
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
  const fast = first >= 0 && (o.native || grammar !== undefined) ? nativeAccess(sequence, model) : null
  if (fast !== null) {
    const r = await viaNative(fast, tokens, first, topK, Math.max(1, Math.floor(o.lanes)), grammar)
    if (r !== null) return r
  }
  if (grammar !== undefined) throw new Error('teacher forcing under a grammar needs node-llama-cpp internals this version lacks')
  return await viaControlledEvaluate(sequence, tokens, first, topK)
}

/** Whether this node-llama-cpp offers what the fast path needs (tests and `doctor`-style checks). */
export function fastTeacherForcing (sequence: LlamaContextSequence, model: LlamaModel): boolean {
  return nativeAccess(sequence, model) !== null
}

async function viaControlledEvaluate (sequence: LlamaContextSequence, tokens: readonly number[], first: number, topK: number): Promise<RawDistribution[]> {
  const gen = { probabilities: true, options: { temperature: 1, topK, topP: 1 } }
  const items: ControlledEvaluateInputItem[] = tokens.map((t, i) => i >= first ? [t as Token, { generateNext: gen }] : t as Token)
  const res = await sequence.controlledEvaluate(items)
  const out: RawDistribution[] = []
  for (let i = first; i < tokens.length; i++) {
    const probs = res[i]?.next.probabilities ?? new Map<Token, number>()
    out.push({ tokens: Int32Array.from(probs.keys()), probs: Float64Array.from(probs.values()) })
  }
  return out
}

interface NativeSampler { applyConfig: (config: unknown) => void, dispose: () => void }

interface NativeAccess {
  decode: (tokens: Token[], logits: boolean[], mapper: (batchLogitIndex: number, tokenIndex: number) => undefined, afterBatch: (stateLength: number) => Promise<void>) => Promise<unknown>
  sample: (batchLogitIndex: number, sampler: NativeSampler) => Promise<unknown>
  newSampler: () => NativeSampler
  samplerConfig: (topK: number) => unknown
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
    sample: async (batchLogitIndex, sampler) => await sampleToken.call(ctx, batchLogitIndex, sampler, true, false, false, false),
    newSampler: () => Reflect.construct(Sampler, [nativeModel]) as NativeSampler,
    samplerConfig: (topK) => resolveConfig.call(sequence, { temperature: 1, topK, topP: 1 })
  }
}

async function viaNative (n: NativeAccess, tokens: readonly number[], first: number, topK: number, lanes: number, grammar?: GrammarStates): Promise<RawDistribution[] | null> {
  const samplers: NativeSampler[] = []
  let config: unknown
  try {
    config = n.samplerConfig(topK)
    for (let i = 0; i < lanes; i++) {
      const s = n.newSampler()
      samplers.push(s)
      s.applyConfig(config)
    }
  } catch {
    for (const s of samplers) s.dispose()
    return null
  }
  const out: Array<RawDistribution | undefined> = new Array(tokens.length - first)
  const chains: Array<Promise<void>> = samplers.map(async () => {})
  let pending: Array<Promise<void>> = []
  let next = 0
  let failure: unknown
  const read = (raw: unknown, at: number): void => {
    const flat = Array.isArray(raw) ? raw[1] : undefined
    if (!Array.isArray(flat)) throw new Error('unexpected sampleToken result')
    let m = flat.length >> 1
    // under a grammar, the tokens it forbids come back with probability 0: left out
    if (grammar !== undefined) while (m > 0 && !((flat[2 * m - 1] as number) > 0)) m--
    const tk = new Int32Array(m)
    const pr = new Float64Array(m)
    for (let j = 0; j < m; j++) { tk[j] = flat[2 * j] as number; pr[j] = flat[2 * j + 1] as number }
    out[at] = { tokens: tk, probs: pr }
  }
  // a sampler reads one position at a time (its lane is sequential), so it can carry that position's grammar state
  const configure = (s: NativeSampler, at: number): void => {
    const state = grammar?.[at]
    if (state !== undefined) s.applyConfig({ ...(config as object), grammarEvaluationState: state })
  }
  try {
    // the batch's logits stay valid until the next decode: `afterBatch` holds it until every read is done
    await n.decode(tokens.slice() as Token[], tokens.map((_t, i) => i >= first), (batchLogitIndex, tokenIndex) => {
      const lane = next++ % samplers.length
      const at = tokenIndex - first
      const p = chains[lane]!.then(async () => { configure(samplers[lane]!, at); read(await n.sample(batchLogitIndex, samplers[lane]!), at) }).catch((e: unknown) => { failure ??= e })
      chains[lane] = p
      pending.push(p)
      return undefined
    }, async () => {
      const now = pending
      pending = []
      await Promise.all(now)
    })
    await Promise.all(pending)
  } finally {
    await Promise.all(chains)
    for (const s of samplers) s.dispose()
  }
  if (failure !== undefined) throw failure
  if (out.some(d => d === undefined)) throw new Error('teacher forcing: a position was not read')
  return out as RawDistribution[]
}
