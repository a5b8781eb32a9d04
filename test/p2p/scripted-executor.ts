import type { ExecuteOptions, JobExecutor, JobOutput, RequestFrame } from '../../src/p2p/index.js'
import type { ModelInfo } from '../../src/inference/types.js'

export const SCRIPT_MODEL: ModelInfo = { id: 'b'.repeat(64), name: 'scripted', kind: 'llm', contextSize: 256, memoryBytes: 1 << 20 }

/**
 * An executor that "generates" a fixed word list, one word every `delayMs`, honouring the
 * abort signal: it exercises the job protocol without a model (the real engine is tested in
 * the llm job test). Records what it saw so tests can check cancellation reached it.
 */
export class ScriptedExecutor implements JobExecutor {
  readonly seen: Array<{ jobId: string, aborted: boolean, tokens: number }> = []
  constructor (readonly words: string[] = ['one', ' two', ' three', ' four', ' five'], readonly delayMs = 20) {}
  models (): ModelInfo[] { return [SCRIPT_MODEL] }
  async execute (job: RequestFrame, o: ExecuteOptions): Promise<JobOutput> {
    const rec = { jobId: job.jobId, aborted: false, tokens: 0 }
    this.seen.push(rec)
    const t0 = performance.now()
    let text = ''
    const n = job.kind === 'llm' ? Math.min(job.sampling.maxTokens, this.words.length) : 0
    for (let i = 0; i < n; i++) {
      await new Promise(resolve => setTimeout(resolve, this.delayMs))
      if (o.signal.aborted) { rec.aborted = true; throw o.signal.reason }
      text += this.words[i]!
      rec.tokens++
      o.onToken?.(this.words[i]!, i)
    }
    const ms = performance.now() - t0
    return { kind: 'llm', result: { text, tokens: [...Array(n).keys()], finishReason: 'length', usage: { promptTokens: 1, outputTokens: n, ttftMs: this.delayMs, tokensPerSecond: n / (ms / 1000), totalMs: ms } } }
  }
}
