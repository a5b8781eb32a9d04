import { randomInt } from 'node:crypto'
import { getAddress, type Wallet } from 'ethers'
import { isHeuristError } from '../core/errors.js'
import type { Logger } from '../core/logger.js'
import type { Verdict } from '../core/typed-data.js'
import { receiptHash, vectorFromBase64, verifyReceipt, type ReceiptDomainOptions, type ReceiptMessage, type SignedReceipt } from '../p2p/index.js'
import { stopStrings, type CompareThresholds } from '../inference/index.js'
import { defaultLlmCheckOptions, scoreLlmJob, windowTest, type LlmCheckOptions, type LlmJobScore, type TeacherForcingModel } from './llm-check.js'
import { scoreImageJob, type ImageRerun } from './image-check.js'
import { transcriptMismatch, type ValidationTranscript } from './transcript.js'
import { textMatchesTokens } from './output-check.js'
import { scoreEmbeddings } from './embedding-check.js'
import { QuorumBook, REASON, buildVerdictMessage, verdictSigner, type VerdictMessage } from './verdicts.js'

/**
 * The validator (whitepaper §2.1.3): follows receipts, samples each with probability P from
 * its own cryptographic randomness (the miner cannot predict which of its jobs are checked),
 * fetches the transcript, checks it, gossips a signed verdict, re-checks receipts other
 * validators failed, and once failing verdicts from 2/3 of the validator stake agree on one
 * receipt, submits them to `Slashing`. A transcript that does not match its receipt blames
 * the gateway that served it: no verdict, nothing slashed. One that matches is the miner's
 * signed output (text, token ids, finish reason, context size), so anything wrong inside it,
 * inconsistent text and tokens included, fails the miner.
 */

export interface ValidatorOptions {
  /** Probability that a receipt is checked. Default 0.1: appendix A's P; the minimum collateral scales with 1/P. */
  sampleRate: number
  llm: Partial<LlmCheckOptions>
  /** Image thresholds; default the calibrated ones of the image pipeline. */
  image?: CompareThresholds
  /** After a quorum on one of a miner's receipts, that miner's other verdicts wait this long. Default 10 min: one slash per offence, not one per sampled job. */
  cooldownMs: number
  /** Checks waiting at most; receipts beyond are dropped (sampling is a budget). Default 64. */
  maxPending: number
}

export const defaultValidatorOptions: ValidatorOptions = { sampleRate: 0.1, llm: {}, cooldownMs: 10 * 60_000, maxPending: 64 }

export interface SlashEvidence { signed: SignedReceipt, verdicts: Verdict[], signatures: string[] }

export interface ValidatorDeps {
  wallet: Wallet
  /** The Slashing domain receipts and verdicts are signed under. */
  domain: ReceiptDomainOptions
  logger: Logger
  llm: TeacherForcingModel | null
  rerunImage: ImageRerun | null
  /** The transcript of a receipt's job, or null when nobody serves it. */
  fetchTranscript: (signed: SignedReceipt, signal: AbortSignal) => Promise<ValidationTranscript | null>
  publish: (m: VerdictMessage) => Promise<void>
  /** Active stake of a validator (0 when not one), and the total: the quorum weights. */
  stakeOf: (validator: string) => Promise<bigint>
  totalStake: () => Promise<bigint>
  /** Submits evidence to Slashing; null = publish verdicts only. */
  slash: ((e: SlashEvidence) => Promise<void>) | null
  /** Uniform in [0, 1); default crypto randomness. */
  random?: () => number
}

export type Judgement =
  | { kind: 'pass', llm?: LlmJobScore }
  | { kind: 'fail', reason: number, llm?: LlmJobScore }
  | { kind: 'gateway', why: string }
  | { kind: 'unavailable', why: string }

export interface ValidatorStats {
  seen: number
  sampled: number
  passed: number
  failed: number
  gatewayBlamed: number
  unavailable: number
  /** Window tests failed on this validator's own samples (each a failing verdict on a job that passed alone). */
  windowsFailed: number
  verdictsPublished: number
  verdictsReceived: number
  slashesSubmitted: number
  errors: number
}

const cryptoRandom = (): number => randomInt(0, 2 ** 48 - 1) / 2 ** 48

export class Validator {
  readonly o: ValidatorOptions
  readonly stats: ValidatorStats = { seen: 0, sampled: 0, passed: 0, failed: 0, gatewayBlamed: 0, unavailable: 0, windowsFailed: 0, verdictsPublished: 0, verdictsReceived: 0, slashesSubmitted: 0, errors: 0 }
  readonly quorum = new QuorumBook()
  private readonly llmOptions: LlmCheckOptions
  private readonly judged = new Map<string, Judgement>()
  private readonly inFlight = new Map<string, Promise<Judgement>>()
  private readonly windows = new Map<string, Array<{ signed: SignedReceipt, score: LlmJobScore }>>()
  private readonly cooldown = new Map<string, number>()
  private readonly published = new Set<string>()
  private pending = 0
  private readonly ac = new AbortController()
  private tail: Promise<void> = Promise.resolve()
  private readonly me: string

  constructor (private readonly d: ValidatorDeps, options: Partial<ValidatorOptions> = {}) {
    this.o = { ...defaultValidatorOptions, ...options }
    this.llmOptions = { ...defaultLlmCheckOptions, ...this.o.llm }
    this.me = getAddress(d.wallet.address)
  }

  /** Stops work; checks running now end at their next await. */
  stop (): void { this.ac.abort() }

  /** Waits until the checks queued so far are done (tests, benchmarks). */
  async idle (): Promise<void> {
    let t: Promise<void>
    do { t = this.tail; await t } while (t !== this.tail)
  }

  private sameDomain (chainId: number, verifyingContract: string): boolean {
    return BigInt(chainId) === BigInt(this.d.domain.chainId) && verifyingContract.toLowerCase() === this.d.domain.verifyingContract.toLowerCase()
  }

  /** Runs `work` after what is queued: checks run one at a time (models are single-threaded here). */
  private enqueue<T> (work: () => Promise<T>): Promise<T> {
    const p = this.tail.then(work)
    this.tail = p.then(() => {}, () => {})
    return p
  }

  /** A receipt heard on gossip: sampled with probability P, then checked. Returns whether it was sampled. */
  onReceipt (m: ReceiptMessage): boolean {
    if (this.ac.signal.aborted) return false
    this.stats.seen++
    if (!this.sameDomain(m.chainId, m.verifyingContract)) return false
    if ((this.d.random ?? cryptoRandom)() >= this.o.sampleRate) return false
    if (!verifyReceipt(m.signed, this.d.domain)) return false
    if (this.pending >= this.o.maxPending) { this.d.logger.warn({ pending: this.pending }, 'validator busy: sampled receipt dropped'); return false }
    this.stats.sampled++
    this.pending++
    this.enqueue(async () => { await this.checkSampled(m.signed) })
      .catch(err => { this.stats.errors++; this.d.logger.warn({ err: (err as Error).message }, 'check failed') })
      .finally(() => { this.pending-- })
    return true
  }

  /** A verdict heard on gossip: counted toward its receipt's quorum; failed receipts are re-checked here. */
  async onVerdict (m: VerdictMessage): Promise<void> {
    if (this.ac.signal.aborted || !this.sameDomain(m.chainId, m.verifyingContract)) return
    const signer = verdictSigner(m.verdict, m.signature, this.d.domain)
    if (signer === null || signer !== getAddress(m.verdict.validator)) return
    if (!verifyReceipt(m.signed, this.d.domain)) return
    const rh = receiptHash(m.signed, this.d.domain)
    if (rh !== m.verdict.receiptHash) return
    if (await this.d.stakeOf(signer) === 0n) return
    this.stats.verdictsReceived++
    if (m.verdict.pass) return
    this.quorum.add(m)
    if (signer !== this.me && !this.published.has(rh)) {
      await this.enqueue(async () => { await this.recheck(m, rh) })
    }
    await this.maybeSlash(rh, m.signed.receipt.miner)
  }

  /** Judges one receipt's job (once; later calls get the same judgement). */
  async judge (signed: SignedReceipt): Promise<Judgement> {
    const rh = receiptHash(signed, this.d.domain)
    const done = this.judged.get(rh)
    if (done !== undefined) return done
    let p = this.inFlight.get(rh)
    if (p === undefined) {
      p = this.doJudge(signed)
      this.inFlight.set(rh, p)
    }
    try {
      const j = await p
      this.judged.set(rh, j)
      if (this.judged.size > 20_000) { const k = this.judged.keys().next().value; if (k !== undefined) this.judged.delete(k) }
      return j
    } finally {
      this.inFlight.delete(rh)
    }
  }

  private async doJudge (signed: SignedReceipt): Promise<Judgement> {
    const signal = this.ac.signal
    let t: ValidationTranscript | null
    try {
      t = await this.d.fetchTranscript(signed, signal)
    } catch (e) {
      return { kind: 'unavailable', why: (e as Error).message }
    }
    if (t === null) return { kind: 'unavailable', why: 'no transcript' }
    const bad = transcriptMismatch(t, signed)
    if (bad !== null) return { kind: 'gateway', why: `transcript does not match the receipt: ${bad}` }
    if (t.kind === 'llm') {
      const llm = this.d.llm
      if (llm === null || !llm.loaded().some(m => m.id === t.modelId)) return { kind: 'unavailable', why: 'model not loaded here' }
      // the receipt commits to text and token ids together: if the tokens do not give the
      // delivered text (cut at a stop string), the miner signed something it did not produce
      let tokensText: string
      try { tokensText = llm.detokenize(t.modelId, t.output.tokens) } catch { return { kind: 'fail', reason: REASON.inconsistentOutput } }
      if (!textMatchesTokens(tokensText, t.output.text, t.output.finishReason, stopStrings(t.sampling.stop, t.constraint))) return { kind: 'fail', reason: REASON.inconsistentOutput }
      let score: LlmJobScore
      try {
        score = await scoreLlmJob(llm, { modelId: t.modelId, input: t.input, sampling: t.sampling, ...(t.constraint === undefined ? {} : { constraint: t.constraint }), output: t.output }, this.llmOptions, signal)
      } catch (e) {
        // a job longer than this validator's context: it cannot be checked here, nobody's fault
        if (isHeuristError(e, 'INFERENCE_PROMPT_TOO_LONG')) return { kind: 'unavailable', why: e.message }
        // a constrained job on a node-llama-cpp without grammar states: cannot be checked here
        if (isHeuristError(e, 'INFERENCE_GRAMMAR_UNAVAILABLE')) return { kind: 'unavailable', why: e.message }
        if (isHeuristError(e) && e.usage) return { kind: 'gateway', why: e.message }
        throw e
      }
      if (score.outsideSupport > 0) return { kind: 'fail', reason: REASON.outsideSupport, llm: score }
      if (score.truncated) return { kind: 'fail', reason: REASON.truncated, llm: score }
      return { kind: 'pass', llm: score }
    }
    if (t.kind === 'embedding') {
      const llm = this.d.llm
      if (llm?.embed === undefined || !llm.loaded().some(m => m.id === t.modelId)) return { kind: 'unavailable', why: 'model not loaded here' }
      let own: Float32Array[]
      try {
        own = (await llm.embed(t.modelId, t.input, { signal })).vectors
      } catch (e) {
        if (isHeuristError(e, 'INFERENCE_PROMPT_TOO_LONG')) return { kind: 'unavailable', why: e.message }
        throw e
      }
      const s = scoreEmbeddings(t.output.vectors.map(vectorFromBase64), own)
      return s.fail ? { kind: 'fail', reason: REASON.embeddingMismatch } : { kind: 'pass' }
    }
    if (this.d.rerunImage === null) return { kind: 'unavailable', why: 'no image engine here' }
    const s = await scoreImageJob(this.d.rerunImage, t, this.o.image, signal)
    if (s.transcriptMismatch) return { kind: 'gateway', why: 'the PNG does not decode to the receipt\'s pixel hash' }
    return s.fail ? { kind: 'fail', reason: REASON.imageMismatch } : { kind: 'pass' }
  }

  private count (j: Judgement): void {
    if (j.kind === 'pass') this.stats.passed++
    else if (j.kind === 'fail') this.stats.failed++
    else if (j.kind === 'gateway') this.stats.gatewayBlamed++
    else this.stats.unavailable++
  }

  private cooling (miner: string): boolean {
    return (this.cooldown.get(getAddress(miner)) ?? 0) > Date.now()
  }

  /** Checks one of our own samples; LLM jobs also go into the miner's window. */
  private async checkSampled (signed: SignedReceipt): Promise<void> {
    const j = await this.judge(signed)
    this.count(j)
    const miner = getAddress(signed.receipt.miner)
    const rh = receiptHash(signed, this.d.domain)
    if (j.kind === 'gateway') { this.d.logger.warn({ jobId: signed.receipt.jobId, why: j.why }, 'transcript blamed on the gateway: no verdict'); return }
    if (j.kind === 'unavailable') { this.d.logger.debug({ jobId: signed.receipt.jobId, why: j.why }, 'cannot check'); return }
    if (j.kind === 'fail') {
      await this.verdict(signed, rh, false, j.reason)
      return
    }
    if (j.llm !== undefined) {
      const w = this.windows.get(miner) ?? []
      w.push({ signed, score: j.llm })
      while (w.length > this.llmOptions.window) w.shift()
      this.windows.delete(miner) // re-insert: the map stays in least-recently-sampled order
      this.windows.set(miner, w)
      if (this.windows.size > 10_000) { const k = this.windows.keys().next().value; if (k !== undefined) this.windows.delete(k) }
      const t = windowTest(w.map(x => x.score), this.llmOptions.alpha)
      if (t.fail) {
        this.stats.windowsFailed++
        this.d.logger.info({ miner, n: t.n, d: t.d, threshold: t.threshold, direction: t.direction, end: t.end, endP: t.endP }, 'window test failed')
        await this.verdict(signed, rh, false, t.direction === 'unlikely' ? REASON.unlikelyText : REASON.tooLikelyText, w.map(x => x.signed))
        this.windows.delete(miner)
        return
      }
    }
    await this.verdict(signed, rh, true, REASON.pass)
  }

  /** Re-checks a receipt another validator failed: the job alone, or its whole window. */
  private async recheck (m: VerdictMessage, rh: string): Promise<void> {
    if (this.published.has(rh)) return
    const miner = getAddress(m.signed.receipt.miner)
    if (m.window !== undefined && (m.verdict.reason === REASON.unlikelyText || m.verdict.reason === REASON.tooLikelyText)) {
      const w = m.window
      const last = w.at(-1)
      if (last === undefined || receiptHash(last, this.d.domain) !== rh) return
      const jobIds = new Set(w.map(s => s.receipt.jobId))
      if (jobIds.size !== w.length || w.some(s => getAddress(s.receipt.miner) !== miner || !verifyReceipt(s, this.d.domain))) return
      const scores: LlmJobScore[] = []
      for (const s of w) {
        const j = await this.judge(s)
        if ((j.kind !== 'pass' && j.kind !== 'fail') || j.llm === undefined) return // cannot check the whole window: abstain
        scores.push(j.llm)
      }
      const t = windowTest(scores, this.llmOptions.alpha)
      const reason = t.direction === 'unlikely' ? REASON.unlikelyText : REASON.tooLikelyText
      if (t.fail && reason === m.verdict.reason) await this.verdict(m.signed, rh, false, reason, w)
      return
    }
    const j = await this.judge(m.signed)
    this.count(j)
    if (j.kind === 'fail') await this.verdict(m.signed, rh, false, j.reason)
    else if (j.kind === 'pass') await this.verdict(m.signed, rh, true, REASON.pass)
  }

  private async verdict (signed: SignedReceipt, rh: string, pass: boolean, reason: number, window?: SignedReceipt[]): Promise<void> {
    if (this.published.has(rh)) return
    if (!pass && this.cooling(signed.receipt.miner)) return
    this.published.add(rh)
    if (this.published.size > 100_000) { const k = this.published.values().next().value; if (k !== undefined) this.published.delete(k) }
    const msg = await buildVerdictMessage(this.d.wallet, this.d.domain, signed, rh, pass, reason, window)
    this.d.logger.info({ jobId: signed.receipt.jobId, miner: signed.receipt.miner, pass, reason }, 'verdict')
    if (!pass) this.quorum.add(msg)
    await this.d.publish(msg)
    this.stats.verdictsPublished++
    if (!pass) await this.maybeSlash(rh, signed.receipt.miner)
  }

  private async maybeSlash (rh: string, miner: string): Promise<void> {
    if (this.cooling(miner)) return
    // only validators that failed the receipt themselves put their name to the evidence
    if (!this.quorum.signers(rh).includes(this.me)) return
    if (!await this.quorum.hasQuorum(rh, this.d.stakeOf, this.d.totalStake)) return
    this.cooldown.set(getAddress(miner), Date.now() + this.o.cooldownMs)
    const slash = this.d.slash
    if (slash === null) return
    const e = this.quorum.evidence(rh)
    try {
      await slash(e)
      this.stats.slashesSubmitted++
      this.d.logger.info({ miner, receiptHash: rh, validators: e.verdicts.length }, 'slashing evidence submitted')
    } catch (err) {
      // another validator of the quorum got there first: the receipt is slashed once
      this.d.logger.info({ miner, receiptHash: rh, err: (err as Error).message }, 'slashing evidence not taken')
    }
  }
}

export function createValidator (deps: ValidatorDeps, options: Partial<ValidatorOptions> = {}): Validator {
  return new Validator(deps, options)
}
