import { stopStrings, type ChatMessage, type CompactDistribution, type OutputConstraint, type SamplingParams } from '../inference/index.js'

/**
 * The LLM check (DESIGN.md §7): text is not reproducible across hardware, so a validator
 * teacher-forces prompt + returned tokens through the claimed model, rebuilds the miner's
 * sampling distribution at every position from the model's raw distribution (the same chain
 * llama.cpp runs in node-llama-cpp: top-k → top-p on the untempered softmax → temperature →
 * draw; greedy when temperature is 0), and asks three questions.
 *
 * 1. Support (deterministic, per job). Was every returned token one the sampler could have
 *    drawn? A token is in the support when fewer than top-k tokens, and less than top-p of
 *    the top-k mass, have a logit above its own by more than `logitTolerance`. Batched and
 *    one-at-a-time evaluation differ by about 1e-3 in probability (the same in logits), so the
 *    default 0.05 leaves a fifty-fold margin: an honest miner on the same build never trips it.
 *    For `finishReason: 'length'` the job must have as many tokens as it was allowed; for
 *    `'stop'` the end must be legitimate (an end-of-generation token in the support after the
 *    last token, a stop string completed by the last token, or the chat template's stop
 *    sequence). Anything else is `truncated`.
 *
 * 2. Likelihood (statistical, per miner over a window of sampled jobs). For each token, the
 *    mid-rank probability integral transform u = Σ_{π_j > π_t} π_j + π_t / 2 under the rebuilt
 *    sampling distribution π. If the miner really drew t from π, then E[u | past] = 1/2 exactly
 *    and Var[u | past] = (1 − Σ π³)/12 ≤ 1/12, whatever the model. So D = Σ (u_i − 1/2) over
 *    the window's N tokens is a martingale with increments in [−1/2, 1/2] and predictable
 *    variance at most N/12, and Freedman's inequality bounds each tail:
 *        P(D ≥ t) ≤ exp(−t² / (2 (N/12 + t/6))).
 *    Setting the right side to α/2 gives t = L/6 + √(L²/36 + L·N/6), L = ln(2/α). A window
 *    fails when |D| ≥ t: tokens less likely than the model's own (D > 0: higher temperature,
 *    another model, random tokens) or more likely (D < 0: greedy or cached text sold as
 *    sampled). With α fixed in advance (default 1e-9 per window test, both tails together),
 *    a miner tested after every one of its sampled jobs is wrongly failed with probability at
 *    most α per test, so at most 1e-6 over 1,000 sampled jobs, by the union bound (Bonferroni).
 *    This is the log-likelihood comparison in rank form: log π_t against what the model would
 *    produce, with a bound that holds for any distribution and any window, so no calibration
 *    run is needed. `logLikelihood` and `expectedLogLikelihood` are reported beside it.
 *
 * 3. Where jobs end. A job that ends on an end-of-generation token at position k did so with
 *    probability q_k, the sampler's probability of an end there; the model, not the miner,
 *    decides where a job ends. Its end p-value is P = min(1, A · q_k · e^(2·logitTolerance)),
 *    A the positions the job could have ended at (`min(max tokens, context − prompt)`) and the
 *    factor the same drift margin as the support test (a logit each for the end token and the
 *    normalizer); P = 1 for every other end (max tokens, a stop string, the chat template's
 *    stop, an abort). For an honest miner P(P ≤ x) ≤ E[Σ_k q_k·1{q_k ≤ x/A}] ≤ x whatever the
 *    model, so P is a valid p-value, and it is so given every earlier job too. Per job, P ≤ α
 *    fails the job alone (`truncated`); per window, Fisher's combination −Σ ln P_j over the
 *    window's m jobs is at most Gamma(m, 1) for honest jobs, and fails at tail probability α
 *    (`endPValueTest`). A miner that cuts jobs short and calls it a natural stop ends where
 *    the model would almost never end: at the gateway's defaults (top-k off, every end token
 *    in the support, so the support test cannot see it) its P is tiny on every such job.
 *    Beside it, the end statistic (see `endThreshold`) also sees the other direction: a miner
 *    that never ends where the model would (padding the jobs it bills).
 *    Each of these has its own α: a job is wrongly failed alone with probability at most α,
 *    a window at most 3α (PIT, end statistic, end p-values).
 *
 * u, q and P are deterministic (no validator randomness), so every validator that checks the
 * same jobs reaches the same verdict: that is what lets their signatures form a quorum.
 */

export interface LlmCheckOptions {
  /** Logit slack for the support test. Default 0.05: fifty times the drift between batched and sequential evaluation. */
  logitTolerance: number
  /** Slack on top-p for the support test. Default 1e-3 (the same drift, in probability). */
  topPTolerance: number
  /** False-positive rate of one window test, both tails. Default 1e-9 (see above). */
  alpha: number
  /** Sampled jobs per miner in the window. Default 20: the detection budget. */
  window: number
  /**
   * Tokens beyond top-k fetched per position, to see near ties at the boundary. Default 8.
   * With top-k on, only top-k + this many tokens cross from llama.cpp (the full vocabulary per
   * position costs more than the model on small models); with top-k off, all of them do.
   */
  boundaryMargin: number
  /**
   * With top-k off, the most likely tokens read per position (`scoreCompact`). Default 128.
   * Memory per position is O(this), not O(vocabulary).
   */
  compactTop: number
}

export const defaultLlmCheckOptions: LlmCheckOptions = { logitTolerance: 0.05, topPTolerance: 1e-3, alpha: 1e-9, window: 20, boundaryMargin: 8, compactTop: 128 }

/**
 * A raw next-token distribution (temperature 1, no filters), most likely first; possibly only
 * its head, renormalized (only ratios matter here).
 */
export interface TokenDistribution { tokens: Int32Array, probs: Float64Array }

/** What the check needs from the LLM engine (the llama engine implements it). */
export interface TeacherForcingModel {
  /** `prompt`, when given, is what `promptTokens` returns for the same input (saves formatting it twice). */
  /**
   * With `constraint`, each distribution is under the grammar's mask at that position (what a
   * constrained miner samples from) and `forbidden` is the index of the first output token the
   * grammar forbids (−1: none).
   */
  tokenDistributions: (modelId: string, input: string | ChatMessage[], outputTokens: readonly number[], options?: { signal?: AbortSignal, top?: number, constraint?: OutputConstraint }) => Promise<{ distributions: TokenDistribution[], eogTokens: number[], prompt?: { tokens: number[], stopTokens: number[][] }, forbidden?: number }>
  /**
   * Teacher forcing in O(`top`) memory per position (the llama engine has it); used with
   * top-k off, where `tokenDistributions` would copy the whole vocabulary per position.
   */
  compactDistributions?: (modelId: string, input: string | ChatMessage[], outputTokens: readonly number[], options: { signal?: AbortSignal, top: number, temperature?: number }) => Promise<{ distributions: CompactDistribution[], eogTokens: number[], prompt?: { tokens: number[], stopTokens: number[][] } }>
  promptTokens: (modelId: string, input: string | ChatMessage[]) => { tokens: number[], stopTokens: number[][] }
  detokenize: (modelId: string, tokens: readonly number[], specialTokens?: boolean) => string
  loaded: () => Array<{ id: string, contextSize: number }>
  /** Re-embeds texts with the model (embedding jobs); absent: this validator checks none. */
  embed?: (modelId: string, texts: readonly string[], options?: { signal?: AbortSignal }) => Promise<{ vectors: Float32Array[], promptTokens: number }>
}

export interface LlmJob {
  modelId: string
  input: string | ChatMessage[]
  sampling: SamplingParams
  /** The grammar the job was asked to follow; absent = free text. */
  constraint?: OutputConstraint
  /** `contextSize`: the miner's context, as it signed it; absent = this validator's own. */
  output: { text: string, tokens: number[], finishReason: 'stop' | 'length' | 'abort', contextSize?: number }
}

export interface LlmJobScore {
  /** Draws scored: the output tokens, plus the end token when the job ended on one. */
  tokens: number
  /** Tokens the sampler could not have drawn. */
  outsideSupport: number
  /** Index of the first such token, −1 when none. */
  firstOutside: number
  /** The job ended where it could not have ended, or where the model would almost never end (end p-value ≤ α). */
  truncated: boolean
  /** Σ (u − 1/2) over the job's tokens (see the module comment). */
  pitSum: number
  /** Σ log π(t) under the rebuilt sampling distribution (−Infinity when a token is outside). */
  logLikelihood: number
  /** Σ E_π[log π]: what the model itself would score on average. */
  expectedLogLikelihood: number
  /**
   * The end statistic (see `windowTest`): Σ over draws of 1{an end token was drawn} − q, with q
   * the sampler's probability of drawing one there, and Σ q(1 − q). Undefined when some q is not
   * known (a near tie at a boundary, a nucleus longer than the compact head).
   */
  endSum?: number
  endVar?: number
  /**
   * The end p-value (module comment, 3): min(1, A · q · e^(2·logitTolerance)) for a job that
   * ended on an end token, q the sampler's probability of an end there; 1 for any other end
   * and when q is not known. Undefined under a grammar or for a model without end tokens.
   */
  endP?: number
  /** True when the job fails on its own (support or truncation). */
  fail: boolean
}

/** The sampler's distribution at one position, and where a token stands in it. */
export interface PositionScore {
  inSupport: boolean
  /** Mid-rank PIT u ∈ [0, 1]. */
  u: number
  logP: number
  expectedLogP: number
  /** The sampler's exact probability of the token: 0 outside the support; undefined when not known (a near tie at a boundary, a nucleus longer than the compact head). */
  p: number | undefined
}

/**
 * Scores one token against the raw distribution `d` under `s` (see the module comment for
 * the chain). Pure; exported for tests and the benchmark.
 */
export function scorePosition (d: TokenDistribution, token: number, s: SamplingParams, o: LlmCheckOptions = defaultLlmCheckOptions): PositionScore {
  const n = d.probs.length
  let rank = -1
  for (let i = 0; i < n; i++) if (d.tokens[i] === token) { rank = i; break }
  const logit = (i: number): number => Math.log(Math.max(d.probs[i] ?? 0, 1e-300))
  if (n === 0) return { inSupport: false, u: 1, logP: -Infinity, expectedLogP: 0, p: 0 }
  if (rank < 0) {
    // not in the head we were given: outside, unless the head ends in a near tie with the
    // last token the sampler keeps (then it cannot be told apart: scored neutrally)
    const kk = s.temperature === 0 ? 1 : s.topK > 0 ? Math.min(s.topK, n) : n
    const tie = kk < n && logit(kk - 1) - logit(n - 1) <= o.logitTolerance
    return tie ? { inSupport: true, u: 0.5, logP: 0, expectedLogP: 0, p: undefined } : { inSupport: false, u: 1, logP: -Infinity, expectedLogP: 0, p: 0 }
  }
  const lt = logit(rank)

  if (s.temperature === 0) {
    // greedy: only the argmax (within the tolerance for near ties)
    const inSupport = logit(0) - lt <= o.logitTolerance
    return { inSupport, u: 0.5, logP: inSupport ? 0 : -Infinity, expectedLogP: 0, p: rank === 0 ? 1 : inSupport ? undefined : 0 }
  }

  // top-k, then top-p on the softmax of the survivors at temperature 1
  const k = s.topK > 0 ? Math.min(s.topK, n) : n
  let massK = 0
  for (let i = 0; i < k; i++) massK += d.probs[i] ?? 0
  let keep = k
  let cum = 0
  for (let i = 0; i < k; i++) {
    cum += (d.probs[i] ?? 0) / massK
    if (cum >= s.topP) { keep = i + 1; break }
  }

  // support with tolerance: count and mass of tokens clearly above this one
  let above = 0
  let aboveMass = 0
  for (let i = 0; i < n; i++) {
    if (logit(i) - lt > o.logitTolerance) { above++; if (i < k) aboveMass += (d.probs[i] ?? 0) / massK } else break
  }
  const inSupport = above < k && aboveMass < s.topP + o.topPTolerance

  // temperature over the kept tokens
  const inv = 1 / s.temperature
  const w = new Float64Array(keep)
  const l0 = logit(0)
  let z = 0
  for (let i = 0; i < keep; i++) { w[i] = Math.exp((logit(i) - l0) * inv); z += w[i] ?? 0 }
  let expectedLogP = 0
  for (let i = 0; i < keep; i++) { const p = (w[i] ?? 0) / z; if (p > 0) expectedLogP += p * Math.log(p) }
  if (rank >= keep) {
    // in the tolerant support but cut by the exact chain: a boundary token, scored neutrally
    return { inSupport, u: 0.5, logP: inSupport ? expectedLogP : -Infinity, expectedLogP, p: inSupport ? undefined : 0 }
  }
  let before = 0
  for (let i = 0; i < rank; i++) before += (w[i] ?? 0) / z
  const p = (w[rank] ?? 0) / z
  return { inSupport, u: before + p / 2, logP: Math.log(p), expectedLogP, p }
}

/**
 * `scorePosition` for top-k off (temperature > 0) on a `CompactDistribution`: the head of the
 * raw distribution, the token's own logit and the normalizers over the whole vocabulary.
 * - The nucleus ends inside the head (top-p < 1 reached there): every kept token is listed,
 *   and the score is exactly `scorePosition`'s.
 * - top-p = 1: the sampler's probability of every listed token is exact (the normalizer is over
 *   the whole vocabulary); the tokens outside the head count as one category, ranked last. The
 *   mid-rank PIT of any categorical in a fixed order still has E[u] = 1/2 and Var[u] ≤ 1/12,
 *   so the window test's bound holds unchanged; a token in the tail gets the category's u.
 * - top-p < 1 with a nucleus longer than the head (a flat distribution): the kept mass beyond
 *   the head is unknown, so u is the PIT within the head given that the draw fell in it
 *   (conditional mean 1/2 again), and 1/2 for a draw outside it; such a token is not failed
 *   by the support test (it cannot be told apart from one inside the nucleus).
 */
export function scoreCompact (c: CompactDistribution, token: number, s: SamplingParams, o: LlmCheckOptions = defaultLlmCheckOptions): PositionScore {
  return compactScorer(c, s, o)(token)
}

/** What `scoreCompact` computes once per distribution: the same sums, in the same order, kept as prefix sums. */
interface CompactPrep {
  /** The nucleus' length when it ends inside the head, else −1. */
  keep: number
  /** Σ_{i<k} exp(l_i − lse), k = 0…h (top-p < 1 only). */
  headMass?: Float64Array
  logZ?: number
  /** Σ_{i<k} exp(l_i/T − logZ) over the listed tokens, or exp(l_i/T − w) within the head when logZ is not known. */
  before: Float64Array
  /** logSumExp of the head at T, when logZ is not known. */
  w: number
  listed: number
  mass: number
  rest: number
  expectedLogP: number
}

/**
 * `scoreCompact` for one distribution and many tokens (the drawn token and every end token at
 * each position): the sums over the head are taken once. Same arithmetic, in the same order.
 */
export function compactScorer (c: CompactDistribution, s: SamplingParams, o: LlmCheckOptions = defaultLlmCheckOptions): (token: number) => PositionScore {
  const h = c.tokens.length
  const T = s.temperature
  const l = (i: number): number => c.logits[i] ?? -Infinity
  const logSumExp = (n: number): number => { let m = -Infinity; for (let i = 0; i < n; i++) m = Math.max(m, l(i) / T); let z = 0; for (let i = 0; i < n; i++) z += Math.exp(l(i) / T - m); return m + Math.log(z) }
  let prep: CompactPrep | undefined
  const prepare = (): CompactPrep => {
    // the nucleus, when it ends inside the head
    let keep = -1
    let headMass: Float64Array | undefined
    if (s.topP < 1) {
      headMass = new Float64Array(h + 1)
      for (let i = 0; i < h; i++) { headMass[i + 1] = headMass[i]! + Math.exp(l(i) - c.lse); if (keep < 0 && headMass[i + 1]! >= s.topP) keep = i + 1 }
    }
    const logZ = keep > 0 ? logSumExp(keep) : s.topP >= 1 ? (T === 1 ? c.lse : c.lseT) : undefined
    if (logZ === undefined) {
      const w = logSumExp(h)
      const before = new Float64Array(h + 1)
      for (let i = 0; i < h; i++) before[i + 1] = before[i]! + Math.exp(l(i) / T - w)
      return { keep, ...(headMass === undefined ? {} : { headMass }), before, w, listed: h, mass: 0, rest: 0, expectedLogP: 0 }
    }
    const listed = keep > 0 ? keep : h
    let expectedLogP = 0
    const before = new Float64Array(listed + 1)
    for (let i = 0; i < listed; i++) { const p = Math.exp(l(i) / T - logZ); before[i + 1] = before[i]! + p; if (p > 0) expectedLogP += p * Math.log(p) }
    const mass = before[listed]!
    const rest = Math.max(0, 1 - mass)
    if (keep < 0 && rest > 0) expectedLogP += rest * Math.log(rest) // the tail as one category: an estimate, reported only
    return { keep, ...(headMass === undefined ? {} : { headMass }), logZ, before, w: 0, listed, mass, rest, expectedLogP }
  }
  return (token: number): PositionScore => {
    let rank = -1
    for (let i = 0; i < h; i++) if (c.tokens[i] === token) { rank = i; break }
    let lt: number | undefined = rank >= 0 ? c.logits[rank] : undefined
    if (lt === undefined) for (let i = 0; i < c.extraTokens.length; i++) if (c.extraTokens[i] === token) { lt = c.extraLogits[i]; break }
    if (lt === undefined || h === 0) return { inSupport: false, u: 1, logP: -Infinity, expectedLogP: 0, p: 0 }
    const { keep, headMass, logZ, before, w, listed, mass, rest, expectedLogP } = prep ??= prepare()
    let inSupport = true
    if (keep > 0 && headMass !== undefined) {
      // the mass of the tokens clearly above this one (a prefix of the head)
      let j = 0
      while (j < h && l(j) - lt > o.logitTolerance) j++
      inSupport = headMass[j]! < s.topP + o.topPTolerance
    }
    if (logZ === undefined) {
      // nucleus beyond the head: the PIT within the head, given the draw fell in it
      if (rank < 0) return { inSupport: true, u: 0.5, logP: 0, expectedLogP: 0, p: undefined }
      const p = Math.exp(lt / T - w)
      // p here is within the head only: the sampler's own is not known
      return { inSupport: true, u: before[rank]! + p / 2, logP: Math.log(p), expectedLogP: 0, p: undefined }
    }
    if (rank >= 0 && rank < listed) {
      const p = Math.exp(lt / T - logZ)
      return { inSupport, u: before[rank]! + p / 2, logP: Math.log(p), expectedLogP, p }
    }
    if (keep > 0) {
      // cut by the exact chain: in the tolerant support only at the boundary, scored neutrally
      return { inSupport, u: 0.5, logP: inSupport ? expectedLogP : -Infinity, expectedLogP, p: inSupport ? undefined : 0 }
    }
    // top-p = 1, a token beyond the head: the tail category
    return { inSupport: true, u: mass + rest / 2, logP: lt / T - logZ, expectedLogP, p: Math.exp(lt / T - logZ) }
  }
}

function endsWith (a: readonly number[], b: readonly number[]): boolean {
  if (b.length === 0 || b.length > a.length) return false
  for (let i = 0; i < b.length; i++) if (a[a.length - b.length + i] !== b[i]) return false
  return true
}

/**
 * Teacher-forces one job and scores it. The caller has already checked that the transcript
 * matches the receipt's hashes and that `tokens` detokenize to `text` (see transcript.ts).
 */
export async function scoreLlmJob (model: TeacherForcingModel, job: LlmJob, options: Partial<LlmCheckOptions> = {}, signal?: AbortSignal): Promise<LlmJobScore> {
  const o = { ...defaultLlmCheckOptions, ...options }
  const { tokens, finishReason } = job.output
  // a grammar needs the masked distributions (the compact path reads the raw ones)
  const compact = job.sampling.temperature > 0 && job.sampling.topK === 0 && job.constraint === undefined && model.compactDistributions !== undefined
  let positions: Array<(t: number) => PositionScore>
  let eogTokens: number[]
  let prompt: { tokens: number[], stopTokens: number[][] } | undefined
  let forbidden = -1
  if (compact && model.compactDistributions !== undefined) {
    // top-k off: O(compactTop) per position, whatever the vocabulary
    const r = await model.compactDistributions(job.modelId, job.input, tokens, { signal, top: o.compactTop, ...(job.sampling.temperature !== 1 ? { temperature: job.sampling.temperature } : {}) })
    positions = r.distributions.map(d => compactScorer(d, job.sampling, o))
    eogTokens = r.eogTokens
    prompt = r.prompt
  } else {
    const top = job.sampling.temperature === 0 ? 1 + o.boundaryMargin : job.sampling.topK > 0 ? job.sampling.topK + o.boundaryMargin : 0
    const r = await model.tokenDistributions(job.modelId, job.input, tokens, { signal, top, ...(job.constraint === undefined ? {} : { constraint: job.constraint }) })
    forbidden = r.forbidden ?? -1
    positions = r.distributions.map(d => (t: number) => scorePosition(d, t, job.sampling, o))
    eogTokens = r.eogTokens
    prompt = r.prompt
  }
  // the end statistic: at every draw, how likely an end token was (their probabilities add up)
  let endSum = 0
  let endVar = 0
  let endKnown = true
  // undefined when some end token's probability is not known there
  const endProbability = (at: (t: number) => PositionScore): number | undefined => {
    let q = 0
    for (const e of eogTokens) { const p = at(e).p; if (p === undefined) return undefined; q += p }
    return Math.min(1, q)
  }
  let outsideSupport = 0
  let firstOutside = -1
  // a token the grammar forbids is outside the support whatever the model thinks of it
  if (forbidden >= 0) { outsideSupport++; firstOutside = forbidden }
  let pitSum = 0
  let logLikelihood = 0
  let expectedLogLikelihood = 0
  for (let i = 0; i < tokens.length; i++) {
    const at = positions[i]
    const t = tokens[i]
    if (at === undefined || t === undefined) { outsideSupport++; continue }
    if (i === forbidden) continue
    const sc = at(t)
    if (eogTokens.length > 0 && job.constraint === undefined) {
      const q = endProbability(at)
      if (q === undefined) endKnown = false; else { endSum -= q; endVar += q * (1 - q) }
    }
    if (!sc.inSupport) { outsideSupport++; if (firstOutside < 0) firstOutside = i }
    pitSum += sc.u - 0.5
    logLikelihood += sc.logP
    expectedLogLikelihood += sc.expectedLogP
  }
  const end = endOf(model, job, positions[tokens.length], eogTokens, o, prompt)
  // an end-of-generation token was drawn too: its PIT joins the statistic (the martingale
  // argument covers every draw, and a miner that stops early draws an unlikely end)
  const n = end.u === undefined ? tokens.length : tokens.length + 1
  if (end.u !== undefined) pitSum += end.u - 0.5
  const last = positions[tokens.length]
  let endP = 1
  if (end.u !== undefined && last !== undefined) {
    const q = endProbability(last)
    if (q === undefined) endKnown = false
    else {
      endSum += 1 - q; endVar += q * (1 - q)
      // an unknown q is no evidence (P = 1)
      endP = endPValue(q, end.positions, o.logitTolerance)
    }
  }
  // under a grammar the end is the grammar's, not a free draw: no end statistic, no end p-value
  const free = job.constraint === undefined && eogTokens.length > 0
  const endStat = endKnown && free ? { endSum, endVar } : {}
  const truncated = !end.ok || (free && endP <= o.alpha)
  return { tokens: n, outsideSupport, firstOutside, truncated, pitSum, logLikelihood, expectedLogLikelihood, ...endStat, ...(free ? { endP } : {}), fail: outsideSupport > 0 || truncated }
}

/**
 * Whether the job could have ended where it did; `u` is the PIT of the end token when one was
 * drawn, and `positions` the number of positions it could have been drawn at (A).
 */
function endOf (model: TeacherForcingModel, job: LlmJob, last: ((t: number) => PositionScore) | undefined, eogTokens: number[], o: LlmCheckOptions, formatted?: { tokens: number[], stopTokens: number[][] }): { ok: boolean, u?: number, positions: number } {
  const { tokens, finishReason } = job.output
  if (finishReason === 'abort') return { ok: true, positions: 1 } // a cancelled job is billed for what it made
  const prompt = formatted ?? model.promptTokens(job.modelId, job.input)
  // the miner's own context bounds a `length` end (it is signed); a validator with another
  // context would otherwise fail an honest miner with a smaller one as truncated
  const contextSize = job.output.contextSize ?? model.loaded().find(m => m.id === job.modelId)?.contextSize ?? Infinity
  const allowed = Math.min(job.sampling.maxTokens, contextSize - prompt.tokens.length)
  const positions = Math.max(1, allowed)
  if (finishReason === 'length') return { ok: tokens.length === allowed, positions }
  if (tokens.length > allowed) return { ok: false, positions }
  if (prompt.stopTokens.some(st => endsWith(tokens, st))) return { ok: true, positions }
  const stops = stopStrings(job.sampling.stop, job.constraint)
  if (stops.length > 0 && tokens.length > 0) {
    // a stop string (or the grammar's end) completed by the last token: in the full text, not in the text without it
    const full = model.detokenize(job.modelId, tokens)
    const prev = model.detokenize(job.modelId, tokens.slice(0, -1))
    if (stops.some(s => full.includes(s) && !prev.includes(s))) return { ok: true, positions }
  }
  if (last === undefined) return { ok: false, positions }
  // the most likely end token stands for "the end" (they are one event to the miner)
  const scores = eogTokens.map(e => last(e)).filter(sc => sc.inSupport)
  if (scores.length === 0) return { ok: false, positions }
  return { ok: true, u: Math.min(...scores.map(sc => sc.u)), positions }
}

export interface WindowVerdict {
  fail: boolean
  /** Tokens in the window. */
  n: number
  /** Σ (u − 1/2) over the window. */
  d: number
  /** The Freedman threshold on |d| for this n and α. */
  threshold: number
  /** 'unlikely' (D too high, or ends the model would rarely make), 'too-likely' (D too low) or null. */
  direction: 'unlikely' | 'too-likely' | null
  /** The end statistic over the window's jobs that have it (`endThreshold`). */
  end: { e: number, variance: number, threshold: number, fail: boolean } | null
  /** Fisher's combination of the window's end p-values (`endPValueTest`). */
  endP: EndPValueVerdict | null
}

export interface EndPValueVerdict {
  /** Jobs combined (those with an end p-value). */
  jobs: number
  /** −Σ ln P over them. */
  s: number
  /** The combined p-value: P(Gamma(jobs, 1) ≥ s). */
  p: number
  fail: boolean
}

/**
 * The end p-value of a job that ended on an end token (module comment, 3): `q` the sampler's
 * probability of an end at that position, `positions` the positions it could have ended at.
 */
export function endPValue (q: number, positions: number, logitTolerance: number): number {
  return Math.min(1, positions * q * Math.exp(2 * logitTolerance))
}

/** ln P(Gamma(m, 1) ≥ s) = −s + ln Σ_{i<m} s^i / i! (m ≥ 1, s ≥ 0), summed in logs. */
export function logGammaTail (m: number, s: number): number {
  if (s <= 0) return 0
  const terms: number[] = []
  let logFact = 0
  for (let i = 0; i < m; i++) { if (i > 0) logFact += Math.log(i); terms.push(i * Math.log(s) - logFact) }
  const top = Math.max(...terms)
  let sum = 0
  for (const t of terms) sum += Math.exp(t - top)
  return Math.min(0, -s + top + Math.log(sum))
}

/**
 * Fisher's combination of end p-values (module comment, 3): each honest P_j is a valid p-value
 * given the jobs before it, so −Σ ln P_j over m jobs is at most Gamma(m, 1) in distribution,
 * and the test fails when that tail is ≤ α. Jobs that ended at max tokens or on a stop string
 * (P = 1) count in m: leaving them out would pick jobs by how they ended, which is not valid.
 */
export function endPValueTest (ps: readonly number[], alpha: number): EndPValueVerdict {
  let s = 0
  for (const p of ps) s -= Math.log(Math.min(1, Math.max(p, Number.MIN_VALUE)))
  const logP = ps.length === 0 ? 0 : logGammaTail(ps.length, s)
  return { jobs: ps.length, s, p: Math.exp(logP), fail: ps.length > 0 && logP <= Math.log(alpha) }
}

/** The threshold t with P(|D| ≥ t) ≤ α for N tokens (module comment). */
export function freedmanThreshold (n: number, alpha: number): number {
  const L = Math.log(2 / alpha)
  return L / 6 + Math.sqrt(L * L / 36 + L * n / 6)
}

/** Variance levels of the end test's union bound: 2^−10 … 2^30, fixed in advance. */
const END_LEVELS = 41

/**
 * The end test's threshold for a window whose predictable variance is `variance`. The end
 * statistic E = Σ (1{end drawn} − q) over every draw is a martingale with increments in
 * [−1, 1] and predictable variance V = Σ q(1 − q), so Freedman gives, for each level v,
 * P(|E| ≥ t_v and V ≤ v) ≤ 2·exp(−t_v² / (2(v + t_v/3))). With levels v_k = 2^(k−10),
 * k = 0…40, each at α/41, and the smallest level ≥ V used, a window is wrongly failed with
 * probability at most α. It sees a miner that ends where the model would rarely end (cutting
 * jobs short and calling it a natural stop: at top-k off every end is in the support, so
 * nothing else sees it) or that never ends where the model would (padding jobs it bills).
 */
export function endThreshold (variance: number, alpha: number): number {
  let k = 0
  while (k < END_LEVELS - 1 && 2 ** (k - 10) < variance) k++
  const v = 2 ** (k - 10)
  const L = Math.log(2 * END_LEVELS / alpha)
  return L / 3 + Math.sqrt(L * L / 9 + 2 * v * L)
}

/** The window test over a miner's sampled jobs (their `pitSum` and `tokens`, and where they ended). */
export function windowTest (jobs: ReadonlyArray<Pick<LlmJobScore, 'tokens' | 'pitSum' | 'endSum' | 'endVar' | 'endP'>>, alpha = defaultLlmCheckOptions.alpha): WindowVerdict {
  let n = 0
  let d = 0
  let e = 0
  let v = 0
  let withEnd = 0
  const ps: number[] = []
  for (const j of jobs) {
    n += j.tokens; d += j.pitSum
    if (j.endSum !== undefined && j.endVar !== undefined) { e += j.endSum; v += j.endVar; withEnd++ }
    if (j.endP !== undefined) ps.push(j.endP)
  }
  const threshold = freedmanThreshold(n, alpha)
  // the end tests have their own α each (the window's false-positive rate is at most 3α in all)
  const endT = withEnd > 0 ? endThreshold(v, alpha) : Infinity
  const end = withEnd > 0 ? { e, variance: v, threshold: endT, fail: Math.abs(e) >= endT } : null
  const endP = ps.length > 0 ? endPValueTest(ps, alpha) : null
  const direction = d >= threshold ? 'unlikely' : d <= -threshold ? 'too-likely' : end?.fail === true || endP?.fail === true ? 'unlikely' : null
  return { fail: direction !== null, n, d, threshold, direction, end, endP }
}
