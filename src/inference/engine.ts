import { basename } from 'node:path'
import { LlamaGrammarEvaluationState, resolveChatWrapper, type LlamaEmbeddingContext, type ChatHistoryItem, type GbnfJsonSchema, type LlamaGrammar, type ChatWrapper, type ControlledEvaluateInputItem, type Llama, type LlamaContext, type LlamaContextSequence, type LlamaModel, type Token } from 'node-llama-cpp'
import type { Logger } from '../core/logger.js'
import { HeuristError, isHeuristError, usageError } from '../core/errors.js'
import { readGguf } from './gguf.js'
import { sha256OfFile } from './cache.js'
import { getLlamaRuntime, resolveThreads, type GpuSetting } from './runtime.js'
import { teacherForce, teacherForceCompact, type CompactDistribution, type RawDistribution } from './teacher-forcing.js'
import { stopStrings, type ChatMessage, type GenerateOptions, type LlmRequest, type LlmResult, type ModelInfo, type OutputConstraint, type SamplingParams, type TokenLogprob } from './types.js'

export interface LlamaEngineOptions {
  /** Backend (config `inference.gpu`). Default `auto`. */
  gpu: GpuSetting
  /** CPU threads; 0 = the cores actually available (never node-llama-cpp's max(cores, 4)). Default 0. */
  threads: number
  /** Jobs that run at once per model (context sequences). Default 2: enough to overlap two clients without doubling the KV cache for nothing. */
  parallel: number
  /** Jobs that wait per model once all sequences are busy; one more is answered `INFERENCE_BUSY` (config `inference.maxQueue`). Default 16. */
  maxQueue: number
  /** Context size per sequence in tokens; 0 = the model's training context, capped at 4096 to bound memory. Default 0. */
  contextSize: number
  /** Teacher forcing (validation) through node-llama-cpp internals when present. Default true; false: the public API only (same numbers, slower; tests and benches). */
  nativeTeacherForcing: boolean
  logger?: Logger
}

export const defaultLlamaEngineOptions: LlamaEngineOptions = { gpu: 'auto', threads: 0, parallel: 2, maxQueue: 16, contextSize: 0, nativeTeacherForcing: true }

/** Bounded FIFO of jobs per model: `capacity` run at once, `maxQueue` wait, the rest are busy. */
class JobSlots {
  private running = 0
  private readonly waiting: Array<{ grant: () => void, fail: (e: unknown) => void }> = []
  constructor (public capacity: number, readonly maxQueue: number, readonly modelId: string) {}

  get depth (): number { return this.running + this.waiting.length }

  async acquire (signal?: AbortSignal): Promise<() => void> {
    const release = (): void => {
      const next = this.waiting.shift()
      if (next !== undefined) next.grant()
      else this.running--
    }
    if (this.running < this.capacity) { this.running++; return release }
    if (this.waiting.length >= this.maxQueue) {
      throw new HeuristError('INFERENCE_BUSY', `model ${this.modelId.slice(0, 12)} is busy: ${this.running} jobs running and ${this.waiting.length} waiting (inference.maxQueue = ${this.maxQueue})`, { details: { running: this.running, waiting: this.waiting.length } })
    }
    return await new Promise((resolve, reject) => {
      const entry = {
        grant: () => { signal?.removeEventListener('abort', onAbort); resolve(release) },
        fail: reject
      }
      const onAbort = (): void => {
        const i = this.waiting.indexOf(entry)
        if (i >= 0) this.waiting.splice(i, 1)
        reject(abortError())
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      this.waiting.push(entry)
    })
  }

  /** One sequence fewer: a slot is retired (when a sequence cannot be reused). */
  shrink (): void { this.capacity = Math.max(0, this.capacity - 1) }

  failAll (e: unknown): void {
    for (const w of this.waiting.splice(0)) w.fail(e)
  }
}

function abortError (): HeuristError {
  return new HeuristError('INFERENCE_ABORTED', 'the job was cancelled before it started')
}

interface Loaded {
  info: ModelInfo
  path: string
  model: LlamaModel
  context: LlamaContext
  slots: JobSlots
  /** Free sequences; the slots guarantee one is here for every running job. */
  free: LlamaContextSequence[]
  chatWrapper?: ChatWrapper
  /** The embedding context, made on the first embedding job; jobs take it one at a time. */
  embedding?: { context: Promise<LlamaEmbeddingContext>, tail: Promise<unknown> }
  /** Every token the model declares an end of generation (eos, eot, eom, ...), found once. */
  eog?: number[]
}

/** What a loaded model needs from its file: id and a display name. */
export interface LoadOptions {
  /** sha256 of the weights; computed from the file when absent. */
  id?: string
  name?: string
}

/**
 * The LLM engine on node-llama-cpp. Native handles (model, context, sequences) stay inside;
 * callers see `ModelInfo`, `LlmRequest`, `LlmResult`. One context per model with `parallel`
 * sequences; each job takes a sequence for its duration and starts from a clear history, so
 * the same seed and params give the same text whatever ran before.
 */
export class LlamaEngine {
  private readonly options: LlamaEngineOptions
  private llama: Llama | undefined
  private readonly models = new Map<string, Loaded>()
  private readonly loading = new Map<string, Promise<ModelInfo>>()
  /** Grammars built from constraints, by their JSON (bounded; least recently used dropped). */
  private readonly grammars = new Map<string, Promise<LlamaGrammar>>()
  private disposed = false

  constructor (options: Partial<LlamaEngineOptions> = {}) {
    this.options = { ...defaultLlamaEngineOptions, ...options }
  }

  get threads (): number { return resolveThreads(this.options.threads) }

  /**
   * Threads for one model. With threads = 0 (auto), a model under 64 MiB (the tiny ones) gets
   * one thread: its matrices are so small that thread synchronisation dominates, and on a
   * busy 2-core machine two spinning threads made it about 100x slower than one.
   */
  private threadsFor (fileSize: number): number {
    return this.options.threads === 0 && fileSize < 64 * 1024 * 1024 ? 1 : this.threads
  }

  private async runtime (): Promise<Llama> {
    this.assertLive()
    this.llama ??= await getLlamaRuntime({ gpu: this.options.gpu, threads: this.options.threads, logger: this.options.logger })
    return this.llama
  }

  private assertLive (): void {
    if (this.disposed) throw new HeuristError('INFERENCE_DISPOSED', 'the LLM engine was stopped')
  }

  /** Loads a GGUF file (checked first: magic, bounds, truncation), once per id. */
  async load (path: string, options: LoadOptions = {}): Promise<ModelInfo> {
    this.assertLive()
    const gguf = await readGguf(path)
    const id = options.id ?? await sha256OfFile(path)
    const existing = this.models.get(id)
    if (existing !== undefined) return existing.info
    let p = this.loading.get(id)
    if (p === undefined) {
      p = this.doLoad(path, id, options.name ?? String(gguf.metadata['general.name'] ?? basename(path)), gguf.fileSize)
      this.loading.set(id, p)
      p.finally(() => this.loading.delete(id)).catch(() => {})
    }
    return await p
  }

  private async doLoad (path: string, id: string, name: string, fileSize: number): Promise<ModelInfo> {
    const llama = await this.runtime()
    let model: LlamaModel
    try {
      model = await llama.loadModel({ modelPath: path })
    } catch (e) {
      throw new HeuristError('INFERENCE_LOAD_FAILED', `llama.cpp cannot load ${path}: ${(e as Error).message.split('\n')[0]}`, { cause: e })
    }
    const train = model.trainContextSize > 0 ? model.trainContextSize : 4096
    const contextSize = this.options.contextSize > 0 ? this.options.contextSize : Math.min(train, 4096)
    let context: LlamaContext
    try {
      context = await model.createContext({ contextSize, sequences: this.options.parallel, threads: this.threadsFor(fileSize) })
    } catch (e) {
      await model.dispose()
      throw new HeuristError('INFERENCE_LOAD_FAILED', `cannot create a context of ${contextSize} tokens for ${name}: ${(e as Error).message.split('\n')[0]}`, { cause: e })
    }
    const info: ModelInfo = { id, name, kind: 'llm', contextSize: context.contextSize, memoryBytes: fileSize + context.stateSize }
    if (this.disposed) { await context.dispose(); await model.dispose(); this.assertLive() }
    const free = Array.from({ length: this.options.parallel }, () => context.getSequence())
    this.models.set(id, { info, path, model, context, free, slots: new JobSlots(this.options.parallel, this.options.maxQueue, id) })
    this.options.logger?.debug({ model: name, id, contextSize: info.contextSize, threads: this.threadsFor(fileSize) }, 'model loaded')
    return info
  }

  async unload (modelId: string): Promise<void> {
    const m = this.models.get(modelId)
    if (m === undefined) return
    this.models.delete(modelId)
    m.slots.failAll(new HeuristError('INFERENCE_UNLOADED', `model ${m.info.name} was unloaded`))
    if (m.embedding !== undefined) await (await m.embedding.context.catch(() => null))?.dispose()
    await m.context.dispose()
    await m.model.dispose()
  }

  loaded (): ModelInfo[] { return [...this.models.values()].map(m => m.info) }

  /** Running + waiting jobs of a model (for capacity adverts). */
  queueDepth (modelId: string): number { return this.models.get(modelId)?.slots.depth ?? 0 }

  private get (modelId: string): Loaded {
    this.assertLive()
    const m = this.models.get(modelId)
    if (m === undefined) throw new HeuristError('INFERENCE_MODEL_NOT_LOADED', `model ${modelId} is not loaded`, { details: { modelId } })
    return m
  }

  tokenize (modelId: string, text: string, specialTokens = false): number[] {
    return this.get(modelId).model.tokenize(text, specialTokens)
  }

  detokenize (modelId: string, tokens: readonly number[], specialTokens = false): string {
    return this.get(modelId).model.detokenize(tokens as Token[], specialTokens)
  }

  /**
   * The tokens the engine evaluates for an input: BOS + text for a completion; the model's
   * own chat template (ending with the assistant's prefix) for messages.
   */
  promptTokens (modelId: string, input: string | ChatMessage[]): { tokens: number[], stopTokens: number[][] } {
    const m = this.get(modelId)
    const model = m.model
    if (typeof input === 'string') {
      const bos = model.tokens.bos
      const prefix = bos !== null && model.tokens.shouldPrependBosToken ? [bos] : []
      return { tokens: [...prefix, ...model.tokenize(input, false)], stopTokens: [] }
    }
    const wrapper = m.chatWrapper ??= resolveChatWrapper(model)
    const chatHistory: ChatHistoryItem[] = input.map(m => m.role === 'assistant'
      ? { type: 'model' as const, response: [m.content] }
      : { type: m.role, text: m.content })
    chatHistory.push({ type: 'model', response: [] })
    const state = wrapper.generateContextState({ chatHistory })
    const stopTokens = state.stopGenerationTriggers.map(t => t.tokenize(model.tokenizer)).filter(t => t.length > 0)
    return { tokens: state.contextText.tokenize(model.tokenizer), stopTokens }
  }

  /**
   * Generates text. Streaming through `onToken`; cancellation through `signal` (the result
   * then has finishReason `abort` and the tokens made so far). Prompt policy: a prompt that
   * does not fit the context is rejected (`INFERENCE_PROMPT_TOO_LONG`, never truncated);
   * `maxTokens` is clamped to the room the context has left (finishReason `length`).
   * A full queue throws `INFERENCE_BUSY`.
   */
  async generate (request: LlmRequest, options: GenerateOptions = {}): Promise<LlmResult> {
    const t0 = performance.now()
    const m = this.get(request.modelId)
    const s = checkSampling(request.sampling)
    const { tokens: prompt, stopTokens } = this.promptTokens(request.modelId, request.input)
    const room = m.info.contextSize - prompt.length
    if (room < 1) {
      throw usageError('INFERENCE_PROMPT_TOO_LONG', `the prompt is ${prompt.length} tokens and the context of ${m.info.name} holds ${m.info.contextSize} (policy: reject, never truncate; shorten the prompt)`, { promptTokens: prompt.length, contextSize: m.info.contextSize })
    }
    const maxTokens = Math.min(s.maxTokens, room)
    const signal = options.signal
    const empty = (reason: LlmResult['finishReason']): LlmResult => ({ text: '', tokens: [], finishReason: reason, contextSize: m.info.contextSize, usage: { promptTokens: prompt.length, outputTokens: 0, ttftMs: 0, tokensPerSecond: 0, totalMs: performance.now() - t0 } })
    if (signal?.aborted === true) return empty('abort')
    const grammar = request.constraint === undefined ? undefined : await this.grammarFor(request.constraint)
    try {
      return await this.withSequence(m, signal, async sequence => {
        const out = new TextAssembler(m.model, stopStrings(s.stop, request.constraint), options.onToken)
        let finishReason: LlmResult['finishReason'] = 'length'
        let tFirst = 0
        let tLast = 0
        const logprobs: TokenLogprob[] | undefined = request.logprobs === undefined ? undefined : []
        if (maxTokens > 0) {
          // yieldEogToken: without it node-llama-cpp ends the iterator silently on an end token, which read as 'length'
          const options = { temperature: s.temperature, topK: s.topK, topP: s.topP, seed: s.seed, yieldEogToken: true, ...(grammar === undefined ? {} : { grammarEvaluationState: new LlamaGrammarEvaluationState({ model: m.model, grammar }) }) }
          // With metadata asked for, node-llama-cpp applies the grammar before the sampling chain
          // (grammar mask → top-k → top-p → temperature → draw), the distribution validators
          // rebuild; without, it samples first and resamples only when the grammar refuses,
          // which is another distribution. So a constrained job always asks for metadata.
          const metadata = grammar !== undefined || logprobs !== undefined
          const top = Math.max(0, Math.min(20, request.logprobs ?? 0))
          const iterator: AsyncIterable<{ token: Token, confidence?: number, probabilities?: Map<Token, number> }> = metadata
            ? sequence.evaluateWithMetadata(prompt as Token[], { confidence: true, probabilities: top > 0 }, options)
            : (async function * () { for await (const token of sequence.evaluate(prompt as Token[], options)) yield { token } })()
          for await (const { token, confidence, probabilities } of iterator) {
            if (isAborted(signal)) { finishReason = 'abort'; break }
            if (m.model.isEogToken(token)) { finishReason = 'stop'; break }
            tLast = performance.now()
            if (tFirst === 0) tFirst = tLast
            logprobs?.push(tokenLogprob(m.model, token, confidence, probabilities, top))
            if (out.push(token)) { finishReason = 'stop'; break }
            if (stopTokens.some(st => endsWith(out.tokens, st))) { finishReason = 'stop'; break }
            if (out.tokens.length >= maxTokens) { finishReason = 'length'; break }
          }
        }
        out.finish()
        const n = out.tokens.length
        const tEnd = performance.now()
        const decodeMs = tLast - tFirst
        return {
          text: out.text,
          tokens: out.tokens,
          finishReason,
          contextSize: m.info.contextSize,
          ...(logprobs === undefined ? {} : { logprobs: logprobs.slice(0, out.tokens.length) }),
          usage: {
            promptTokens: prompt.length,
            outputTokens: n,
            ttftMs: n > 0 ? tFirst - t0 : 0,
            // decode speed: tokens after the first over the time they took
            tokensPerSecond: n > 1 && decodeMs > 0 ? (n - 1) / (decodeMs / 1000) : n > 0 ? n / ((tEnd - t0) / 1000) : 0,
            totalMs: tEnd - t0
          }
        }
      })
    } catch (e) {
      // cancelled while waiting for a slot: an empty result, like a cancel before the first token
      if (isHeuristError(e, 'INFERENCE_ABORTED')) return empty('abort')
      throw e
    }
  }

  /**
   * Teacher forcing for validators: the probability of each of `outputTokens` under the
   * model after `input` (as `generate` would have formatted it) and the previous output
   * tokens, with the sampling params applied (temperature, top-k, top-p). A token outside
   * the sampling support gets 0; with temperature 0 (greedy) the argmax gets 1, others 0.
   */
  async tokenProbabilities (modelId: string, input: string | ChatMessage[], outputTokens: readonly number[], sampling: SamplingParams, options: { signal?: AbortSignal } = {}): Promise<number[]> {
    const m = this.get(modelId)
    const s = checkSampling(sampling)
    if (outputTokens.length === 0) return []
    const { tokens: prompt } = this.promptTokens(modelId, input)
    if (prompt.length + outputTokens.length > m.info.contextSize) {
      throw usageError('INFERENCE_PROMPT_TOO_LONG', `prompt (${prompt.length}) + output (${outputTokens.length}) tokens exceed the context of ${m.info.contextSize}`)
    }
    return await this.withSequence(m, options.signal, async sequence => {
      const gen = { probabilities: true, options: { temperature: s.temperature, topK: s.topK, topP: s.topP, seed: s.seed } }
      const all = [...prompt, ...outputTokens.slice(0, -1)]
      const first = prompt.length - 1
      const items: ControlledEvaluateInputItem[] = all.map((t, i) => i >= first ? [t as Token, { generateNext: gen }] : t as Token)
      const res = await sequence.controlledEvaluate(items)
      return outputTokens.map((t, i) => {
        const probs = res[first + i]?.next.probabilities
        if (probs === undefined) return 0
        // greedy: the support is the argmax alone (the map is sorted, most likely first)
        if (s.temperature === 0) return probs.keys().next().value === t ? 1 : 0
        return probs.get(t as Token) ?? 0
      })
    })
  }

  /**
   * Teacher forcing with the whole distribution, for validators that apply the sampling
   * chain themselves (with a tolerance for float drift): the model's raw next-token
   * distribution (temperature 1, no top-k/top-p) after `input` and each prefix of
   * `outputTokens`, `outputTokens.length + 1` of them (the last one is after the final token,
   * where an end of generation must have been possible). Each entry lists every token of the
   * vocabulary, most likely first; with `top` > 0 only the `top` most likely, their
   * probabilities renormalized over them (ratios unchanged; passing the whole vocabulary to
   * JavaScript at every position costs more than the model itself on small models). Also
   * returns the prompt's tokens and stop sequences (formatting a chat costs more than the
   * teacher forcing on small models, so callers should not format it again).
   */
  async tokenDistributions (modelId: string, input: string | ChatMessage[], outputTokens: readonly number[], options: { signal?: AbortSignal, top?: number, constraint?: OutputConstraint } = {}): Promise<{ distributions: RawDistribution[], eogTokens: number[], prompt: { tokens: number[], stopTokens: number[][] }, forbidden?: number }> {
    const m = this.get(modelId)
    const { tokens: prompt, stopTokens } = this.promptTokens(modelId, input)
    if (prompt.length + outputTokens.length > m.info.contextSize) {
      throw usageError('INFERENCE_PROMPT_TOO_LONG', `prompt (${prompt.length}) + output (${outputTokens.length}) tokens exceed the context of ${m.info.contextSize}`)
    }
    const grammar = options.constraint === undefined ? undefined : grammarWalk(m.model, await this.grammarFor(options.constraint), outputTokens)
    return await this.withSequence(m, options.signal, async sequence => {
      const distributions = await teacherForce(sequence, m.model, [...prompt, ...outputTokens], prompt.length - 1, Math.max(0, Math.floor(options.top ?? 0)), { native: this.options.nativeTeacherForcing }, grammar?.states)
      return { distributions, eogTokens: this.eogTokens(modelId), prompt: { tokens: prompt, stopTokens }, ...(grammar === undefined ? {} : { forbidden: grammar.forbidden }) }
    })
  }

  /**
   * Teacher forcing in O(`top`) memory per position (`CompactDistribution`): the `top` most
   * likely tokens, the logits of the next output token and of every end-of-generation token,
   * and the normalizers over the whole vocabulary (at temperature 1, and at `temperature`).
   * For sampling without top-k on a large vocabulary, where a whole distribution per position
   * would cost the validator O(vocabulary × tokens) memory.
   */
  async compactDistributions (modelId: string, input: string | ChatMessage[], outputTokens: readonly number[], options: { signal?: AbortSignal, top: number, temperature?: number }): Promise<{ distributions: CompactDistribution[], eogTokens: number[], prompt: { tokens: number[], stopTokens: number[][] } }> {
    const m = this.get(modelId)
    const { tokens: prompt, stopTokens } = this.promptTokens(modelId, input)
    if (prompt.length + outputTokens.length > m.info.contextSize) {
      throw usageError('INFERENCE_PROMPT_TOO_LONG', `prompt (${prompt.length}) + output (${outputTokens.length}) tokens exceed the context of ${m.info.contextSize}`)
    }
    const eogTokens = this.eogTokens(modelId)
    return await this.withSequence(m, options.signal, async sequence => {
      const distributions = await teacherForceCompact(sequence, m.model, [...prompt, ...outputTokens], prompt.length - 1, { top: options.top, extra: eogTokens, ...(options.temperature !== undefined ? { temperature: options.temperature } : {}) }, { native: this.options.nativeTeacherForcing })
      return { distributions, eogTokens, prompt: { tokens: prompt, stopTokens } }
    })
  }

  /**
   * Embeds each text with the model's embedding context (llama.cpp pools the states as the
   * model's GGUF says: mean for the built-in tiny-embed; a model without pooling gives its last
   * token's state), L2-normalized as OpenAI's are. A text longer than the context is rejected
   * (INFERENCE_PROMPT_TOO_LONG), never truncated. Jobs on one model run one at a time.
   */
  async embed (modelId: string, texts: readonly string[], options: { signal?: AbortSignal } = {}): Promise<{ vectors: Float32Array[], promptTokens: number }> {
    const m = this.get(modelId)
    const embeddingContext = Math.min(m.info.contextSize, 2048)
    let promptTokens = 0
    for (const t of texts) {
      const n = m.model.tokenize(t, false).length
      if (n + 1 > embeddingContext) throw usageError('INFERENCE_PROMPT_TOO_LONG', `an input of ${n} tokens does not fit the embedding context of ${embeddingContext}`, { promptTokens: n, contextSize: embeddingContext })
      promptTokens += n
    }
    if (m.embedding === undefined) {
      const context = m.model.createEmbeddingContext({ contextSize: embeddingContext, batchSize: embeddingContext, threads: this.threadsFor(0) })
      context.catch(() => { m.embedding = undefined })
      m.embedding = { context, tail: Promise.resolve() }
    }
    const slot = m.embedding
    const run = slot.tail.then(async () => {
      const ctx = await slot.context
      const vectors: Float32Array[] = []
      for (const t of texts) {
        if (options.signal?.aborted === true) throw abortError()
        const v = Float32Array.from((await ctx.getEmbeddingFor(t)).vector)
        let norm = 0
        for (const x of v) norm += x * x
        norm = Math.sqrt(norm)
        if (norm > 0) for (let i = 0; i < v.length; i++) v[i] = v[i]! / norm
        vectors.push(v)
      }
      return vectors
    })
    slot.tail = run.catch(() => {})
    return { vectors: await run, promptTokens }
  }

  /**
   * The llama.cpp grammar of a constraint, built once per schema (at most 64 kept). A schema
   * node-llama-cpp cannot turn into a grammar is the request's fault: INFERENCE_BAD_CONSTRAINT.
   */
  async grammarFor (constraint: OutputConstraint): Promise<LlamaGrammar> {
    const key = JSON.stringify(constraint.schema)
    let g = this.grammars.get(key)
    if (g === undefined) {
      const llama = await this.runtime()
      g = (async () => {
        try {
          return await (llama as unknown as { createGrammarForJsonSchema: (s: GbnfJsonSchema) => Promise<LlamaGrammar> }).createGrammarForJsonSchema(constraint.schema as GbnfJsonSchema)
        } catch (e) {
          throw usageError('INFERENCE_BAD_CONSTRAINT', `the output schema cannot be made a grammar: ${(e as Error).message.split('\n')[0] ?? ''}`)
        }
      })()
      g.catch(() => { this.grammars.delete(key) })
      if (this.grammars.size >= 64) { const k = this.grammars.keys().next().value; if (k !== undefined) this.grammars.delete(k) }
    } else {
      this.grammars.delete(key)
    }
    this.grammars.set(key, g)
    return await g
  }

  /**
   * Every token the model declares an end of generation: `generate` stops on any of them
   * (llama.cpp's EOG set: eos, eot, and e.g. Llama 3.1's <|eom_id|>), so a validator must
   * accept an end on any of them. Scanned once per model over the vocabulary.
   */
  eogTokens (modelId: string): number[] {
    const m = this.get(modelId)
    if (m.eog === undefined) {
      const out = new Set<number>([m.model.tokens.eos, m.model.tokens.eot].filter((t): t is Token => t !== null))
      for (const t of m.model.iterateAllTokens()) if (m.model.isEogToken(t)) out.add(t)
      m.eog = [...out].sort((a, b) => a - b)
    }
    return m.eog
  }

  /** Runs `fn` on a free sequence of `m` once a job slot is granted (FIFO, bounded); gives both back after. */
  private async withSequence<T> (m: Loaded, signal: AbortSignal | undefined, fn: (sequence: LlamaContextSequence) => Promise<T>): Promise<T> {
    const release = await m.slots.acquire(signal)
    const sequence = await takeSequence(m).catch((e: unknown) => { release(); throw e })
    try {
      return await fn(sequence)
    } finally {
      await giveBack(m, sequence)
      release()
    }
  }

  /** Unloads every model. Idempotent; later calls throw `INFERENCE_DISPOSED`. */
  async stop (): Promise<void> {
    if (this.disposed) return
    this.disposed = true
    for (const id of [...this.models.keys()]) await this.unload(id)
  }
}

export function createLlamaEngine (options: Partial<LlamaEngineOptions> = {}): LlamaEngine {
  return new LlamaEngine(options)
}

/** A free sequence; sequences are cleared when given back, so a job never sees what ran before it. */
async function takeSequence (m: Loaded): Promise<LlamaContextSequence> {
  const seq = m.free.pop()
  if (seq === undefined) throw new HeuristError('INFERENCE_INTERNAL', 'no free sequence although a slot was granted')
  return seq
}

/** Clears a sequence after its job (off the next job's time to first token) and returns it to the pool. */
async function giveBack (m: Loaded, seq: LlamaContextSequence): Promise<void> {
  try {
    await seq.clearHistory()
    m.free.push(seq)
  } catch {
    // a sequence that cannot be cleared is dropped rather than leak one job's state into another
    m.slots.shrink()
  }
}

function isAborted (signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true
}

function endsWith (a: readonly number[], b: readonly number[]): boolean {
  if (b.length === 0 || b.length > a.length) return false
  for (let i = 0; i < b.length; i++) if (a[a.length - b.length + i] !== b[i]) return false
  return true
}

/** Sampling params from outside are checked here too, so a bad value never reaches native code. */
export function checkSampling (s: SamplingParams): SamplingParams {
  const bad = (what: string): never => { throw usageError('INFERENCE_BAD_SAMPLING', `sampling: ${what}`) }
  if (!Number.isSafeInteger(s.seed) || s.seed < 0 || s.seed > 0xFFFFFFFF) bad(`seed must be an integer from 0 to 2^32-1, got ${s.seed}`)
  if (!Number.isFinite(s.temperature) || s.temperature < 0 || s.temperature > 10) bad(`temperature must be from 0 to 10, got ${s.temperature}`)
  if (!Number.isFinite(s.topP) || s.topP <= 0 || s.topP > 1) bad(`top_p must be in (0, 1], got ${s.topP}`)
  if (!Number.isSafeInteger(s.topK) || s.topK < 0 || s.topK > 100_000) bad(`top_k must be an integer from 0 to 100000, got ${s.topK}`)
  if (!Number.isSafeInteger(s.maxTokens) || s.maxTokens < 0 || s.maxTokens > 1_000_000) bad(`max_tokens must be an integer from 0 to 1000000, got ${s.maxTokens}`)
  if (!Array.isArray(s.stop) || s.stop.length > 16 || s.stop.some(x => typeof x !== 'string' || x.length === 0 || x.length > 256)) bad('stop must be at most 16 non-empty strings of at most 256 characters')
  return s
}

/**
 * Walks a grammar along `tokens`: its state before each token and after the last
 * (`tokens.length + 1` native states), and the index of the first token the grammar forbids
 * (−1: none). Past a forbidden token the state stays where it was (the job fails anyway).
 * Uses node-llama-cpp internals (the grammar state's native handle and the sampler binding's
 * grammar calls), feature-checked: without them a constrained job cannot be checked here.
 */
function grammarWalk (model: LlamaModel, grammar: LlamaGrammar, tokens: readonly number[]): { states: unknown[], forbidden: number } {
  const state = new LlamaGrammarEvaluationState({ model, grammar }) as unknown as { _state: unknown, clone: () => { _state: unknown } }
  const bindings = (model as unknown as { _llama?: { _bindings?: { AddonSampler?: { canBeNextTokenForGrammarEvaluationState?: (s: unknown, t: number) => boolean, acceptGrammarEvaluationStateToken?: (s: unknown, t: number) => void } } } })._llama?._bindings?.AddonSampler
  const canBe = bindings?.canBeNextTokenForGrammarEvaluationState
  const accept = bindings?.acceptGrammarEvaluationStateToken
  if (state._state === undefined || typeof canBe !== 'function' || typeof accept !== 'function') throw new HeuristError('INFERENCE_GRAMMAR_UNAVAILABLE', 'this node-llama-cpp does not expose grammar states: constrained jobs cannot be checked')
  const states: unknown[] = []
  let forbidden = -1
  for (let i = 0; i <= tokens.length; i++) {
    states.push(state.clone()._state)
    const t = tokens[i]
    if (t === undefined || forbidden >= 0) continue
    if (!canBe(state._state, t)) { forbidden = i; continue }
    accept(state._state, t)
  }
  return { states, forbidden }
}

/** One token's log-probability report: the sampled token's probability under the sampler, and the `top` most likely. */
function tokenLogprob (model: LlamaModel, token: Token, confidence: number | undefined, probabilities: Map<Token, number> | undefined, top: number): TokenLogprob {
  const text = (t: Token): string => model.detokenize([t], false)
  const lp = (p: number | undefined): number => Math.log(Math.max(p ?? 0, 1e-300))
  const alternatives: TokenLogprob['top'] = []
  if (probabilities !== undefined && top > 0) {
    for (const [t, p] of probabilities) {
      if (alternatives.length >= top || p <= 0) break
      alternatives.push({ token: text(t), logprob: lp(p) })
    }
  }
  return { token: text(token), logprob: lp(confidence), top: alternatives }
}

/**
 * Turns sampled tokens into text as it streams: waits while a multi-byte character is split
 * across tokens, and holds back the tail that could still become a stop string, so a stop
 * string never reaches the client.
 */
class TextAssembler {
  readonly tokens: number[] = []
  text = ''
  private emitted = 0
  private pending: number[] = []
  private readonly holdBack: number

  constructor (private readonly model: LlamaModel, private readonly stop: string[], private readonly onToken?: (text: string, tokenId: number) => void) {
    this.holdBack = stop.reduce((a, s) => Math.max(a, s.length - 1), 0)
  }

  /** Adds a token; true when a stop string completed (the text is cut before it). */
  push (token: number): boolean {
    this.tokens.push(token)
    this.pending.push(token)
    const before = this.tokens.slice(Math.max(0, this.tokens.length - this.pending.length - 8), this.tokens.length - this.pending.length)
    const piece = this.model.detokenize(this.pending as Token[], false, before as Token[])
    if (piece.endsWith('\uFFFD') && this.pending.length < 4) return false
    this.pending = []
    const from = Math.max(0, this.text.length - this.holdBack)
    this.text += piece
    for (const s of this.stop) {
      const i = this.text.indexOf(s, from)
      if (i >= 0) {
        this.text = this.text.slice(0, i)
        this.flush(token, this.text.length)
        return true
      }
    }
    this.flush(token, this.text.length - this.holdBack)
    return false
  }

  private flush (token: number, upTo: number): void {
    if (upTo <= this.emitted) return
    const chunk = this.text.slice(this.emitted, upTo)
    this.emitted = upTo
    this.onToken?.(chunk, token)
  }

  finish (): void {
    if (this.pending.length > 0) {
      this.text += this.model.detokenize(this.pending as Token[], false)
      this.pending = []
    }
    this.flush(this.tokens.at(-1) ?? -1, this.text.length)
  }
}
